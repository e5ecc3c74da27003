"""A model whose custom layer uses an op TFLite has no builtin for (SVD).

It converts only with Select TF ops (the Flex delegate), which microcontrollers
and most lean mobile builds do not link.
"""

import keras
import tensorflow as tf


class SingularValues(keras.layers.Layer):
    """Singular values of each 4x4 block of the input."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        blocks = tf.reshape(x, [-1, 4, 4])
        return tf.linalg.svd(blocks, compute_uv=False)


def build() -> keras.Model:
    keras.utils.set_random_seed(0)
    signal = keras.Input((16,), name="signal")
    hidden = keras.layers.Dense(16)(signal)
    values = SingularValues()(hidden)
    return keras.Model(signal, values, name="spectral")

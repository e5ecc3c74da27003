"""A model whose custom layer uses tf.linalg.det (MatrixDeterminant).

TFLite has no builtin for it: it converts only with Select TF ops, i.e. an app
that links the Flex delegate (several MB; not available on microcontrollers).
"""

import keras
import tensorflow as tf


class BlockDeterminant(keras.layers.Layer):
    """Determinant of each 4x4 block of the input."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        blocks = tf.reshape(x, [-1, 4, 4])
        return tf.linalg.det(blocks)[:, tf.newaxis]


def build() -> keras.Model:
    keras.utils.set_random_seed(0)
    signal = keras.Input((16,), name="signal")
    hidden = keras.layers.Dense(16)(signal)
    det = BlockDeterminant()(hidden)
    return keras.Model(signal, det, name="gram")

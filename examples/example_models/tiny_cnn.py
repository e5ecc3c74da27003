"""A tiny image model: global average pooling lowers to the MEAN op."""

import keras


def build() -> keras.Model:
    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(4, name="logits")(x)
    return keras.Model(image, logits, name="tiny_cnn")

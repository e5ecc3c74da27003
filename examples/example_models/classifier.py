"""A small dense classifier: converts cleanly to float, int8 and dynamic range."""

import keras


def build() -> keras.Model:
    keras.utils.set_random_seed(0)
    features = keras.Input((64,), name="features")
    hidden = keras.layers.Dense(64, activation="relu")(features)
    probs = keras.layers.Dense(10, activation="softmax", name="probs")(hidden)
    return keras.Model(features, probs, name="classifier")

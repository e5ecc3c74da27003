"""A small LSTM text classifier, the shape a Keras user writes first.

`dynamic_batch` has a free batch dimension (what `keras.Input((20,))` gives): the
converter lowers the LSTM to TensorList ops that need a static element shape and
fails. `fixed_batch` is the same model with batch 1 in its input, which converts.
"""

from __future__ import annotations

from typing import Any

import keras

TOKENS = 20
VOCABULARY = 500


def _classifier(batch_size: int | None) -> Any:
    keras.utils.set_random_seed(7)
    tokens = keras.Input((TOKENS,), batch_size=batch_size, dtype="int32", name="tokens")
    embedded = keras.layers.Embedding(VOCABULARY, 16)(tokens)
    encoded = keras.layers.LSTM(16)(embedded)
    probabilities = keras.layers.Dense(4, activation="softmax", name="intent")(encoded)
    return keras.Model(tokens, probabilities, name="intent_lstm")


def dynamic_batch() -> Any:
    return _classifier(None)


def fixed_batch() -> Any:
    return _classifier(1)

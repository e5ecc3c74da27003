"""keras.applications MobileNetV2 (alpha 0.35, 96x96, 10 classes) with usable statistics.

With `weights=None` every BatchNormalization layer has mean 0 / variance 1, the
activations blow up or vanish, and the outputs are nearly constant, so an int8
collapse would look like a gate bug. One forward pass in training mode with momentum 0
sets each layer's moving statistics to those of a seeded batch, so the float model's
outputs depend on its input, as a trained model's do.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def mobilenet_v2() -> Any:
    keras.utils.set_random_seed(3)
    model = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10
    )
    batch = np.random.default_rng(3).uniform(-1.0, 1.0, (32, 96, 96, 3)).astype(np.float32)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(batch, training=True)
    for layer in norms:
        layer.momentum = 0.99
    return model

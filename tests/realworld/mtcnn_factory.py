"""Factories for MTCNN's three subclassed Keras nets with the weights its wheel ships.

Copied into a test workspace next to the `mtcnn/network/*.py` and `mtcnn/assets/weights/*`
members of the pinned `mtcnn` wheel; this builds and loads the nets the way
`mtcnn.stages` does (`Net()`, `build()`, `set_weights(joblib.load(...))`), without the
detection pipeline around them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib

WEIGHTS = Path(__file__).resolve().parent / "mtcnn" / "assets" / "weights"


def _loaded(net: Any, weights: str, input_shape: tuple[int | None, ...] | None = None) -> Any:
    if input_shape is None:
        net.build()  # the net's own default build shape, as mtcnn does
    else:
        net.build(input_shape)
    net.set_weights(joblib.load(WEIGHTS / weights))
    return net


def pnet() -> Any:
    """PNet built for any image size (None, None, None, 3): needs `input_shapes`."""
    from mtcnn.network.pnet import PNet

    return _loaded(PNet(), "pnet.lz4")


def pnet_12() -> Any:
    """PNet built for its 12x12 receptive field: the build shape is fully known."""
    from mtcnn.network.pnet import PNet

    return _loaded(PNet(), "pnet.lz4", (None, 12, 12, 3))


def rnet() -> Any:
    """RNet, built for (None, 24, 24, 3) by default."""
    from mtcnn.network.rnet import RNet

    return _loaded(RNet(), "rnet.lz4")


def onet() -> Any:
    """ONet, built for (None, 48, 48, 3) by default."""
    from mtcnn.network.onet import ONet

    return _loaded(ONet(), "onet.lz4")


def onet_functional() -> Any:
    """ONet wrapped in a functional model with named outputs: bbox (4 values, regression),
    landmarks (10 values, regression) and face (2-class softmax)."""
    import keras

    image = keras.Input((48, 48, 3), batch_size=1, name="image")
    bbox, landmarks, face = onet()(image)
    return keras.Model(image, {"bbox": bbox, "landmarks": landmarks, "face": face})

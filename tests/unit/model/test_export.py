"""Models written as the SavedModel the converter reads (real TensorFlow: slow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tflite_gate.model.export import keras_serve, save_function, save_keras
from tflite_gate.run.protocol import TensorSpec

pytestmark = pytest.mark.slow  # Keras and TensorFlow in this process

SPECS = [TensorSpec(name="x", shape=[1, 4], dtype="float32")]


def _serving(path: Path) -> Any:
    import tensorflow as tf

    return tf.saved_model.load(str(path)).signatures["serving_default"]


def _flat(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (args[0],), {}


def test_a_keras_model_serves_its_outputs_by_name(tmp_path: Path) -> None:
    import keras

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="scores")(inputs))
    save_keras(model, SPECS, tmp_path / "saved", _flat)
    served = _serving(tmp_path / "saved")(x=np.ones((1, 4), dtype="float32"))
    assert list(served) == ["scores"]
    np.testing.assert_allclose(served["scores"].numpy(), model(np.ones((1, 4))), rtol=1e-6)


def test_outputs_without_names_are_numbered() -> None:
    import keras

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(3)(inputs)])
    model.output_names = []  # as a model whose outputs have no names of their own
    served = keras_serve(model, _flat)(np.ones((1, 4), dtype="float32"))
    assert sorted(served) == ["output_0", "output_1"]


def test_a_function_is_traced_again_with_the_resolved_shapes_and_debug_info(
    tmp_path: Path,
) -> None:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
    def halves(x: Any) -> Any:
        return x / 2, x * 0

    save_function(halves.get_concrete_function(), None, SPECS, tmp_path / "saved")
    serving = _serving(tmp_path / "saved")
    assert serving.structured_input_signature[1]["x"].shape.as_list() == [1, 4]
    served = serving(x=np.full((1, 4), 3.0, dtype="float32"))
    assert sorted(served) == ["output_0", "output_1"]
    np.testing.assert_array_equal(served["output_0"].numpy(), np.full((1, 4), 1.5))
    assert (tmp_path / "saved" / "debug" / "saved_model_debug_info.pb").is_file()

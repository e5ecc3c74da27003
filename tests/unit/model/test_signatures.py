"""The inputs a model takes, found inside the conversion worker (real Keras models: slow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tflite_gate.model.signatures import build_by_calling, function_specs, keras_specs
from tflite_gate.model.sources import SourceError
from tflite_gate.run.protocol import TensorSpec

pytestmark = pytest.mark.slow  # Keras and TensorFlow in this process


def _subclassed(call_parameters: str = "inputs", body: str = "") -> Any:
    """A subclassed Keras model whose `call` takes `call_parameters` (Dense on the first)."""
    import keras

    first = call_parameters.split(",")[0]
    namespace: dict[str, Any] = {"keras": keras}
    exec(  # the class as a user's module defines it
        "class Net(keras.Model):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.dense = keras.layers.Dense(2)\n"
        f"    def call(self, {call_parameters}):\n"
        f"        {body or 'pass'}\n"
        f"        return self.dense({first})\n",
        namespace,
    )
    return namespace["Net"]()


def test_a_functional_model_names_its_inputs() -> None:
    import keras

    inputs = keras.Input((8,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    specs, pack = keras_specs(model, {})
    assert specs == [TensorSpec(name="x", shape=[None, 8], dtype="float32")]
    assert pack(("tensor",)) == (("tensor",), {})


def test_a_called_subclassed_model_is_named_by_its_call() -> None:
    import numpy as np

    model = _subclassed("features")
    model(np.zeros((3, 5), dtype="float32"))
    specs, pack = keras_specs(model, {})
    assert specs == [TensorSpec(name="features", shape=[None, 5], dtype="float32")]
    assert pack(("tensor",)) == (("tensor",), {})


def test_a_never_built_model_asks_for_input_shapes() -> None:
    with pytest.raises(SourceError, match="never called or built") as raised:
        keras_specs(_subclassed(), {})
    assert raised.value.policy_key == "input_shapes"
    assert "input_shapes: {inputs: [1, ...]}" in raised.value.message


def test_declared_shapes_name_an_unbuilt_models_inputs_and_build_it(tmp_path: Path) -> None:
    model = _subclassed()
    specs, pack = keras_specs(model, {"inputs": [1, 6]})
    assert specs == [TensorSpec(name="inputs", shape=[1, 6], dtype="float32")]
    build_by_calling(model, specs, pack, workspace=tmp_path)
    assert model.built


def test_every_positional_tensor_must_be_declared() -> None:
    import numpy as np

    model = _subclassed("a, b")
    model(np.zeros((1, 3), dtype="float32"), np.zeros((1, 3), dtype="float32"))
    with pytest.raises(SourceError, match=r"Net.call takes 2 tensors \(a, b\)"):
        keras_specs(model, {"a": [1, 3]})
    specs, pack = keras_specs(model, {"a": [1, 3], "b": [1, 4]})
    assert [(s.name, s.shape) for s in specs] == [("a", [1, 3]), ("b", [1, 4])]
    assert pack(("ta", "tb")) == ((), {"a": "ta", "b": "tb"})


def test_a_call_that_fails_on_the_declared_shapes_says_so(tmp_path: Path) -> None:
    model = _subclassed(body='raise ValueError("wants a sequence")')
    specs, pack = keras_specs(model, {"inputs": [1, 6]})
    with pytest.raises(SourceError) as raised:
        build_by_calling(model, specs, pack, workspace=tmp_path)
    assert raised.value.message.startswith(
        "calling Net on zeros of the declared input_shapes (inputs: [1, 6]) raised ValueError"
    )


def test_a_function_signature_gives_positional_then_keyword_inputs() -> None:
    import tensorflow as tf

    @tf.function
    def scaled(x: Any, *, scale: Any) -> Any:
        return x * scale

    concrete = scaled.get_concrete_function(
        tf.TensorSpec([None, 4], tf.float32, name="x"), scale=tf.TensorSpec([], tf.float32)
    )
    assert function_specs(concrete) == [
        TensorSpec(name="x", shape=[None, 4], dtype="float32"),
        TensorSpec(name="scale", shape=[], dtype="float32"),
    ]

"""Feeds in and outputs out: tensor indices by name, quantization both ways, .npz files.

The pure pieces get hand-made tensor details; the rest a real LiteRT interpreter on a
tiny model from `tflite_builder`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tests.support.tflite_builder import (
    INPUT_TENSOR_NAME,
    OUTPUT_TENSOR_NAME,
    SIGNATURE_INPUT_NAME,
    SIGNATURE_OUTPUT_NAME,
)
from tflite_gate.run.interpreter_worker.failures import PhaseError
from tflite_gate.run.interpreter_worker.tensors import (
    input_details,
    io_maps,
    load_feeds,
    prepare_feed,
    read_output,
    read_outputs,
    stack,
)


def _int8_detail(scale: float = 0.5, zero_point: int = -3) -> dict[str, object]:
    return {
        "dtype": np.int8,
        "shape": np.array([1, 4]),
        "quantization": (scale, zero_point),
        "quantization_parameters": {"scales": [scale], "zero_points": [zero_point]},
    }


def _interpreter(path: Path) -> Any:
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


# --------------------------------------------------------------------------- quantization


def test_float_feeds_to_a_quantized_input_are_quantized_and_clipped() -> None:
    fed = prepare_feed(np.array([[0.0, 1.0, -100.0, 100.0]], np.float32), _int8_detail())
    assert fed.dtype == np.int8
    assert fed.tolist() == [[-3, -1, -128, 127]]


def test_a_feed_of_the_tensor_dtype_goes_in_as_it_is() -> None:
    value = np.array([[5, 6, 7, 8]], np.int8)
    assert prepare_feed(value, _int8_detail()) is value


def test_a_feed_of_another_dtype_is_cast_to_the_tensors() -> None:
    fed = prepare_feed(np.array([[0.5, -1.25]], np.float64), {"dtype": np.float32})
    assert fed.dtype == np.float32 and fed.tolist() == [[0.5, -1.25]]


def test_an_integer_input_without_a_scale_is_cast_not_quantized() -> None:
    """A scale of 0 means no quantization: the values go in as they are, truncated."""
    fed = prepare_feed(np.array([[2.7, -1.5]], np.float32), _int8_detail(scale=0.0, zero_point=0))
    assert fed.dtype == np.int8 and fed.tolist() == [[2, -1]]


def test_quantized_outputs_come_back_in_real_units() -> None:
    real = read_output(np.array([[-3, -1, 1]], np.int8), _int8_detail())
    assert real.dtype == np.float32
    assert real.tolist() == [[0.0, 1.0, 2.0]]


def test_a_float_output_comes_back_as_a_copy() -> None:
    """The interpreter reuses its buffers: a kept output must not change with the next invoke."""
    value = np.array([[1.0, 2.0]], np.float32)
    read = read_output(value, {"dtype": np.float32})
    value[0, 0] = 9.0
    assert read.tolist() == [[1.0, 2.0]]


def test_per_channel_quantization_scales_along_its_axis() -> None:
    detail = {
        "dtype": np.int8,
        "shape": np.array([1, 2]),
        "quantization_parameters": {
            "scales": [1.0, 0.5],
            "zero_points": [0, 0],
            "quantized_dimension": 1,
        },
    }
    assert read_output(np.array([[4, 4]], np.int8), detail).tolist() == [[4.0, 2.0]]


# --------------------------------------------------------------------------- a real interpreter


def test_inputs_and_outputs_are_named_by_the_signature(relu_model: Callable[..., Path]) -> None:
    interpreter = _interpreter(relu_model())
    assert io_maps(interpreter) == ({SIGNATURE_INPUT_NAME: 0}, {SIGNATURE_OUTPUT_NAME: 1})


def test_without_a_signature_they_are_named_by_their_tensors(
    relu_model: Callable[..., Path],
) -> None:
    interpreter = _interpreter(relu_model(signature=False))
    assert io_maps(interpreter) == ({INPUT_TENSOR_NAME: 0}, {OUTPUT_TENSOR_NAME: 1})


def test_input_details_are_keyed_by_tensor_index(relu_model: Callable[..., Path]) -> None:
    details = input_details(_interpreter(relu_model()))
    assert list(details) == [0]
    assert details[0]["shape"].tolist() == [1, 4]


def test_a_quantized_model_takes_and_gives_real_values(relu_model: Callable[..., Path]) -> None:
    interpreter = _interpreter(relu_model(quantized_io=True))
    inputs, outputs = io_maps(interpreter)
    feed = np.array([[-1.0, 0.0, 1.5, 6.5]], np.float32)
    interpreter.set_tensor(0, prepare_feed(feed, input_details(interpreter)[0]))
    interpreter.invoke()
    read = read_outputs(interpreter, outputs)
    assert list(read) == [SIGNATURE_OUTPUT_NAME] and list(inputs) == [SIGNATURE_INPUT_NAME]
    assert read[SIGNATURE_OUTPUT_NAME].dtype == np.float32
    # Steps of 0.5 from the builder's quantization; RELU clamps at the zero point, real 0.
    assert read[SIGNATURE_OUTPUT_NAME].tolist() == [[0.0, 0.0, 1.5, 6.5]]


# --------------------------------------------------------------------------- files


def test_feeds_must_cover_every_input_with_one_sample_count(tmp_path: Path) -> None:
    path = tmp_path / "inputs.npz"
    np.savez(path, x=np.zeros((3, 1, 4)), y=np.zeros((2, 1)))
    feeds, count = load_feeds(str(path), {"x": 0})
    assert (list(feeds), count) == (["x"], 3)
    with pytest.raises(PhaseError, match="no data for model input"):
        load_feeds(str(path), {"z": 0})
    with pytest.raises(PhaseError, match="different sample counts") as caught:
        load_feeds(str(path), {"x": 0, "y": 1})
    assert caught.value.phase == "load"


def test_feeds_keep_the_models_input_order_not_the_files(tmp_path: Path) -> None:
    path = tmp_path / "inputs.npz"
    np.savez(path, b=np.ones((2, 1)), a=np.zeros((2, 1)), unused=np.zeros((5, 1)))
    feeds, count = load_feeds(str(path), {"a": 1, "b": 0})
    assert (list(feeds), count) == (["a", "b"], 2)


def test_a_model_without_inputs_has_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "inputs.npz"
    np.savez(path, x=np.zeros((3, 1)))
    assert load_feeds(str(path), {}) == ({}, 0)


def test_outputs_of_one_shape_stack_and_ragged_ones_get_a_key_per_sample() -> None:
    arrays, ragged = stack(
        {"same": [np.zeros(2), np.ones(2)], "varies": [np.zeros(1), np.zeros(3)]}
    )
    assert arrays["same"].shape == (2, 2)
    assert ragged == {"varies": ["__ragged_1_0", "__ragged_1_1"]}
    assert arrays["__ragged_1_1"].shape == (3,)
    assert stack({"none": []})[0]["none"].shape == (0,)

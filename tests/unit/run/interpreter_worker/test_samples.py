"""Samples through a real LiteRT interpreter: one at a time, in batches, and timed.

The status file must name each sample (or batch) before it runs, and a model that
turns out not to be batch-wise must be reported as such (None), never with mixed
results. Misbehaving runtimes are subclasses of the real interpreter.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tests.support.tflite_builder import SIGNATURE_INPUT_NAME, SIGNATURE_OUTPUT_NAME
from tflite_gate.run.interpreter_worker.samples import (
    batchable,
    median_invoke_ms,
    resize_to_first_sample,
    run_batched,
    run_one_by_one,
)
from tflite_gate.run.interpreter_worker.status import Status
from tflite_gate.run.interpreter_worker.tensors import input_details

INPUTS = {SIGNATURE_INPUT_NAME: 0}
OUTPUTS = {SIGNATURE_OUTPUT_NAME: 1}
Samples = Callable[..., np.ndarray[Any, Any]]


class FirstRowOnly(Interpreter):  # type: ignore[misc]
    """A runtime that ignores the batch: every output has one row."""

    def get_tensor(self, index: int, subgraph_index: int = 0) -> Any:
        return super().get_tensor(index, subgraph_index)[:1]


class NoBatches(Interpreter):  # type: ignore[misc]
    """A runtime whose invoke fails on any batch larger than one."""

    def invoke(self) -> None:
        if self.get_input_details()[0]["shape"][0] > 1:
            raise RuntimeError("this runtime takes one sample at a time")
        super().invoke()


class Counting(Interpreter):  # type: ignore[misc]
    """Counts its invokes."""

    invokes = 0

    def invoke(self) -> None:
        self.invokes += 1
        super().invoke()


def _lines(handle: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in handle.getvalue().splitlines()]


def _allocated(kind: type, model: Path) -> Any:
    interpreter = kind(model_path=str(model))
    interpreter.allocate_tensors()
    return interpreter


def _outputs(results: dict[str, list[Any]]) -> np.ndarray[Any, Any]:
    return np.stack(results[SIGNATURE_OUTPUT_NAME])


# --------------------------------------------------------------------------- one at a time


def test_each_sample_is_marked_invoked_and_read_in_turn(
    relu_model: Callable[..., Path], samples: Samples
) -> None:
    feeds = {SIGNATURE_INPUT_NAME: samples(3)}
    handle = io.StringIO()
    interpreter = _allocated(Interpreter, relu_model())
    results = run_one_by_one(interpreter, Status(handle), feeds, INPUTS, OUTPUTS, 3)
    np.testing.assert_array_equal(_outputs(results), np.maximum(feeds[SIGNATURE_INPUT_NAME], 0))
    assert _lines(handle) == [
        {"phase": phase, "sample": sample} for sample in range(3) for phase in ("invoke", "read")
    ]


def test_a_sample_of_another_shape_is_allocated_for_first_and_says_so(
    relu_model: Callable[..., Path], samples: Samples
) -> None:
    feeds = {SIGNATURE_INPUT_NAME: samples(2, shape=(3, 4))}
    handle = io.StringIO()
    interpreter = _allocated(Interpreter, relu_model())  # allocated for [1, 4]
    results = run_one_by_one(interpreter, Status(handle), feeds, INPUTS, OUTPUTS, 2)
    assert _outputs(results).shape == (2, 3, 4)
    phases = [(line["phase"], line["sample"]) for line in _lines(handle)]
    assert phases[:3] == [("allocate", 0), ("invoke", 0), ("read", 0)]
    assert ("allocate", 1) not in phases  # the second sample fits the first one's shape


def test_the_first_allocation_is_for_the_datas_shapes(
    relu_model: Callable[..., Path], samples: Samples
) -> None:
    interpreter = Interpreter(model_path=str(relu_model()))
    resize_to_first_sample(interpreter, {SIGNATURE_INPUT_NAME: samples(2, (5, 4))}, INPUTS)
    interpreter.allocate_tensors()
    assert input_details(interpreter)[0]["shape"].tolist() == [5, 4]


def test_no_samples_leave_the_models_own_shapes(relu_model: Callable[..., Path]) -> None:
    interpreter = Interpreter(model_path=str(relu_model()))
    empty = {SIGNATURE_INPUT_NAME: np.zeros((0, 7, 4), np.float32)}
    resize_to_first_sample(interpreter, empty, INPUTS, always=True)
    interpreter.allocate_tensors()
    assert input_details(interpreter)[0]["shape"].tolist() == [1, 4]


# --------------------------------------------------------------------------- batches


def test_a_model_takes_batches_when_its_inputs_take_any_batch_of_single_samples(
    relu_model: Callable[..., Path], samples: Samples
) -> None:
    dynamic = Interpreter(model_path=str(relu_model(dynamic_batch=True)))
    fixed = Interpreter(model_path=str(relu_model()))
    single = {SIGNATURE_INPUT_NAME: samples(4)}
    assert batchable(dynamic, single, INPUTS)
    assert not batchable(fixed, single, INPUTS)
    assert not batchable(dynamic, {SIGNATURE_INPUT_NAME: samples(4, (2, 4))}, INPUTS)
    assert not batchable(dynamic, {SIGNATURE_INPUT_NAME: np.zeros(4, np.float32)}, INPUTS)


def test_batched_results_are_split_back_per_sample_and_marked_by_batch(
    relu_model: Callable[..., Path], samples: Samples
) -> None:
    feeds = {SIGNATURE_INPUT_NAME: samples(5)}
    handle = io.StringIO()
    interpreter = _allocated(Interpreter, relu_model(dynamic_batch=True))
    results = run_batched(interpreter, Status(handle), feeds, INPUTS, OUTPUTS, 2)
    assert results is not None
    np.testing.assert_array_equal(_outputs(results), np.maximum(feeds[SIGNATURE_INPUT_NAME], 0))
    assert _lines(handle) == [
        {"phase": "allocate", "sample": 0, "batch": 2},
        {"phase": "invoke", "sample": 0, "batch": 2},
        {"phase": "read", "sample": 0, "batch": 2},
        {"phase": "invoke", "sample": 2, "batch": 2},
        {"phase": "read", "sample": 2, "batch": 2},
        {"phase": "allocate", "sample": 4},  # the last, shorter batch: one sample
        {"phase": "invoke", "sample": 4},
        {"phase": "read", "sample": 4},
    ]


@pytest.mark.parametrize("runtime", [FirstRowOnly, NoBatches])
def test_a_runtime_that_ignores_or_refuses_batches_is_left_to_single_samples(
    relu_model: Callable[..., Path], samples: Samples, runtime: type
) -> None:
    """Results must not mix samples, and an error must be named by its own sample."""
    interpreter = _allocated(runtime, relu_model(dynamic_batch=True))
    feeds = {SIGNATURE_INPUT_NAME: samples(4)}
    assert run_batched(interpreter, Status(io.StringIO()), feeds, INPUTS, OUTPUTS, 4) is None


# --------------------------------------------------------------------------- latency


def test_latency_is_the_median_of_the_timed_invokes_after_one_warm_up(
    relu_model: Callable[..., Path], samples: Samples
) -> None:
    handle = io.StringIO()
    interpreter = _allocated(Counting, relu_model())
    first = {SIGNATURE_INPUT_NAME: samples(1)[0]}
    milliseconds = median_invoke_ms(interpreter, Status(handle), first, INPUTS, 5)
    assert 0.0 < milliseconds < 1000.0
    assert interpreter.invokes == 6
    assert _lines(handle) == [{"phase": "latency"}]

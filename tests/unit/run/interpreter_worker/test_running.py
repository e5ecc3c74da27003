"""One request's whole run, in this process on the real LiteRT runtime: outputs saved,
the result filled in, the status file naming every phase, batches tried and given up."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ai_edge_litert
import numpy as np

from tests.support.tflite_builder import SIGNATURE_INPUT_NAME, SIGNATURE_OUTPUT_NAME
from tflite_gate.run.interpreter_worker.messages import InterpreterRequest
from tflite_gate.run.interpreter_worker.running import run
from tflite_gate.run.interpreter_worker.status import Status

Request = Callable[..., InterpreterRequest]
Samples = Callable[..., np.ndarray[Any, Any]]

# A runtime that ignores the batch: a batch of samples comes back as one row.
FIRST_ROW_ONLY = """\
from ai_edge_litert.interpreter import Interpreter as _Real


class Interpreter(_Real):
    def get_tensor(self, index, subgraph_index=0):
        return super().get_tensor(index, subgraph_index)[:1]
"""


def _run(request: InterpreterRequest) -> tuple[Any, list[dict[str, Any]]]:
    handle = io.StringIO()
    result = run(request, Status(handle))
    return result, [json.loads(line) for line in handle.getvalue().splitlines()]


def _saved(request: InterpreterRequest) -> dict[str, np.ndarray[Any, Any]]:
    with np.load(request.outputs, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def test_every_sample_runs_and_the_outputs_are_saved_by_name(
    worker_request: Request, relu_model: Callable[..., Path], samples: Samples
) -> None:
    x = samples(3)
    request = worker_request(relu_model(), {SIGNATURE_INPUT_NAME: x})
    result, lines = _run(request)
    assert result.ok and result.samples == 3 and not result.batched
    assert (result.outputs, result.input_names) == ([SIGNATURE_OUTPUT_NAME], [SIGNATURE_INPUT_NAME])
    assert (result.runtime_version, result.latency_ms, result.ragged) == (
        ai_edge_litert.__version__,
        None,
        {},
    )
    np.testing.assert_array_equal(_saved(request)[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))
    assert [line["phase"] for line in lines[:4]] == ["load", "allocate", "invoke", "read"]
    assert len(lines) == 2 + 2 * 3


def test_samples_go_through_in_batches_when_the_model_takes_them(
    worker_request: Request, relu_model: Callable[..., Path], samples: Samples
) -> None:
    x = samples(5)
    request = worker_request(relu_model(dynamic_batch=True), {SIGNATURE_INPUT_NAME: x}, batch=4)
    result, lines = _run(request)
    assert result.ok and result.batched and result.samples == 5
    np.testing.assert_array_equal(_saved(request)[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))
    assert {"phase": "invoke", "sample": 0, "batch": 4} in lines


def test_a_model_that_is_not_batch_wise_runs_again_one_sample_at_a_time(
    worker_request: Request,
    relu_model: Callable[..., Path],
    samples: Samples,
    runtime_module: Callable[..., str],
) -> None:
    x = samples(4)
    module = runtime_module("first_row_runtime", FIRST_ROW_ONLY)
    model = relu_model(dynamic_batch=True)
    request = worker_request(model, {SIGNATURE_INPUT_NAME: x}, batch=4, module=module)
    result, lines = _run(request)
    assert result.ok and not result.batched
    np.testing.assert_array_equal(_saved(request)[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))
    assert lines[-2:] == [{"phase": "invoke", "sample": 3}, {"phase": "read", "sample": 3}]


def test_timed_invokes_come_after_the_outputs_on_their_own_thread_count(
    worker_request: Request, relu_model: Callable[..., Path], samples: Samples
) -> None:
    inputs = {SIGNATURE_INPUT_NAME: samples(2)}
    same, same_lines = _run(worker_request(relu_model(), inputs, latency_runs=3))
    other, other_lines = _run(
        worker_request(relu_model(), inputs, latency_runs=3, latency_threads=2)
    )
    assert same.latency_ms is not None and same.latency_ms > 0
    assert other.latency_ms is not None and other.latency_ms > 0
    assert [line["phase"] for line in same_lines[-2:]] == ["read", "latency"]
    assert [line["phase"] for line in other_lines[-3:]] == ["read", "load", "latency"]


def test_no_samples_mean_no_timing(
    worker_request: Request, relu_model: Callable[..., Path]
) -> None:
    empty = {SIGNATURE_INPUT_NAME: np.zeros((0, 1, 4), np.float32)}
    result, lines = _run(worker_request(relu_model(), empty, latency_runs=3))
    assert result.ok and result.samples == 0 and result.latency_ms is None
    assert [line["phase"] for line in lines] == ["load", "allocate"]

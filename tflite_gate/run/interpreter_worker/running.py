"""One request's run: import the runtime, load the model, run every sample, time invokes."""

from __future__ import annotations

from typing import Any

import numpy as np

from .messages import InterpreterRequest, InterpreterResult
from .runtime import Runtime, load_runtime
from .samples import (
    batchable,
    median_invoke_ms,
    resize_to_first_sample,
    run_batched,
    run_one_by_one,
)
from .status import Status
from .tensors import io_maps, load_feeds, stack


def run(request: InterpreterRequest, status: Status) -> InterpreterResult:
    """Import, load, allocate, then per sample (resize+allocate), invoke, read."""
    runtime = load_runtime(request)
    status.mark("load")
    interpreter = runtime.create(request.model, request.num_threads)
    inputs, outputs = io_maps(interpreter)
    feeds, count = load_feeds(request.inputs, inputs)
    status.mark("allocate")
    resize_to_first_sample(interpreter, feeds, inputs)
    interpreter.allocate_tensors()
    results, batched = _run_samples(interpreter, status, feeds, (inputs, outputs), request, count)
    arrays, ragged = stack(results)
    np.savez(request.outputs, **arrays)
    latency = None
    if request.latency_runs > 0 and count > 0:
        latency = _latency(runtime, interpreter, status, request, feeds, inputs)
    return InterpreterResult(
        ok=True,
        samples=count,
        runtime_version=runtime.version(),
        outputs=list(outputs),
        input_names=list(inputs),
        ragged=ragged,
        batched=batched,
        latency_ms=latency,
    )


def _run_samples(
    interpreter: Any,
    status: Status,
    feeds: dict[str, Any],
    io: tuple[dict[str, int], dict[str, int]],
    request: InterpreterRequest,
    count: int,
) -> tuple[dict[str, list[Any]], bool]:
    """Every sample's outputs, and whether they went through in batches.

    A model that turns out not to be batch-wise starts again, one sample at a time.
    """
    inputs, outputs = io
    if request.batch > 1 and count > 1 and batchable(interpreter, feeds, inputs):
        results = run_batched(interpreter, status, feeds, inputs, outputs, request.batch)
        if results is not None:
            return results, True
        resize_to_first_sample(interpreter, feeds, inputs, always=True)
        interpreter.allocate_tensors()
    return run_one_by_one(interpreter, status, feeds, inputs, outputs, count), False


def _latency(
    runtime: Runtime,
    interpreter: Any,
    status: Status,
    request: InterpreterRequest,
    feeds: dict[str, Any],
    inputs: dict[str, int],
) -> float:
    """The median invoke of the first sample, on an interpreter of its own thread count."""
    first = {name: feed[0] for name, feed in feeds.items()}
    if request.latency_threads and request.latency_threads != request.num_threads:
        status.mark("load")
        interpreter = runtime.create(request.model, request.latency_threads)
    return median_invoke_ms(interpreter, status, first, inputs, request.latency_runs)

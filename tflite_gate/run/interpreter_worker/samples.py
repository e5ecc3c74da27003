"""Samples through an interpreter: one at a time, in batches, and timed invokes.

Before each resize, invoke and read the status file says where the worker is, so a
crash is named by its phase and sample (or batch of samples).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from .status import Status
from .tensors import input_details, prepare_feed, read_outputs


def resize_to_first_sample(
    interpreter: Any, feeds: dict[str, Any], inputs: dict[str, int], always: bool = False
) -> None:
    """Allocate for the data's shapes, not the model's placeholders.

    An input declared [-1, -1] is stored as [1, 1]; a model that reshapes it fails
    its first allocation at that size, before any sample could resize it.
    """
    details = input_details(interpreter)
    for name, index in inputs.items():
        shape = list(feeds[name].shape[1:])
        if feeds[name].shape[0] and (always or shape != list(details[index]["shape"])):
            interpreter.resize_tensor_input(index, shape, strict=False)


def _run_sample(
    interpreter: Any, status: Status, sample: int, feed: dict[str, Any], inputs: dict[str, int]
) -> None:
    """Resize and re-allocate if this sample's shapes differ, then set the inputs and invoke."""
    details = input_details(interpreter)
    values = {inputs[name]: prepare_feed(feed[name], details[i]) for name, i in inputs.items()}
    resize = [i for i, v in values.items() if list(v.shape) != list(details[i]["shape"])]
    if resize:
        status.mark("allocate", sample)
        for index in resize:
            interpreter.resize_tensor_input(index, list(values[index].shape), strict=False)
        interpreter.allocate_tensors()
    status.mark("invoke", sample)
    for index, value in values.items():
        interpreter.set_tensor(index, value)
    interpreter.invoke()


def run_one_by_one(
    interpreter: Any,
    status: Status,
    feeds: dict[str, Any],
    inputs: dict[str, int],
    outputs: dict[str, int],
    count: int,
) -> dict[str, list[Any]]:
    """Every sample in its own invoke: what any model can do."""
    results: dict[str, list[Any]] = {name: [] for name in outputs}
    for sample in range(count):
        _run_sample(interpreter, status, sample, {n: f[sample] for n, f in feeds.items()}, inputs)
        status.mark("read", sample)
        for name, value in read_outputs(interpreter, outputs).items():
            results[name].append(value)
    return results


def batchable(interpreter: Any, feeds: dict[str, Any], inputs: dict[str, int]) -> bool:
    """Every input takes any batch (signature -1) and every sample is a batch of one."""
    details = input_details(interpreter)
    for name, index in inputs.items():
        signature = list(details[index].get("shape_signature", []))
        if not signature or signature[0] != -1:
            return False
        if feeds[name].ndim < 2 or feeds[name].shape[1] != 1:
            return False
    return True


def run_batched(
    interpreter: Any,
    status: Status,
    feeds: dict[str, Any],
    inputs: dict[str, int],
    outputs: dict[str, int],
    size: int,
) -> dict[str, list[Any]] | None:
    """Samples `size` at a time, split back per sample; None when the model is not batch-wise.

    A model whose outputs do not come back with one row per sample mixes samples (or
    ignores the batch), and an invoke that raises must be named by its sample: both
    go back to one sample at a time, so results and errors stay what they would be.
    """
    count = next(iter(feeds.values())).shape[0]
    results: dict[str, list[Any]] = {name: [] for name in outputs}
    details = input_details(interpreter)
    allocated: int | None = None
    for start in range(0, count, size):
        rows = min(size, count - start)
        values = {
            index: prepare_feed(np.concatenate(feeds[name][start : start + rows]), details[index])
            for name, index in inputs.items()
        }
        try:
            if rows != allocated:
                status.mark("allocate", start, rows)
                for index, value in values.items():
                    interpreter.resize_tensor_input(index, list(value.shape), strict=False)
                interpreter.allocate_tensors()
                allocated = rows
            status.mark("invoke", start, rows)
            for index, value in values.items():
                interpreter.set_tensor(index, value)
            interpreter.invoke()
        except Exception:
            return None
        status.mark("read", start, rows)
        read = read_outputs(interpreter, outputs)
        if any(np.ndim(value) == 0 or np.shape(value)[0] != rows for value in read.values()):
            return None
        for name, value in read.items():
            results[name].extend(value[i : i + 1] for i in range(rows))
    return results


def median_invoke_ms(
    interpreter: Any, status: Status, feed: dict[str, Any], inputs: dict[str, int], runs: int
) -> float:
    """Milliseconds per invoke of one sample: the median of `runs`, after one warm-up.

    The median, not the mean: a CI runner's neighbours make single invokes slow, and
    the first invoke pays for lazy set-up (XNNPACK packs its weights then).
    """
    status.mark("latency")
    details = input_details(interpreter)
    for name, index in inputs.items():
        interpreter.resize_tensor_input(index, list(feed[name].shape), strict=False)
    interpreter.allocate_tensors()
    for name, index in inputs.items():
        interpreter.set_tensor(index, prepare_feed(feed[name], details[index]))
    interpreter.invoke()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - started) * 1000.0)
    return float(statistics.median(times))

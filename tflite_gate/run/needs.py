"""A runner's needs against a model: a run it cannot take is refused before it starts.

Checked on the model's flatbuffer facts in the gate's process, so a GPU delegate that
takes fixed shapes only, or a microcontroller runtime without Flex, says why it did
not run a model instead of failing somewhere inside a worker.
"""

from __future__ import annotations

from pathlib import Path

from tflite_gate.report.model import Inspection
from tflite_gate.run.runner import PreparedRunner, RunJob, RunnerNeeds, RunResult
from tflite_gate.support.workspace_files import read_tflite
from tflite_gate.tflite.facts import InvalidModelError, inspect_model

MIB = 1 << 20


def unmet_needs(needs: RunnerNeeds, model: Inspection, memory_mb: int | None) -> str | None:
    """Why a runner with `needs` cannot take `model` under `memory_mb`; None if it can."""
    if needs.static_shapes:
        dynamic = [t for t in model.inputs if any(d < 0 for d in t.shape)]
        if dynamic:
            first = dynamic[0]
            return (
                f"it takes fixed input shapes only, and input {first.name!r} is {first.shape}: "
                "set its shape with `input_shapes`"
            )
    if not needs.flex_ops:
        flex = [op.name for op in model.ops if op.kind == "flex"]
        if flex:
            return f"it has no Flex delegate, and the model has Select TF ops: {', '.join(flex)}"
    arena = needs.arena_bytes
    if arena is not None and memory_mb is not None and arena > memory_mb * MIB:
        return f"its tensor arena of {arena} bytes is over limits.memory_mb ({memory_mb} MB)"
    return None


def refusal(runner: PreparedRunner, model: Path, job: RunJob) -> RunResult | None:
    """The result of a run `runner` refuses before it starts; None when it can run.

    A runner that needs nothing special costs nothing here: the model is read only to
    check a need.
    """
    if runner.needs == RunnerNeeds():
        return None
    try:
        facts = inspect_model(read_tflite(model))
    except InvalidModelError:
        return None  # the run says what is wrong with it, in the runtime's words
    reason = unmet_needs(runner.needs, facts, job.memory_mb)
    if reason is None:
        return None
    message = f"not run on {runner.name}: {reason}"
    return RunResult(status="refused", phase=None, sample=None, signal=None, message=message)

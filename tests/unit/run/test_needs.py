"""What a runner needs of a model, and a run it refuses (`run/needs.py`, `run/runner.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.support.tflite_builder import build_model, builtin, custom
from tflite_gate.run.needs import MIB, refusal, unmet_needs
from tflite_gate.run.runner import Arrays, RunJob, RunnerNeeds, RunResult
from tflite_gate.tflite.facts import inspect_model


@dataclass
class RecordingRunner:
    """A runner of its own kind, as the next runners will be: it records the runs it gets."""

    needs: RunnerNeeds = field(default_factory=RunnerNeeds)
    name: str = "recording"
    version: str | None = "1.0"
    reused: Path | None = None
    runs: list[Path] = field(default_factory=list)

    def run(self, model: Path, inputs: Arrays, job: RunJob) -> RunResult:
        self.runs.append(model)
        outputs = {"y": next(iter(inputs.values()))}
        return RunResult(
            status="ok", phase=None, sample=None, signal=None, message=None, outputs=outputs
        )


def _job(tmp_path: Path, memory_mb: int | None = None) -> RunJob:
    return RunJob(
        scratch=tmp_path / "scratch",
        reproducer=tmp_path / "repro",
        timeout_s=10,
        memory_mb=memory_mb,
    )


def _model(tmp_path: Path, blob: bytes) -> Path:
    path = tmp_path / "model.tflite"
    path.write_bytes(blob)
    return path


def test_the_default_needs_ask_nothing_of_any_model() -> None:
    dynamic = inspect_model(build_model([builtin("RELU")], dynamic_batch=True))
    flex = inspect_model(build_model([custom("FlexErf")]))
    for model in (dynamic, flex):
        assert unmet_needs(RunnerNeeds(), model, memory_mb=1) is None


def test_a_runner_of_fixed_shapes_refuses_a_dynamic_input_and_names_it() -> None:
    needs = RunnerNeeds(static_shapes=True)
    dynamic = inspect_model(build_model([builtin("RELU")], dynamic_batch=True))
    reason = unmet_needs(needs, dynamic, None)
    assert reason is not None
    assert "fixed input shapes" in reason and "[-1, 4]" in reason and "input_shapes" in reason
    assert unmet_needs(needs, inspect_model(build_model([builtin("RELU")])), None) is None


def test_a_runner_without_flex_refuses_select_tf_ops() -> None:
    needs = RunnerNeeds(flex_ops=False)
    reason = unmet_needs(needs, inspect_model(build_model([custom("FlexErf")])), None)
    assert reason is not None and "FlexErf" in reason
    plain = inspect_model(build_model([custom("GateAddOne")]))
    assert unmet_needs(needs, plain, None) is None  # a custom op is no Select TF op


def test_an_arena_over_the_memory_limit_is_refused() -> None:
    model = inspect_model(build_model([builtin("RELU")]))
    needs = RunnerNeeds(arena_bytes=64 * MIB + 1)
    reason = unmet_needs(needs, model, memory_mb=64)
    assert reason is not None and "limits.memory_mb" in reason
    assert unmet_needs(needs, model, memory_mb=65) is None
    assert unmet_needs(needs, model, memory_mb=None) is None


def test_a_refused_run_never_reaches_the_runner(tmp_path: Path) -> None:
    runner = RecordingRunner(needs=RunnerNeeds(static_shapes=True))
    model = _model(tmp_path, build_model([builtin("RELU")], dynamic_batch=True))
    refused = refusal(runner, model, _job(tmp_path))
    assert refused is not None
    assert (refused.status, refused.ok, refused.outputs) == ("refused", False, {})
    assert refused.message is not None and refused.message.startswith("not run on recording: ")
    assert runner.runs == []


def test_a_runner_that_needs_nothing_does_not_read_the_model(tmp_path: Path) -> None:
    """The CPU interpreters need nothing: checking costs no read of the model."""
    missing = tmp_path / "never-written.tflite"
    assert refusal(RecordingRunner(), missing, _job(tmp_path)) is None


def test_a_model_the_runner_can_take_is_left_to_run(tmp_path: Path) -> None:
    runner = RecordingRunner(needs=RunnerNeeds(static_shapes=True, flex_ops=False))
    model = _model(tmp_path, build_model([builtin("RELU")]))
    assert refusal(runner, model, _job(tmp_path)) is None
    result = runner.run(model, {"x": np.zeros((2, 1, 4), np.float32)}, _job(tmp_path))
    assert result.ok and result.delegation is None and result.memory is None


def test_a_model_that_does_not_parse_is_left_to_the_run_to_report(tmp_path: Path) -> None:
    runner = RecordingRunner(needs=RunnerNeeds(static_shapes=True))
    model = _model(tmp_path, b"not a flatbuffer at all")
    assert refusal(runner, model, _job(tmp_path)) is None

"""The runners there are: which one a runtime gets, how each prepares, and a real run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.tflite_builder import (
    SIGNATURE_INPUT_NAME,
    SIGNATURE_OUTPUT_NAME,
    build_model,
    builtin,
)
from tflite_gate.run.runner import RunJob, RunnerNeeds, RuntimeUnavailable
from tflite_gate.run.runners import (
    InstalledInterpreterRunner,
    VirtualEnvRunner,
    WorkerInterpreter,
    runner_for,
)
from tflite_gate.run.runtimes import RuntimeSpec


def test_the_gates_own_runtime_gets_the_installed_interpreter() -> None:
    spec = RuntimeSpec("ai-edge-litert", None)
    assert runner_for(spec) == InstalledInterpreterRunner(spec)
    assert runner_for(spec).name == "ai-edge-litert"


def test_a_runtime_with_a_requirement_gets_a_virtual_environment() -> None:
    spec = RuntimeSpec("tflite-runtime==2.14.0", "tflite-runtime==2.14.0", ("numpy<2",))
    runner = runner_for(spec)
    assert runner == VirtualEnvRunner(spec, "tflite-runtime==2.14.0")
    assert runner.name == "tflite-runtime==2.14.0"


def test_the_installed_interpreter_prepares_without_a_cache_or_a_process(tmp_path: Path) -> None:
    prepared = runner_for(RuntimeSpec("ai-edge-litert", None)).prepare(tmp_path / "cache")
    assert isinstance(prepared, WorkerInterpreter)
    assert prepared.environment.python == sys.executable
    assert prepared.environment.module == "ai_edge_litert.interpreter"
    assert prepared.version is not None and prepared.reused is None
    assert prepared.needs == RunnerNeeds()
    assert not (tmp_path / "cache").exists()


def test_a_runtime_that_cannot_be_prepared_says_what_to_do(tmp_path: Path) -> None:
    missing = RuntimeSpec("local", str(tmp_path / "no-such-wheel.whl"), module="x.interpreter")
    with pytest.raises(RuntimeUnavailable, match="build or commit local before the gate runs"):
        runner_for(missing).prepare(tmp_path / "cache")
    absent = RuntimeSpec("absent", None, module="tflite_gate_no_such_module.interpreter")
    with pytest.raises(RuntimeUnavailable, match="not installed next to the gate"):
        runner_for(absent).prepare(tmp_path / "cache")


@pytest.mark.slow
def test_the_installed_interpreter_runs_samples_and_reports_its_memory(tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(build_model([builtin("RELU")]))
    prepared = runner_for(RuntimeSpec("ai-edge-litert", None)).prepare(tmp_path / "cache")
    samples = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 1, 4)
    job = RunJob(
        scratch=tmp_path / "scratch", reproducer=tmp_path / "repro", timeout_s=60, memory_mb=None
    )
    result = prepared.run(model, {SIGNATURE_INPUT_NAME: samples}, job)
    assert result.ok, result.message
    np.testing.assert_array_equal(result.outputs[SIGNATURE_OUTPUT_NAME], np.maximum(samples, 0))
    assert result.runtime_version == prepared.version
    assert result.memory is not None and result.memory.peak_rss_mb is not None
    assert result.memory.peak_rss_mb > 0
    assert result.delegation is None

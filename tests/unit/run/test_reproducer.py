"""A failed run's reproducer: the model, only the failing sample, and a script that says what."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support.tflite_builder import SIGNATURE_INPUT_NAME, build_model, builtin
from tflite_gate.run.reproducer import write_reproducer
from tflite_gate.run.runner import RunResult


def _crash(sample: int | None) -> RunResult:
    return RunResult(status="crash", phase="invoke", sample=sample, signal="SIGSEGV", message="x")


def _write(tmp_path: Path, result: RunResult) -> Path:
    model = tmp_path / "model.tflite"
    model.write_bytes(build_model([builtin("RELU")]))
    samples = np.arange(12, dtype=np.float32).reshape(3, 1, 4)
    directory = tmp_path / "reproducer"
    written = write_reproducer(
        directory, model, {SIGNATURE_INPUT_NAME: samples}, "some.interpreter", result
    )
    assert written == directory
    return directory


def test_the_reproducer_keeps_only_the_failing_sample(tmp_path: Path) -> None:
    directory = _write(tmp_path, _crash(2))
    assert sorted(p.name for p in directory.iterdir()) == [
        "inputs.npz",
        "model.tflite",
        "reproduce.py",
    ]
    with np.load(directory / "inputs.npz") as inputs:
        assert inputs[SIGNATURE_INPUT_NAME].tolist() == [[[8.0, 9.0, 10.0, 11.0]]]
    assert (directory / "model.tflite").read_bytes() == (tmp_path / "model.tflite").read_bytes()


def test_a_failure_without_a_sample_keeps_every_sample(tmp_path: Path) -> None:
    directory = _write(tmp_path, _crash(None))
    with np.load(directory / "inputs.npz") as inputs:
        assert inputs[SIGNATURE_INPUT_NAME].shape == (3, 1, 4)


def test_the_script_says_what_happened_and_which_runtime_to_try(tmp_path: Path) -> None:
    script = (_write(tmp_path, _crash(2)) / "reproduce.py").read_text()
    assert "Reproduce what tflite-gate saw: SIGSEGV in invoke of sample 2." in script
    assert "'some.interpreter'" in script
    compile(script, "reproduce.py", "exec")  # a script a user can run as it is

"""Real pieces for the worker's modules, tested in this process: tiny models, requests,
and runtime modules written to disk (the worker imports its runtime by name)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.tflite_builder import build_model, builtin
from tflite_gate.run.interpreter import WORKER_DIRECTORY
from tflite_gate.run.interpreter_worker.messages import InterpreterRequest

LITERT = "ai_edge_litert.interpreter"


@pytest.fixture
def relu_model(tmp_path: Path) -> Callable[..., Path]:
    """A RELU model written to disk; options as `build_model` takes them."""

    def write(**options: Any) -> Path:
        path = tmp_path / "model.tflite"
        path.write_bytes(build_model([builtin("RELU")], **options))
        return path

    return write


@pytest.fixture
def worker_request(tmp_path: Path) -> Callable[..., InterpreterRequest]:
    """A request for `model` on `inputs` (saved as the worker's .npz), files in tmp_path."""

    def make(model: Path, inputs: dict[str, Any], **fields: Any) -> InterpreterRequest:
        np.savez(tmp_path / "inputs.npz", **inputs)
        places = {
            "inputs": "inputs.npz",
            "outputs": "outputs.npz",
            "result": "result.json",
            "status": "status.jsonl",
        }
        paths = {key: str(tmp_path / name) for key, name in places.items()}
        return InterpreterRequest(model=str(model), **{"module": LITERT, **paths, **fields})

    return make


@pytest.fixture
def runtime_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Write a module the worker can import by name; it is forgotten after the test."""
    directory = tmp_path / "modules"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    written: list[str] = []

    def write(name: str, source: str) -> str:
        (directory / f"{name}.py").write_text(source)
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


@pytest.fixture
def samples() -> Callable[..., np.ndarray[Any, Any]]:
    """`count` samples with negative and positive values, so RELU changes some."""

    def make(count: int, shape: tuple[int, ...] = (1, 4)) -> np.ndarray[Any, Any]:
        values = np.arange(count * int(np.prod(shape)), dtype=np.float32) - 5.0
        return values.reshape(count, *shape)

    return make


@pytest.fixture
def run_by_path() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a worker directory by path, as the gate does (only for tests marked slow)."""

    def run(request: Path, directory: Path = WORKER_DIRECTORY) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(directory), str(request)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    return run

"""The interpreter worker's own modules: self-contained, runnable by path, and their pieces.

The worker runs under other environments' Pythons, so what it may import is tested
here on its source; its pieces are tested in this process, on real arrays and a
real status file. Runs of whole models are in test_execute.py.
"""

from __future__ import annotations

import ast
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tflite_gate.run.interpreter import WORKER_DIRECTORY
from tflite_gate.run.interpreter_worker import __main__ as entry
from tflite_gate.run.interpreter_worker.failures import (
    ERROR_LINES,
    PhaseError,
    error_message,
    exception_line,
    failure,
    failure_kind,
)
from tflite_gate.run.interpreter_worker.status import Status
from tflite_gate.run.interpreter_worker.tensors import (
    load_feeds,
    prepare_feed,
    read_output,
    stack,
)

MODULES = sorted(WORKER_DIRECTORY.glob("*.py"))


def _imports(path: Path) -> tuple[set[str], list[int]]:
    """Top-level names a module imports absolutely, and the levels of its relative imports."""
    absolute: set[str] = set()
    levels: list[int] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                levels.append(node.level)
            elif node.module:
                absolute.add(node.module.split(".")[0])
    return absolute, levels


# --------------------------------------------------------------------------- self-containment


def test_the_worker_imports_only_stdlib_numpy_and_its_own_modules() -> None:
    """It runs by path under other environments' Pythons where tflite_gate is not installed."""
    assert len(MODULES) > 5
    for path in MODULES:
        absolute, levels = _imports(path)
        assert absolute - set(sys.stdlib_module_names) <= {"numpy"}, path.name
        assert all(level == 1 for level in levels), f"{path.name} reaches outside the worker"


def test_the_worker_parses_as_python_3_8_and_postpones_its_annotations() -> None:
    """Old runtimes' environments may run an older Python: `X | None` must stay a string."""
    for path in MODULES:
        source = path.read_text()
        ast.parse(source, feature_version=(3, 8))
        if path.name not in {"__init__.py", "__main__.py"}:
            assert "from __future__ import annotations" in source, path.name


def test_each_worker_module_stays_under_600_lines() -> None:
    for path in MODULES:
        assert len(path.read_text().splitlines()) <= 600, path.name


def test_the_entry_point_drops_its_own_directory_from_the_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = str(WORKER_DIRECTORY)
    monkeypatch.setattr(sys, "path", [here, "/elsewhere", here + "/.", *sys.path])
    assert entry.drop_own_directory() == here
    assert here not in sys.path and here + "/." not in sys.path
    assert "/elsewhere" in sys.path


@pytest.mark.slow
def test_a_module_beside_the_worker_does_not_shadow_the_standard_library(
    tmp_path: Path,
) -> None:
    """Run by path, the worker's directory comes first on sys.path: it must be gone before
    the worker imports `json` (here a file that would break every import of it)."""
    worker = tmp_path / "worker"
    shutil.copytree(WORKER_DIRECTORY, worker, ignore=shutil.ignore_patterns("__pycache__"))
    (worker / "json.py").write_text("raise ImportError('the worker imported its own json.py')\n")
    request = tmp_path / "request.json"
    request.write_text('{"model": "m"}')  # not a valid request: the worker says so, exit 2
    done = subprocess.run(
        [sys.executable, str(worker), str(request)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "InterpreterRequest.module: required" in done.stderr


# --------------------------------------------------------------------------- failures


def test_a_message_repeated_whole_is_said_once_and_long_ones_are_cut() -> None:
    assert error_message(RuntimeError("Registration failed.Registration failed.")) == (
        "Registration failed."
    )
    long = "\n".join(f"line {i}" for i in range(ERROR_LINES + 5))
    assert len(error_message(RuntimeError(long)).splitlines()) == ERROR_LINES
    assert error_message(RuntimeError("")) == "RuntimeError"


def test_an_exception_line_is_its_type_and_last_line() -> None:
    error = ModuleNotFoundError("Traceback ...\nNo module named 'numpy'")
    assert exception_line(error) == "ModuleNotFoundError: No module named 'numpy'"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Encountered unresolved custom op: GateAddOne.\nNode number 0 failed", "unresolved-custom-op"),
        ("Select TensorFlow op(s), included in the given model, is(are) not supported", "unsupported-flex"),
        ("tensorflow/lite/kernels/reshape.cc:92 num_input_elements != num_output_elements", "error"),
    ],
)  # fmt: skip
def test_failures_that_are_no_runtime_bug_get_kinds_of_their_own(message: str, kind: str) -> None:
    assert failure_kind(message) == kind


def test_a_failure_names_each_unresolved_custom_op_once() -> None:
    message = (
        "Encountered unresolved custom op: B.\nEncountered unresolved custom op: A.\n"
        "Encountered unresolved custom op: B.\n"
    )
    result = failure("allocate", None, message, failure_kind(message))
    assert (result.ok, result.phase, result.kind) == (False, "allocate", "unresolved-custom-op")
    assert result.unresolved_custom_ops == ["B", "A"]
    assert failure("invoke", 3, message, "error").unresolved_custom_ops == []


# --------------------------------------------------------------------------- status


def test_each_status_line_is_flushed_whole_with_its_sample_and_batch() -> None:
    handle = io.StringIO()
    status = Status(handle)
    status.mark("load")
    status.mark("invoke", 4)
    status.mark("invoke", 16, batch=16)
    lines = [json.loads(line) for line in handle.getvalue().splitlines()]
    assert lines == [
        {"phase": "load"},
        {"phase": "invoke", "sample": 4},
        {"phase": "invoke", "sample": 16, "batch": 16},
    ]
    assert (status.phase, status.sample) == ("invoke", 16)


# --------------------------------------------------------------------------- tensors


def _int8_detail(scale: float = 0.5, zero_point: int = -3) -> dict[str, object]:
    return {
        "dtype": np.int8,
        "shape": np.array([1, 4]),
        "quantization": (scale, zero_point),
        "quantization_parameters": {"scales": [scale], "zero_points": [zero_point]},
    }


def test_float_feeds_to_a_quantized_input_are_quantized_and_clipped() -> None:
    fed = prepare_feed(np.array([[0.0, 1.0, -100.0, 100.0]], np.float32), _int8_detail())
    assert fed.dtype == np.int8
    assert fed.tolist() == [[-3, -1, -128, 127]]


def test_a_feed_of_the_tensor_dtype_goes_in_as_it_is() -> None:
    value = np.array([[5, 6, 7, 8]], np.int8)
    assert prepare_feed(value, _int8_detail()) is value


def test_quantized_outputs_come_back_in_real_units() -> None:
    real = read_output(np.array([[-3, -1, 1]], np.int8), _int8_detail())
    assert real.dtype == np.float32
    assert real.tolist() == [[0.0, 1.0, 2.0]]


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


def test_outputs_of_one_shape_stack_and_ragged_ones_get_a_key_per_sample() -> None:
    arrays, ragged = stack(
        {"same": [np.zeros(2), np.ones(2)], "varies": [np.zeros(1), np.zeros(3)]}
    )
    assert arrays["same"].shape == (2, 2)
    assert ragged == {"varies": ["__ragged_1_0", "__ragged_1_1"]}
    assert arrays["__ragged_1_1"].shape == (3,)
    assert stack({"none": []})[0]["none"].shape == (0,)

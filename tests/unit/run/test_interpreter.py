"""The interpreter worker with real runtimes: results, crashes, hangs, errors, reproducers.

Models come from `tflite_builder` (no TensorFlow). Crashes and hangs come from
tiny fake runtime modules written into tmp_path: their `Interpreter` subclasses
the real `ai_edge_litert` one and misbehaves in one phase, so the worker, the
status file and the parent are all exercised for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ai_edge_litert
import numpy as np
import pytest

from tests.support.tflite_builder import (
    INPUT_TENSOR_NAME,
    IO_SCALE,
    IO_ZERO_POINT,
    OUTPUT_TENSOR_NAME,
    SIGNATURE_INPUT_NAME,
    SIGNATURE_OUTPUT_NAME,
    build_broken_model,
    build_model,
    builtin,
    custom,
)
from tflite_gate.run import interpreter as execute
from tflite_gate.run.interpreter import run_interpreter
from tflite_gate.run.runner import RunResult

pytestmark = pytest.mark.slow  # every test here starts processes

LITERT = "ai_edge_litert.interpreter"

# Fake runtimes: module name under the `fakert` package → body of the Interpreter subclass.
FAKES = {
    "abort_invoke": "def invoke(self):\n    os.abort()",
    "segv_invoke": "def invoke(self):\n    os.kill(os.getpid(), signal.SIGSEGV)",
    "abort_allocate": "def allocate_tensors(self):\n    os.abort()",
    "segv_read_1": (
        "count = 0\n"
        "def get_tensor(self, index, subgraph_index=0):\n"
        "    type(self).count += 1\n"
        "    if type(self).count == 2:\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    return super().get_tensor(index, subgraph_index)"
    ),
    "sleep_invoke": "def invoke(self):\n    time.sleep(60)",
    "hog_invoke": "def invoke(self):\n    self.hog = b'x' * (600 << 20)\n    time.sleep(60)",
    "boom_invoke": "def invoke(self):\n    raise RuntimeError('boom: the runtime said no')",
    "first_row_read": (
        "def get_tensor(self, index, subgraph_index=0):\n"
        "    return super().get_tensor(index, subgraph_index)[:1]"
    ),
    "segv_batch_invoke": (
        "def invoke(self):\n"
        "    if self.get_input_details()[0]['shape'][0] > 1:\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    super().invoke()"
    ),
    "segv_marked_invoke": (
        "def invoke(self):\n"
        "    if (self.get_tensor(self.get_input_details()[0]['index']) > 100).any():\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    super().invoke()"
    ),
    "ragged_read": (
        "count = 0\n"
        "def get_tensor(self, index, subgraph_index=0):\n"
        "    type(self).count += 1\n"
        "    return np.arange(type(self).count, dtype=np.float32)"
    ),
}
_FAKE_MODULE = """\
import os
import signal
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter as _Real


class Interpreter(_Real):
{body}
"""


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PYTHONPATH has the `fakert` package of misbehaving runtimes."""
    package = tmp_path / "fakes" / "fakert"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '0.0-fake'\n")
    for name, body in FAKES.items():
        indented = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
        (package / f"{name}.py").write_text(_FAKE_MODULE.format(body=indented))
    return {**os.environ, "PYTHONPATH": str(tmp_path / "fakes")}


def _model(tmp_path: Path, blob: bytes, name: str = "model.tflite") -> Path:
    path = tmp_path / name
    path.write_bytes(blob)
    return path


def _run(
    tmp_path: Path,
    model: Path,
    inputs: dict[str, np.ndarray[Any, Any]],
    *,
    module: str = LITERT,
    timeout_s: float = 60,
    memory_mb: int | None = None,
    env: dict[str, str] | None = None,
    batch: int = execute.BATCH,
) -> RunResult:
    return run_interpreter(
        model,
        inputs,
        python=sys.executable,
        module=module,
        scratch=tmp_path / "scratch",
        reproducer_dir=tmp_path / "repro",
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        env=env,
        batch=batch,
    )


def _samples(count: int, shape: tuple[int, ...] = (1, 4), seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).uniform(-3, 3, (count, *shape)).astype(np.float32)


def _reproduce(
    directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(directory / "reproduce.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=directory.parent,
    )


# --------------------------------------------------------------------------- results


def test_float_model_outputs_by_signature_name(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU", count=2)]))
    x = _samples(4)
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: x})
    assert result.status == "ok", result.message
    assert (result.phase, result.sample, result.signal, result.reproducer) == (None,) * 4
    assert list(result.outputs) == [SIGNATURE_OUTPUT_NAME]
    np.testing.assert_array_equal(result.outputs[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))
    assert result.runtime_version == ai_edge_litert.__version__
    assert not (tmp_path / "repro").exists()


def test_model_without_signature_uses_tensor_names(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")], signature=False))
    x = _samples(2)
    result = _run(tmp_path, model, {INPUT_TENSOR_NAME: x})
    assert result.status == "ok", result.message
    np.testing.assert_array_equal(result.outputs[OUTPUT_TENSOR_NAME], np.maximum(x, 0))


def test_quantized_io_takes_and_gives_real_values(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")], quantized_io=True))
    x = _samples(5)
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: x})
    assert result.status == "ok", result.message
    out = result.outputs[SIGNATURE_OUTPUT_NAME]
    assert out.dtype == np.float32
    # The float feed is rounded to the nearest step of the int8 grid: half a step at most.
    assert np.max(np.abs(out - np.maximum(x, 0))) <= IO_SCALE / 2 + 1e-6


def test_quantized_feed_of_the_tensor_dtype_is_passed_as_is(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")], quantized_io=True))
    q = np.array([[[-4, -3, 0, 10]]], dtype=np.int8)  # real: -0.5, 0, 1.5, 6.5
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: q})
    assert result.status == "ok", result.message
    real = (q.astype(np.float32) - IO_ZERO_POINT) * IO_SCALE
    np.testing.assert_array_equal(result.outputs[SIGNATURE_OUTPUT_NAME], np.maximum(real, 0))


def test_sample_shape_differing_from_the_model_resizes_the_input(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))  # input shape [1, 4]
    x = _samples(2, shape=(3, 4))
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: x})
    assert result.status == "ok", result.message
    np.testing.assert_array_equal(result.outputs[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))
    # The first allocation is already for the data's shape (a model that reshapes a
    # [-1, -1] input cannot allocate at its [1, 1] placeholder), so sample 0 needs none.
    status_lines = (tmp_path / "scratch" / "status.jsonl").read_text().splitlines()
    assert '{"phase": "allocate"}' in status_lines
    assert '{"phase": "allocate", "sample": 0}' not in status_lines


def test_output_whose_shape_varies_by_sample(tmp_path: Path, fake_env: dict[str, str]) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))
    result = _run(
        tmp_path,
        model,
        {SIGNATURE_INPUT_NAME: _samples(3)},
        module="fakert.ragged_read",
        env=fake_env,
    )
    assert result.status == "ok", result.message
    per_sample = result.outputs[SIGNATURE_OUTPUT_NAME]
    assert [list(per_sample[i]) for i in range(3)] == [[0], [0, 1], [0, 1, 2]]
    assert result.runtime_version == "0.0-fake"


# --------------------------------------------------------------------------- batches


def _status_lines(tmp_path: Path) -> list[str]:
    return (tmp_path / "scratch" / "status.jsonl").read_text().splitlines()


def test_a_model_that_takes_any_batch_runs_its_samples_in_batches(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU", count=2)], dynamic_batch=True))
    x = _samples(5)
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: x}, batch=2)
    assert result.status == "ok", result.message
    assert result.batched
    np.testing.assert_array_equal(result.outputs[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))
    invokes = [line for line in _status_lines(tmp_path) if '"invoke"' in line]
    assert invokes == [
        '{"phase": "invoke", "sample": 0, "batch": 2}',
        '{"phase": "invoke", "sample": 2, "batch": 2}',
        '{"phase": "invoke", "sample": 4}',
    ]


def test_a_fixed_batch_model_runs_one_sample_at_a_time(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))  # shape signature [1, 4]
    x = _samples(3)
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: x})
    assert result.status == "ok" and not result.batched
    np.testing.assert_array_equal(result.outputs[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))


def test_batched_and_one_by_one_outputs_are_the_same(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU"), builtin("TANH")], dynamic_batch=True))
    x = _samples(7)
    batched = _run(tmp_path / "a", model, {SIGNATURE_INPUT_NAME: x})
    single = _run(tmp_path / "b", model, {SIGNATURE_INPUT_NAME: x}, batch=1)
    assert batched.batched and not single.batched
    np.testing.assert_array_equal(
        batched.outputs[SIGNATURE_OUTPUT_NAME], single.outputs[SIGNATURE_OUTPUT_NAME]
    )


def test_outputs_without_a_row_per_sample_go_back_to_one_by_one(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")], dynamic_batch=True))
    x = _samples(4)
    result = _run(
        tmp_path, model, {SIGNATURE_INPUT_NAME: x}, module="fakert.first_row_read", env=fake_env
    )
    assert result.status == "ok", result.message
    assert not result.batched
    np.testing.assert_array_equal(result.outputs[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))
    assert '{"phase": "invoke", "sample": 3}' in _status_lines(tmp_path)


def test_an_error_inside_a_batch_is_named_by_its_sample(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")], dynamic_batch=True))
    result = _run(
        tmp_path,
        model,
        {SIGNATURE_INPUT_NAME: _samples(3)},
        module="fakert.boom_invoke",
        env=fake_env,
    )
    assert (result.status, result.phase, result.sample) == ("error", "invoke", 0)
    assert result.message is not None and "boom" in result.message


def test_a_crash_only_in_batches_is_run_again_one_by_one(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")], dynamic_batch=True))
    x = _samples(3)
    result = _run(
        tmp_path, model, {SIGNATURE_INPUT_NAME: x}, module="fakert.segv_batch_invoke", env=fake_env
    )
    assert result.status == "ok", result.message
    assert not result.batched
    np.testing.assert_array_equal(result.outputs[SIGNATURE_OUTPUT_NAME], np.maximum(x, 0))


def test_a_crash_inside_a_batch_is_named_by_its_sample(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")], dynamic_batch=True), "crashy.tflite")
    x = _samples(4)
    x[2, 0, 1] = 500.0  # the fake runtime crashes on any input holding a value above 100
    result = _run(
        tmp_path, model, {SIGNATURE_INPUT_NAME: x}, module="fakert.segv_marked_invoke", env=fake_env
    )
    assert (result.status, result.phase, result.sample, result.signal) == (
        "crash",
        "invoke",
        2,
        "SIGSEGV",
    )
    assert result.message is not None
    assert result.message.startswith(
        "the interpreter crashed with SIGSEGV during invoke of sample 2"
    )
    assert result.reproducer is not None
    with np.load(result.reproducer / "inputs.npz") as saved:
        np.testing.assert_array_equal(saved[SIGNATURE_INPUT_NAME], x[2:3])


def test_a_hang_inside_a_batch_names_the_batch_and_is_not_run_again(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")], dynamic_batch=True))
    result = _run(
        tmp_path,
        model,
        {SIGNATURE_INPUT_NAME: _samples(3)},
        module="fakert.sleep_invoke",
        env=fake_env,
        timeout_s=3,
    )
    assert (result.status, result.phase, result.sample) == ("timeout", "invoke", 0)
    assert result.message is not None and "during invoke of samples 0-2" in result.message
    assert result.duration_s < 20


# --------------------------------------------------------------------------- crashes


@pytest.mark.parametrize(
    ("fake", "phase", "sample", "signal_name"),
    [
        ("abort_invoke", "invoke", 0, "SIGABRT"),
        ("segv_invoke", "invoke", 0, "SIGSEGV"),
        ("abort_allocate", "allocate", None, "SIGABRT"),
        ("segv_read_1", "read", 1, "SIGSEGV"),
    ],
)
def test_crash_names_phase_sample_and_signal(
    tmp_path: Path,
    fake_env: dict[str, str],
    fake: str,
    phase: str,
    sample: int | None,
    signal_name: str,
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]), "crashy.tflite")
    x = _samples(3)
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: x}, module=f"fakert.{fake}", env=fake_env)
    assert (result.status, result.phase, result.sample, result.signal) == (
        "crash",
        phase,
        sample,
        signal_name,
    )
    where = f"during {phase}" + (f" of sample {sample}" if sample is not None else "")
    assert result.message is not None
    assert result.message.startswith(f"the interpreter crashed with {signal_name} {where}")
    assert result.outputs == {}

    repro = result.reproducer
    assert repro == tmp_path / "repro"
    assert sorted(p.name for p in repro.iterdir()) == [
        "crashy.tflite",
        "inputs.npz",
        "reproduce.py",
    ]
    assert (repro / "crashy.tflite").read_bytes() == model.read_bytes()
    with np.load(repro / "inputs.npz") as saved:
        expected = x if sample is None else x[sample : sample + 1]
        np.testing.assert_array_equal(saved[SIGNATURE_INPUT_NAME], expected)


def test_reproducer_runs_clean_on_the_real_runtime_and_crashes_on_the_gates(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))
    result = _run(
        tmp_path,
        model,
        {SIGNATURE_INPUT_NAME: _samples(3)},
        module="fakert.abort_invoke",
        env=fake_env,
    )
    assert result.reproducer is not None
    clean = _reproduce(result.reproducer, LITERT)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip() == "sample 0: invoke returned"
    again = _reproduce(result.reproducer, env=fake_env)  # default: the module the gate used
    assert again.returncode == -6  # SIGABRT


def test_hang_is_a_timeout_in_invoke(tmp_path: Path, fake_env: dict[str, str]) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))
    result = _run(
        tmp_path,
        model,
        {SIGNATURE_INPUT_NAME: _samples(2)},
        module="fakert.sleep_invoke",
        env=fake_env,
        timeout_s=1.5,
    )
    assert (result.status, result.phase, result.sample, result.signal) == (
        "timeout",
        "invoke",
        0,
        None,
    )
    assert result.message is not None
    assert "did not finish within the time limit" in result.message
    assert result.duration_s < 20
    assert result.reproducer is not None
    assert (result.reproducer / "reproduce.py").exists()


def test_memory_blowup_is_a_crash_that_says_memory(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))
    result = _run(
        tmp_path,
        model,
        {SIGNATURE_INPUT_NAME: _samples(2)},
        module="fakert.hog_invoke",
        env=fake_env,
        memory_mb=300,
    )
    assert (result.status, result.phase, result.sample, result.signal) == (
        "crash",
        "invoke",
        0,
        None,
    )
    assert result.message is not None
    assert "exceeded the memory limit" in result.message
    assert result.reproducer is not None


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("breakage", "phase", "text"),
    [
        ("tensor_buffer_out_of_range", "load", "Tensor 1 specifies out of range buffer 99"),
        ("operator_tensor_out_of_range", "allocate", "Invalid tensor index 99 in node outputs"),
    ],
)
def test_broken_model_is_an_error_in_its_phase(
    tmp_path: Path, breakage: str, phase: str, text: str
) -> None:
    model = _model(tmp_path, build_broken_model(breakage))
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: _samples(2)})
    assert (result.status, result.phase, result.sample, result.signal) == (
        "error",
        phase,
        None,
        None,
    )
    assert result.message is not None
    assert text in result.message
    assert result.reproducer is not None
    # The reproducer fails with the runtime's own message.
    again = _reproduce(result.reproducer)
    assert again.returncode == 1
    assert text in again.stderr


def test_exception_in_invoke_names_phase_and_sample(
    tmp_path: Path, fake_env: dict[str, str]
) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))
    result = _run(
        tmp_path,
        model,
        {SIGNATURE_INPUT_NAME: _samples(3)},
        module="fakert.boom_invoke",
        env=fake_env,
    )
    assert (result.status, result.phase, result.sample) == ("error", "invoke", 0)
    assert result.message == "boom: the runtime said no"
    assert result.reproducer is not None
    with np.load(result.reproducer / "inputs.npz") as saved:
        assert saved[SIGNATURE_INPUT_NAME].shape == (1, 1, 4)


def test_unresolved_custom_op_is_its_own_kind_without_reproducer(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([custom("MyOp"), custom("Other")]))
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: _samples(1)})
    assert (result.status, result.phase, result.sample) == (
        "unresolved-custom-op",
        "allocate",
        None,
    )
    assert result.message is not None
    assert "Encountered unresolved custom op: MyOp." in result.message
    assert result.unresolved_custom_ops == ["MyOp"]  # the runtime stops at the first one
    assert result.reproducer is None
    assert not (tmp_path / "repro").exists()


def test_flex_model_is_unsupported_at_allocate_without_reproducer(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([custom("FlexMatrixDeterminant")]))
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: _samples(2)})
    assert (result.status, result.phase, result.sample, result.signal) == (
        "unsupported-flex",
        "allocate",
        None,
        None,
    )
    assert result.message is not None
    assert result.message.startswith(
        "Select TensorFlow op(s), included in the given model, is(are) not supported by this "
        "interpreter. Make sure you apply/link the Flex delegate before inference."
    )
    assert "Node number 0 (FlexMatrixDeterminant) failed to prepare." in result.message
    assert result.reproducer is None
    assert not (tmp_path / "repro").exists()


def test_data_without_a_model_input_is_an_error_at_load(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))
    result = _run(tmp_path, model, {"wrong_name": _samples(1)})
    assert (result.status, result.phase) == ("error", "load")
    assert result.message == (
        "no data for model input(s) ['x']; model inputs: ['x'], data has: ['wrong_name']"
    )


@pytest.mark.parametrize(
    ("module", "text"),
    [
        ("no_such_runtime.interpreter", "No module named 'no_such_runtime'"),
        ("json", "has no attribute 'Interpreter'"),
    ],
)
def test_runtime_that_does_not_import(tmp_path: Path, module: str, text: str) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))
    result = _run(tmp_path, model, {SIGNATURE_INPUT_NAME: _samples(1)}, module=module)
    assert (result.status, result.phase, result.sample) == ("import", "import", None)
    assert result.message is not None
    assert text in result.message
    assert result.reproducer is None


def test_missing_python_is_an_import_failure(tmp_path: Path) -> None:
    model = _model(tmp_path, build_model([builtin("RELU")]))
    result = run_interpreter(
        model,
        {SIGNATURE_INPUT_NAME: _samples(1)},
        python=str(tmp_path / "no-such-python"),
        module=LITERT,
        scratch=tmp_path / "scratch",
        reproducer_dir=tmp_path / "repro",
        timeout_s=10,
        memory_mb=None,
    )
    assert (result.status, result.phase) == ("import", "start")
    assert result.message is not None
    assert "no-such-python" in result.message

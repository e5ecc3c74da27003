"""The worker's main, called in this process as `python interpreter_worker/ REQUEST` calls
it: a result is written whenever the request was understood (exit 0), ok or not, and
names the phase the run stopped in; a request that does not fit is refused (exit 2)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.tflite_builder import SIGNATURE_INPUT_NAME, build_model, custom
from tflite_gate.run.interpreter_worker.main import main, write_result
from tflite_gate.run.interpreter_worker.messages import (
    InterpreterRequest,
    InterpreterResult,
    checked,
)

Request = Callable[..., InterpreterRequest]

# A runtime whose invoke fails in its own words.
FAILING_INVOKE = """\
from ai_edge_litert.interpreter import Interpreter as _Real


class Interpreter(_Real):
    def invoke(self):
        raise RuntimeError("boom: the runtime said no")
"""


def _main(tmp_path: Path, request: InterpreterRequest | dict[str, Any]) -> int:
    raw = dataclasses.asdict(request) if isinstance(request, InterpreterRequest) else request
    path = tmp_path / "request.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return main(["interpreter_worker", str(path)])


def _result(request: InterpreterRequest) -> InterpreterResult:
    result: InterpreterResult = checked(
        InterpreterResult, json.loads(Path(request.result).read_text())
    )
    return result


def _one_sample() -> dict[str, Any]:
    return {SIGNATURE_INPUT_NAME: np.ones((1, 1, 4), np.float32)}


def test_a_run_writes_its_whole_result_and_exits_0(
    tmp_path: Path, worker_request: Request, relu_model: Callable[..., Path]
) -> None:
    request = worker_request(relu_model(), _one_sample())
    assert _main(tmp_path, request) == 0
    result = _result(request)
    assert result.ok and result.samples == 1 and result.error is None
    assert not Path(request.result + ".tmp").exists()
    first = Path(request.status).read_text().splitlines()[0]
    assert json.loads(first) == {"phase": "import"}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"model": "m"}', "not a valid request: InterpreterRequest.module: required"),
        ('{"model": "m", ', "not a valid request: Expecting property name"),
        ("[1]", "not a valid request: InterpreterRequest: expected an object, got list"),
    ],
)
def test_a_request_that_does_not_fit_is_refused_on_stderr_with_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, said: str
) -> None:
    path = tmp_path / "request.json"
    path.write_text(text)
    assert main(["interpreter_worker", str(path)]) == 2
    assert f"{path}: {said}" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["request.json"]


def test_a_runtime_that_does_not_import_is_a_result_of_kind_import(
    tmp_path: Path, worker_request: Request, relu_model: Callable[..., Path]
) -> None:
    request = worker_request(relu_model(), _one_sample(), module="no_such_runtime")
    assert _main(tmp_path, request) == 0
    result = _result(request)
    assert (result.ok, result.phase, result.sample, result.kind) == (
        False,
        "import",
        None,
        "import",
    )
    assert result.error == "ModuleNotFoundError: No module named 'no_such_runtime'"


def test_the_runtimes_error_is_placed_in_the_phase_marked_last(
    tmp_path: Path,
    worker_request: Request,
    relu_model: Callable[..., Path],
    runtime_module: Callable[..., str],
) -> None:
    module = runtime_module("failing_invoke_runtime", FAILING_INVOKE)
    request = worker_request(relu_model(), _one_sample(), module=module)
    assert _main(tmp_path, request) == 0
    result = _result(request)
    assert (result.ok, result.phase, result.sample, result.kind) == (False, "invoke", 0, "error")
    assert result.error == "boom: the runtime said no"


def test_a_failure_the_worker_names_keeps_its_own_phase(
    tmp_path: Path, worker_request: Request, relu_model: Callable[..., Path]
) -> None:
    request = worker_request(relu_model(), {"not_the_input": np.ones((1, 1, 4))})
    assert _main(tmp_path, request) == 0
    result = _result(request)
    assert (result.ok, result.phase, result.kind) == (False, "load", "error")
    assert result.error is not None and result.error.startswith("no data for model input(s)")


def test_an_unresolved_custom_op_is_named_in_the_result(
    tmp_path: Path, worker_request: Request
) -> None:
    model = tmp_path / "custom.tflite"
    model.write_bytes(build_model([custom("GateMissingOp")]))
    request = worker_request(model, _one_sample())
    assert _main(tmp_path, request) == 0
    result = _result(request)
    assert (result.ok, result.kind) == (False, "unresolved-custom-op")
    assert result.unresolved_custom_ops == ["GateMissingOp"]


def test_a_result_replaces_the_last_one_whole(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text("an older result")
    write_result(str(path), InterpreterResult(ok=True, samples=2))
    assert json.loads(path.read_text())["samples"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


@pytest.mark.slow
def test_the_worker_refuses_a_request_that_does_not_fit(
    tmp_path: Path, run_by_path: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    request = tmp_path / "request.json"
    fields = {"model": "m", "module": "x", "inputs": "i", "outputs": "o", "result": "r"}
    request.write_text(json.dumps({**fields, "status": "s", "num_threads": "2"}))
    done = run_by_path(request)
    assert done.returncode == 2
    assert "InterpreterRequest.num_threads: expected int, got str" in done.stderr
    assert not (tmp_path / "r").exists()

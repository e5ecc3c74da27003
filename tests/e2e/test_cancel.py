"""Cancellation as a CI runner does it: SIGTERM or SIGINT to the gate while a worker runs.

The gate runs as a real process on a workspace whose first model finishes quickly (a
.tflite on the gate's own runtime) and whose second one never does: a factory that
sleeps inside the conversion worker, or a runtime module whose `invoke` sleeps inside
the interpreter worker. Each writes its pid and process group to a marker file and
starts a grandchild, so the test knows when to signal and what must not survive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.action_env import ENTRYPOINT, action_env
from tests.support.harness import REPO
from tests.support.outlier_model import OUTLIER_MODEL
from tests.support.tflite_builder import build_model, builtin

pytestmark = pytest.mark.slow  # every test here starts processes

SCHEMA = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())

# Both halt where the worker is doing its real work; the grandchild checks group killing.
HALT = """\
import json, os, subprocess, time

def halt(marker):
    child = subprocess.Popen(["sleep", "300"])
    record = {"pid": os.getpid(), "pgid": os.getpgid(0), "child": child.pid}
    with open(marker + ".partial", "w") as stream:
        json.dump(record, stream)
    os.replace(marker + ".partial", marker)
    time.sleep(300)
"""

FACTORY = """\
from halt import halt

def build():
    halt({marker!r})
"""

RUNTIME = """\
from ai_edge_litert.interpreter import Interpreter as _Base
from halt import halt

class Interpreter(_Base):
    def invoke(self):
        halt({marker!r})
"""

# A runtime whose installation halts: pip runs this in-tree build backend (no build
# requirements, so nothing is downloaded) in a child of its own.
BACKEND = """\
import sys
sys.path.insert(0, {workspace!r})
from halt import halt

def get_requires_for_build_wheel(config_settings=None):
    halt({marker!r})
"""

PYPROJECT = """\
[build-system]
requires = []
build-backend = "slow_backend"
backend-path = ["."]

[project]
name = "slowrt"
version = "0"
"""

POLICY = """\
version: 1
models:
  - name: done
    source: relu.tflite
  - name: stuck
    source: {source}
{extra}  - name: never
    source: relu.tflite
"""


@dataclass
class Cancelled:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]
    survivors: list[int]  # processes of the worker's group alive after the gate ended
    tmp: Path


def _workspace(root: Path, phase: str) -> Path:
    marker = str(root / "marker.json")
    (root / "halt.py").write_text(HALT)
    (root / "slow_factory.py").write_text(FACTORY.format(marker=marker))
    (root / "sleepy_runtime.py").write_text(RUNTIME.format(marker=marker))
    (root / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (root / "slowrt").mkdir()
    (root / "slowrt" / "pyproject.toml").write_text(PYPROJECT)
    (root / "slowrt" / "slow_backend.py").write_text(
        BACKEND.format(workspace=str(root), marker=marker)
    )
    if phase == "conversion":
        source, extra = "slow_factory:build", ""
    elif phase == "install":
        source = "relu.tflite"
        extra = "    runtimes: [{requirement: ./slowrt, module: slowrt}]\n"
    else:
        source = "relu.tflite"
        extra = "    runtimes: [{requirement: ai-edge-litert, module: sleepy_runtime}]\n"
    (root / "tflite-gate.yml").write_text(POLICY.format(source=source, extra=extra))
    return root


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the gate ended before the worker halted: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the worker never halted: {process.communicate()}")
        time.sleep(0.1)


def _cancel(
    argv: list[str],
    workspace: Path,
    tmp: Path,
    signum: int,
    env: dict[str, str],
    also_wait_for: str | None = None,
) -> Cancelled:
    """Start the gate, wait until the worker halts, send `signum`, collect everything.

    `also_wait_for`: a glob under the run's TMPDIR that must match too (another model's
    interpreter result, when models run in parallel), then a moment for its thread.
    """
    (tmp / "tmp").mkdir()
    env = {**env, "TMPDIR": str(tmp / "tmp")}  # where the pipeline's scratch goes
    process = subprocess.Popen(
        argv, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    marker = workspace / "marker.json"
    _wait_for(marker, process)
    if also_wait_for is not None:
        deadline = time.monotonic() + 60
        while not list((tmp / "tmp").glob(also_wait_for)) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
    process.send_signal(signum)
    try:
        stdout, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the gate did not stop after {signal.Signals(signum).name}")
    halted = json.loads(marker.read_text())
    survivors = _gone(halted["pgid"])
    for pid in survivors:  # asserted below; no test run may leave them behind
        os.kill(pid, signal.SIGKILL)
    report_path = workspace / "tflite-gate-report.json"
    assert report_path.exists(), stderr
    return Cancelled(
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        report=json.loads(report_path.read_text()),
        survivors=survivors,
        tmp=tmp / "tmp",
    )


def _living(pgid: int) -> list[int]:
    """Processes of the group that still run (an unreaped zombie is dead)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _gone(pgid: int) -> list[int]:
    """Wait a moment for the kernel to finish the kill; what is still alive after it."""
    deadline = time.monotonic() + 5
    while _living(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _living(pgid)


def _assert_cancelled(run: Cancelled, signum: int, code: int) -> None:
    name = signal.Signals(signum).name
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    jsonschema.validate(run.report, SCHEMA)
    assert run.report["verdict"] == "cancelled"
    [finding] = [f for f in run.report["findings"] if f["rule"] == "cancelled"]
    assert finding["severity"] == "error"
    assert finding["model"] == "stuck"
    assert name in finding["message"]
    models = {m["name"]: m for m in run.report["models"]}
    assert list(models) == ["done", "stuck"]  # `never` never started
    [done] = models["done"]["variants"]
    assert [r["status"] for r in done["runs"]] == ["ran"]
    assert "total" in models["done"]["timings"]
    assert run.survivors == []
    assert list(run.tmp.iterdir()) == []  # scratch removed


def _open_stop_token(stdout: str) -> str | None:
    """The token of a `::stop-commands::` block left open at the end, as the runner reads."""
    token: str | None = None
    for line in stdout.splitlines():
        if token is None and line.startswith("::stop-commands::"):
            token = line.removeprefix("::stop-commands::")
        elif token is not None and line == f"::{token}::":
            token = None
    return token


def _cli(workspace: Path) -> list[str]:
    return [sys.executable, "-m", "tflite_gate", "check", "--workspace", str(workspace)]


@pytest.mark.parametrize(
    ("phase", "signum", "code"),
    [
        ("conversion", signal.SIGTERM, 143),
        ("conversion", signal.SIGINT, 130),
        ("interpreter", signal.SIGTERM, 143),
        ("interpreter", signal.SIGINT, 130),
        ("install", signal.SIGTERM, 143),
    ],
)
def test_cli_cancel_kills_workers_and_writes_the_partial_report(
    tmp_path: Path, phase: str, signum: int, code: int
) -> None:
    (tmp_path / "ws").mkdir()
    workspace = _workspace(tmp_path / "ws", phase)
    # The runtime module is the workspace's: the interpreter worker finds it on PYTHONPATH.
    env = {**os.environ, "PYTHONPATH": str(workspace)}
    cache = tmp_path / "cache"
    argv = [*_cli(workspace), "--cache-dir", str(cache), "--jobs", "1"]  # one model at a time
    run = _cancel(argv, workspace, tmp_path, signum, env)
    _assert_cancelled(run, signum, code)
    if phase == "interpreter":  # the halted model keeps what it had: its inspection
        [variant] = next(m for m in run.report["models"] if m["name"] == "stuck")["variants"]
        assert variant["inspection"]["ops"][0]["name"] == "RELU"
    if phase == "install":  # a half-built environment is never left for the next run
        assert [p.name for p in (cache / "runtimes").iterdir() if p.is_dir()] == []
    assert "cancelled by" in run.stderr
    assert "Verdict: CANCELLED" in run.stdout


@pytest.mark.parametrize("phase", ["conversion", "interpreter"])
def test_cancel_with_models_in_parallel_stops_every_worker(tmp_path: Path, phase: str) -> None:
    """Two models at once: the cancelled one keeps what it had, finished ones stand."""
    (tmp_path / "ws").mkdir()
    workspace = _workspace(tmp_path / "ws", phase)
    env = {**os.environ, "PYTHONPATH": str(workspace)}
    argv = [*_cli(workspace), "--cache-dir", str(tmp_path / "cache"), "--jobs", "2"]
    # `done` runs beside `stuck`: it must have finished when the signal comes.
    run = _cancel(argv, workspace, tmp_path, signal.SIGTERM, env, "**/result.json")
    assert run.returncode == 143, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    jsonschema.validate(run.report, SCHEMA)
    assert run.report["verdict"] == "cancelled"
    assert run.report["environment"]["jobs"] == 2
    models = {m["name"]: m for m in run.report["models"]}
    assert list(models)[:2] == ["done", "stuck"]  # policy order, whatever finished first
    assert "total" in models["done"]["timings"] and "total" not in models["stuck"]["timings"]
    unfinished = [name for name, model in models.items() if "total" not in model["timings"]]
    [finding] = [f for f in run.report["findings"] if f["rule"] == "cancelled"]
    assert f"while checking {', '.join(unfinished)}; complete: done" in finding["message"]
    assert run.survivors == []
    assert list(run.tmp.iterdir()) == []


def test_action_cancel_closes_stop_commands_and_writes_outputs(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    workspace = _workspace(repository, "conversion")
    env = action_env(repository, tmp_path, {"comment": "off", "jobs": "1"})
    outputs, summary = tmp_path / "output.txt", tmp_path / "summary.md"
    argv = [sys.executable, str(ENTRYPOINT)]
    run = _cancel(argv, workspace, tmp_path, signal.SIGTERM, env)
    _assert_cancelled(run, signal.SIGTERM, 143)
    assert "::stop-commands::" in run.stdout
    assert _open_stop_token(run.stdout) is None
    written = outputs.read_text().splitlines()
    [verdict] = [i for i, line in enumerate(written) if line.startswith("verdict<<")]
    assert written[verdict + 1] == "cancelled"
    assert "CANCELLED" in summary.read_text()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130)])
def test_cli_interrupt_during_runtime_installation(tmp_path: Path, signum: int, code: int) -> None:
    (tmp_path / "ws").mkdir()
    workspace = _workspace(tmp_path / "ws", "install")
    cache = tmp_path / "cache"
    argv = [*_cli(workspace), "--cache-dir", str(cache), "--jobs", "1"]
    run = _cancel(argv, workspace, tmp_path, signum, dict(os.environ))
    _assert_cancelled(run, signum, code)
    assert [p.name for p in (cache / "runtimes").iterdir() if p.is_dir()] == []


# The first gate's installation halts; a second one that reaches the backend fails at once.
BACKEND_ONCE = """\
import os, sys
sys.path.insert(0, {workspace!r})
from halt import halt

def get_requires_for_build_wheel(config_settings=None):
    if os.path.exists({marker!r}):
        raise RuntimeError("slowrt: second build attempt")
    halt({marker!r})
"""


def test_two_gates_share_a_cache_when_one_is_cancelled(tmp_path: Path) -> None:
    """Gate A installs a runtime and is cancelled mid-install while gate B waits for
    the cache lock: B then gets the lock, finds no half-built environment, tries its
    own install, and ends with a finding of its own; nothing of A survives."""
    (tmp_path / "ws").mkdir()
    workspace = _workspace(tmp_path / "ws", "install")
    marker = workspace / "marker.json"
    (workspace / "slowrt" / "slow_backend.py").write_text(
        BACKEND_ONCE.format(workspace=str(workspace), marker=str(marker))
    )
    cache = tmp_path / "cache"
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}

    def gate(name: str) -> tuple[subprocess.Popen[str], Path]:
        log = tmp_path / f"{name}.log"
        argv = [
            *_cli(workspace),
            *("--cache-dir", str(cache), "--report", str(tmp_path / f"{name}.json")),
            *("--artifacts", str(tmp_path / f"{name}-artifacts")),
        ]
        with open(log, "w") as stream:
            process = subprocess.Popen(
                argv, env=env, stdout=subprocess.DEVNULL, stderr=stream, text=True
            )
        return process, log

    first, _ = gate("a")
    _wait_for(marker, first)
    second, second_log = gate("b")
    deadline = time.monotonic() + 120
    while "[runtime] preparing ./slowrt" not in second_log.read_text():
        assert second.poll() is None, second_log.read_text()
        assert time.monotonic() < deadline, "the second gate never reached the runtime"
        time.sleep(0.1)
    time.sleep(1.0)  # B is now waiting on the lock that A holds
    assert second.poll() is None
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 143
    assert second.wait(timeout=300) == 1, second_log.read_text()
    halted = json.loads(marker.read_text())
    assert _gone(halted["pgid"]) == []
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    for report in (a, b):
        jsonschema.validate(report, SCHEMA)
    assert a["verdict"] == "cancelled"
    assert b["verdict"] == "fail"
    [unavailable] = [f for f in b["findings"] if f["rule"] == "runtime-unavailable"]
    assert unavailable["model"] == "stuck"
    assert "another tflite-gate is still preparing" not in unavailable["message"]
    assert "Traceback" not in second_log.read_text()
    assert [p.name for p in (cache / "runtimes").iterdir() if p.is_dir()] == []


TRIAL_RUNTIME = """\
from ai_edge_litert.interpreter import Interpreter as _Base
from halt import halt

class Interpreter(_Base):
    def __init__(self, *args, model_path=None, **kwargs):
        self._trial = "candidate-" in str(model_path)  # a keep_float candidate, not the variant
        super().__init__(*args, model_path=model_path, **kwargs)

    def invoke(self):
        if self._trial:
            halt({marker!r})
        super().invoke()
"""


@pytest.mark.slow
def test_cancel_while_a_keep_float_fix_is_tried(tmp_path: Path) -> None:
    """SIGTERM during a failing int8 variant's diagnosis: its runs stand, nothing survives."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "halt.py").write_text(HALT)
    (workspace / "trial_runtime.py").write_text(
        TRIAL_RUNTIME.format(marker=str(workspace / "marker.json"))
    )
    (workspace / "outlier.py").write_text(textwrap.dedent(OUTLIER_MODEL))
    (workspace / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: outlier\n    source: outlier:build\n"
        "    runtimes: [{requirement: ai-edge-litert, module: trial_runtime}]\n"
        "    variants: [{name: int8, quantization: int8, max_divergence: {min_cosine: 0.999}}]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(workspace)}
    argv = [*_cli(workspace), "--cache-dir", str(tmp_path / "cache")]
    run = _cancel(argv, workspace, tmp_path, signal.SIGTERM, env)
    assert run.returncode == 143, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    jsonschema.validate(run.report, SCHEMA)
    assert run.report["verdict"] == "cancelled"
    [variant] = run.report["models"][0]["variants"]
    assert [r["status"] for r in variant["runs"]] == ["diverged"]  # measured before the signal
    assert [f["rule"] for f in run.report["findings"]] == ["divergence", "cancelled"]
    assert run.survivors == []
    assert list(run.tmp.iterdir()) == []


def _catches_sigterm(pid: int) -> bool:
    """The process has a handler for SIGTERM (its SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.parametrize("when", ["first-handler", "0.3s"])
@pytest.mark.parametrize("entry", ["action", "cli"])
def test_a_signal_while_python_loads_the_gate_still_ends_in_a_cancelled_report(
    tmp_path: Path, entry: str, when: str
) -> None:
    """A job cancelled within its first fraction of a second, while the imports still load.

    `first-handler`: the moment the process first catches SIGTERM, the earliest a
    Python program can; before the fix the gate caught it only after its imports.
    """
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (repository / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - {name: relu, source: relu.tflite}\n"
    )
    env = action_env(repository, tmp_path, {"comment": "off"})
    argv = [sys.executable, str(ENTRYPOINT)] if entry == "action" else _cli(repository)
    process = subprocess.Popen(
        argv, cwd=repository, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if when == "first-handler":
        deadline = time.monotonic() + 30
        while not _catches_sigterm(process.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
    else:
        time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stdout + stderr
    assert "Traceback" not in stdout + stderr
    report = json.loads((repository / "tflite-gate-report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "cancelled"
    assert [f["rule"] for f in report["findings"]] == ["cancelled"]
    if entry == "action":
        written = (tmp_path / "output.txt").read_text().splitlines()
        [verdict] = [i for i, line in enumerate(written) if line.startswith("verdict<<")]
        assert written[verdict + 1] == "cancelled"
        assert _open_stop_token(stdout) is None

"""Nothing a run starts outlives it: real gates, real detached and blocked processes.

- A data generator (or a model factory) that double-forks a daemon with `setsid`:
  after a passing gate the daemon is gone.
- A worker blocked opening a FIFO, when the gate itself is killed with SIGKILL
  (nothing of the gate runs then): the worker dies anyway, through its lifeline.
- The scratch directory that killed gate left is removed by the next run, and a
  directory that merely looks like one is not.
- A test runner that imports the gate keeps its own children.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.tflite_builder import SHAPE, build_model, builtin
from tflite_gate.support.lifetime import OWNER_FILE

pytestmark = pytest.mark.slow

DAEMON = textwrap.dedent(
    """\
    import json, os, subprocess, time

    import numpy as np

    SHAPE = BUILDER_SHAPE


    def detach(marker):
        if os.fork() == 0:  # the classic daemon: fork, setsid, fork again, parent leaves
            os.setsid()
            if os.fork() == 0:
                child = subprocess.Popen(["sleep", "300"])
                with open(marker + ".partial", "w") as stream:
                    json.dump({"daemon": os.getpid(), "sleep": child.pid}, stream)
                os.replace(marker + ".partial", marker)
                time.sleep(300)
            os._exit(0)
        while not os.path.exists(marker):
            time.sleep(0.01)


    def samples():
        detach(MARKER)
        for i in range(4):
            yield {"x": np.full(SHAPE, i, dtype=np.float32)}


    def blocked():
        with open(MARKER, "w") as stream:
            json.dump({"pid": os.getpid(), "pgid": os.getpgid(0)}, stream)
        open(FIFO).read()  # nobody ever writes: blocks in the kernel, not in Python
        yield {}
    """
).replace("BUILDER_SHAPE", repr(SHAPE))

FACTORY = textwrap.dedent(
    """\
    import keras

    from gen import detach


    def build():
        detach(MARKER)
        inputs = keras.Input((4,), batch_size=1, name="x")
        return keras.Model(inputs, keras.layers.Dense(2, name="y")(inputs))
    """
)


def _workspace(root: Path, data: str, *, source: str = "relu.tflite") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    marker, fifo = root / "marker.json", root / "pipe"
    os.mkfifo(fifo)
    constants = f"MARKER = {str(marker)!r}\nFIFO = {str(fifo)!r}\n"
    (root / "gen.py").write_text(constants + DAEMON)
    (root / "zoo.py").write_text(constants + FACTORY)
    (root / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (root / "tflite-gate.yml").write_text(
        "version: 1\n"
        "defaults: {limits: {timeout_s: 120}}\n"
        f"models:\n  - name: m\n    source: {source}\n    data: {{evaluation: {data}}}\n"
    )
    return root


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def _wait_until(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def _gate(workspace: Path, tmp: Path, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "tflite_gate", "check", "--quiet", "--no-cache"),
            *("--workspace", str(workspace), "--cache-dir", str(tmp / "cache")),
        ],
        env={**os.environ, "TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


@pytest.mark.parametrize("who", ["generator", "factory"])
def test_a_detached_daemon_does_not_outlive_a_passing_gate(tmp_path: Path, who: str) -> None:
    if who == "generator":
        workspace = _workspace(tmp_path / "ws", "gen:samples")
    else:
        workspace = _workspace(tmp_path / "ws", "{generate: {count: 4}}", source="zoo:build")
    (tmp_path / "tmp").mkdir()
    gate = _gate(workspace, tmp_path / "tmp")
    stdout, stderr = gate.communicate(timeout=300)
    assert gate.returncode == 0, stdout + stderr
    started = json.loads((workspace / "marker.json").read_text())
    try:
        assert not _alive(started["daemon"]), "the daemon outlived the gate"
        assert not _alive(started["sleep"]), "the daemon's child outlived the gate"
    finally:
        for pid in started.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_blocked_in_the_kernel_dies_with_a_killed_gate(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path / "ws", "gen:blocked")
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    gate = _gate(workspace, scratch_root)
    marker = workspace / "marker.json"
    assert _wait_until(marker.exists, 120), gate.communicate(timeout=5)
    time.sleep(0.3)
    worker = json.loads(marker.read_text())
    gate.kill()  # SIGKILL: the gate runs no clean-up of its own
    gate.communicate(timeout=30)
    try:
        assert _wait_until(lambda: not _group_alive(worker["pgid"]), 5), (
            f"worker group {worker['pgid']} outlived the gate: {_group_alive(worker['pgid'])}"
        )
    finally:
        for pid in _group_alive(worker["pgid"]):
            os.kill(pid, signal.SIGKILL)
    left = [p for p in scratch_root.iterdir() if (p / OWNER_FILE).is_file()]
    assert left, "the killed gate's scratch was expected to stay until the next run"

    decoy = scratch_root / "tflite-gate-decoy"  # a name alone never condemns a directory
    decoy.mkdir()
    (workspace / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - {name: m, source: relu.tflite}\n"
    )
    again = _gate(workspace, scratch_root)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stdout + stderr
    assert [p for p in left if p.exists()] == [], "the next run left the abandoned scratch"
    assert decoy.is_dir()


def test_a_test_runner_that_imports_the_gate_keeps_its_children(tmp_path: Path) -> None:
    from tflite_gate.cli import main

    workspace = _workspace(tmp_path / "ws", "{generate: {count: 2}}")
    own_child = subprocess.Popen(["sleep", "60"])
    try:
        code = main(
            [
                *("check", "--quiet", "--workspace", str(workspace)),
                *("--report", str(tmp_path / "r.json"), "--no-cache"),
            ]
        )
        assert code == 0
        assert own_child.poll() is None, "the gate killed a process it did not start"
    finally:
        own_child.kill()
        own_child.wait()

"""The lifeline launcher with real processes: the worker keeps the launcher's pid, runs
while the gate holds the pipe's write end, and dies with its whole process group when
that end closes (here: closed by the test, as the kernel does when the gate dies).

Every launch gets a session of its own, because the watcher kills its process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tflite_gate.support.lifetime import LIFELINE_SCRIPT

pytestmark = pytest.mark.slow  # every test here starts processes

# A worker that starts a grandchild and says both pids, then waits.
PARENT_OF_A_SLEEPER = (
    "import os, subprocess, time\n"
    "child = subprocess.Popen(['sleep', '300'])\n"
    "print(os.getpid(), child.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def _state(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) of `pid`, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def _ended(pid: int) -> bool:
    """Gone, or a zombie: killed, and waiting only to be reaped."""
    state = _state(pid)
    return state is None or state[0] == "Z"


def _living_in_group(group: int) -> list[int]:
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if (_state(pid) or ("", 0))[1] == group and not _ended(pid)]


def _soon(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass
class Launched:
    """A worker under the lifeline, and the write end the test holds as the gate would."""

    process: subprocess.Popen[str]
    write: int | None

    def gate_dies(self) -> None:
        """Close the write end, as the kernel does for a gate that died."""
        assert self.write is not None
        os.close(self.write)
        self.write = None


@pytest.fixture
def launch() -> Iterator[Callable[..., Launched]]:
    """Start a command under the lifeline launcher, in a session of its own."""
    started: list[Launched] = []

    def start(*command: str) -> Launched:
        read, write = os.pipe()
        launcher = [sys.executable, "-I", "-S", str(LIFELINE_SCRIPT), str(read), "--"]
        try:
            process = subprocess.Popen(
                [*launcher, *command],
                pass_fds=(read,),
                start_new_session=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        finally:
            os.close(read)
        started.append(Launched(process, write))
        return started[-1]

    yield start
    for launched in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launched.process.pid, signal.SIGKILL)
        launched.process.communicate()
        if launched.write is not None:
            os.close(launched.write)


def test_the_worker_keeps_the_launchers_pid_and_dies_with_its_group_when_the_gate_goes(
    launch: Callable[..., Launched],
) -> None:
    worker_run = launch(sys.executable, "-c", PARENT_OF_A_SLEEPER)
    process = worker_run.process
    assert process.stdout is not None
    worker, grandchild = map(int, process.stdout.readline().split())
    assert worker == process.pid  # exec, not a child: the pid the gate watches
    time.sleep(0.6)  # longer than the watcher's poll: a live gate kills nothing
    assert process.poll() is None

    worker_run.gate_dies()

    assert process.wait(timeout=10) == -signal.SIGKILL
    assert _soon(lambda: _ended(grandchild))
    assert _soon(lambda: _living_in_group(process.pid) == [])


def test_a_worker_that_ends_by_itself_leaves_no_watcher_and_keeps_its_exit_code(
    launch: Callable[..., Launched],
) -> None:
    process = launch("sh", "-c", "exit 7").process
    assert process.wait(timeout=10) == 7
    assert _soon(lambda: _living_in_group(process.pid) == [])


def test_a_program_that_cannot_be_started_exits_127_and_says_why(
    launch: Callable[..., Launched], tmp_path: Path
) -> None:
    missing = str(tmp_path / "no-such-program")
    process = launch(missing).process
    _out, err = process.communicate(timeout=10)
    assert process.returncode == 127
    assert err == f"cannot start {missing}: No such file or directory\n"

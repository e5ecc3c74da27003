"""What a run leaves behind, and how the gate makes sure it leaves nothing.

Workers run the user's code (factories, generators), pip builds and C++ that may
hang. Three things outlive a careless gate:
- a process a worker started and detached (`setsid` and a double fork) runs on
  after a passing gate;
- a worker blocked in a system call survives the gate's own SIGKILL;
- a killed gate's scratch directory stays in TMPDIR forever.

So the gate (its own process only, never a test runner that imports it) becomes a
child subreaper and kills every descendant still alive when it finishes; every
worker is started under a watcher that kills it when the gate's lifeline pipe
closes (`lifeline.py`); and every scratch directory carries an owner marker, by
which the next run removes those whose owner is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36
LIFELINE_SCRIPT = Path(__file__).resolve().with_name("lifeline.py")
OWNER_FILE = ".tflite-gate-owner.json"


# --------------------------------------------------------------------------- processes


def become_subreaper() -> bool:
    """Make orphaned descendants this process's children, so `end_descendants` finds them.

    For the gate's own process only (the command line, the Action): a test runner
    that imports the gate keeps its own children to itself.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):  # not Linux: nothing to adopt orphans with
        return False


def _process_table() -> dict[int, tuple[int, str]]:
    """pid → (parent pid, state letter) of every process this one can see."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = (entry / "stat").read_text()
            fields = text[text.rindex(")") + 2 :].split()
            table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def _descendants(table: dict[int, tuple[int, str]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _state) in table.items():
        children.setdefault(parent, []).append(pid)
    found, frontier = [], [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


def _reap() -> None:
    """Collect exited children (zombies), adopted orphans among them."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def end_descendants(rounds: int = 5) -> list[int]:
    """SIGKILL every live descendant of this process and reap it; their pids.

    Called when the gate finishes, after every worker it waits for has ended: what
    is still alive then was started by the run and detached from it.
    """
    ended: list[int] = []
    for _ in range(rounds):  # one may fork while its parent is being killed
        table = _process_table()
        alive = [pid for pid in _descendants(table, os.getpid()) if table[pid][1] != "Z"]
        if not alive:
            break
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        ended += alive
        time.sleep(0.02)
        _reap()
    _reap()
    return ended


_lifeline: tuple[int, int, int] | None = None  # (read end, write end, owning pid)
_lifeline_lock = threading.Lock()


def lifeline() -> int:
    """The read end of this process's lifeline pipe, for `pass_fds`.

    The write end stays here, never written and never inherited (both ends are
    close-on-exec): it closes only when this process ends.
    """
    global _lifeline
    with _lifeline_lock:
        if _lifeline is None or _lifeline[2] != os.getpid():
            read, write = os.pipe()
            _lifeline = (read, write, os.getpid())
        return _lifeline[0]


def under_lifeline(argv: list[str]) -> list[str]:
    """`argv` started by the lifeline launcher: it dies with this process.

    The command is checked here so a missing program is still the OSError that
    starting it directly would raise.
    """
    program = argv[0]
    found = shutil.which(program) if os.sep not in program else program
    if found is None or not os.access(found, os.X_OK) or Path(found).is_dir():
        raise FileNotFoundError(2, "No such file or directory (or not executable)", program)
    launcher = [sys.executable, "-I", "-S", str(LIFELINE_SCRIPT), str(lifeline()), "--"]
    return [*launcher, *argv]


# --------------------------------------------------------------------------- scratch


def _start_ticks(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (None: no such process)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text[text.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> int:
    try:
        return Path("/proc/self/ns/pid").stat().st_ino
    except OSError:
        return 0


def _owner() -> dict[str, object]:
    pid = os.getpid()
    return {
        "pid": pid,
        "start_ticks": _start_ticks(pid),
        "boot_id": _boot_id(),
        "pid_namespace": _pid_namespace(),
    }


def _owner_gone(owner: object) -> bool:
    """Whether the process that wrote an owner marker has ended (unsure: False)."""
    if not isinstance(owner, dict):
        return False
    if owner.get("boot_id") != _boot_id() and owner.get("boot_id"):
        return True  # written before this boot
    if owner.get("pid_namespace") != _pid_namespace():
        return False  # another container's pids: cannot tell
    pid = owner.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return False
    started = _start_ticks(pid)
    return started is None or started != owner.get("start_ticks")


def owned_scratch(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary directory marked with its owner (this process), after a sweep.

    Directories of earlier runs whose owner is gone (killed before its clean-up)
    are removed first; see `remove_abandoned_scratch`.
    """
    remove_abandoned_scratch(Path(tempfile.gettempdir()))
    directory = tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True)
    try:
        (Path(directory.name) / OWNER_FILE).write_text(json.dumps(_owner()))
    except OSError:
        directory.cleanup()
        raise
    return directory


def remove_abandoned_scratch(directory: Path) -> list[Path]:
    """Remove the directories in `directory` whose owner marker names an ended process.

    Only real directories of this user that hold a marker the gate wrote: never a
    name pattern (other tools and tests use `tflite-gate-*` names too), never a link.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        try:
            status = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
                continue
            marker = Path(entry.path) / OWNER_FILE
            if not marker.is_file() or marker.is_symlink():
                continue
            owner = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if _owner_gone(owner):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed

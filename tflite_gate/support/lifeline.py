"""Start a worker that dies with the gate: `python -I -S lifeline.py FD -- ARGV...`.

The gate keeps the write end of a pipe whose read end is FD, and never writes to it.
This launcher forks: the parent becomes the worker (`exec`, so it keeps the pid the
gate watches for time and memory), the child watches FD. When the gate dies, even
by SIGKILL, the kernel closes the write end, the watcher reads end-of-file and kills
the worker's process group, which it shares. A worker blocked in a system call (a
FIFO it opened, a hung kernel) cannot watch anything itself; its watcher can.

`PR_SET_PDEATHSIG` is the wrong tool: it fires when the *thread* that started the
worker exits, and the gate starts workers from pool threads.

Run by file path under the gate's own Python, before any import of the gate's own
code: standard library only.
"""

from __future__ import annotations

import os
import select
import signal
import sys

_POLL_S = 0.25


def _watch(lifeline: int, worker: int) -> None:
    """Until the worker exits on its own: kill its group once the gate is gone."""
    while os.getppid() == worker:
        ready, _, _ = select.select([lifeline], [], [], _POLL_S)
        if ready and not os.read(lifeline, 1):  # end of file: no gate holds the write end
            os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    lifeline = int(argv[0])
    command = argv[argv.index("--") + 1 :]
    worker = os.getpid()
    if os.fork() == 0:
        try:
            os.closerange(3, lifeline)  # the worker's pipes are the worker's own
            os.closerange(lifeline + 1, os.sysconf("SC_OPEN_MAX"))
            _watch(lifeline, worker)
        finally:
            os._exit(0)
    os.close(lifeline)
    try:
        os.execvp(command[0], command)
    except OSError as error:  # the gate checked it could start; it changed since
        sys.stderr.write(f"cannot start {command[0]}: {error.strerror or error}\n")
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

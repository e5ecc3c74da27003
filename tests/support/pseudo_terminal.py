"""Reading what a process wrote to a pseudo-terminal, as a person at a terminal sees it."""

from __future__ import annotations

import os
import select
import subprocess
import time


def read_all(leader: int, process: subprocess.Popen[bytes], timeout_s: float = 120) -> bytes:
    """Everything written to the terminal whose leader end is `leader`, until `process`
    ends or closes it (a pty's reader must keep reading, or the writer blocks)."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end closed
                break
            if not chunk:
                break
            seen += chunk
        elif process.poll() is not None:
            break
    return seen

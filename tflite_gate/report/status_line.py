"""A live status line under the progress lines, when stderr is a terminal.

Progress lines say when a phase starts and ends; between them a long conversion is
silent for minutes. On a terminal the last line is redrawn twice a second with the
run's elapsed time and what was said last, with its own age, so a busy gate never
looks hung. Logs (CI, a pipe, a file) get the plain lines only: a redrawn line there
would be noise, and the runner reads stderr for workflow commands.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from tflite_gate.report.colour import is_terminal

_TICK_S = 0.5
_SPINNER = "|/-\\"
_CLEAR = "\r\x1b[K"


def wants_status_line(stream: TextIO) -> bool:
    """A person is watching: a terminal that draws escapes, and not a CI log."""
    dumb = os.environ.get("TERM", "") in {"", "dumb"}
    in_ci = bool(os.environ.get("CI") or os.environ.get("GITHUB_ACTIONS"))
    return is_terminal(stream) and not dumb and not in_ci


class StatusLine:
    """Progress lines above, one redrawn line below; safe to call from many threads."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._said_at = self._started
        self._last = "starting"
        self._ticks = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-line", daemon=True)

    def line(self, text: str) -> None:
        """A progress line: printed for good, and shown as what is going on now."""
        with self._lock:
            self._stream.write(f"{_CLEAR}{text}\n")
            self._last, self._said_at = text, self._clock()
            self._draw()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Remove the status line, leaving the terminal as plain lines left it."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            self._stream.write(_CLEAR)
            self._stream.flush()

    def render(self) -> str:
        """The status line's text (without control characters), cut to the terminal."""
        now = self._clock()
        spinner = _SPINNER[self._ticks % len(_SPINNER)]
        text = f"{spinner} {now - self._started:.0f} s · {self._last} ({now - self._said_at:.0f} s)"
        width = shutil.get_terminal_size().columns
        return text if len(text) < width else text[: max(width - 4, 1)] + "..."

    def _draw(self) -> None:
        self._stream.write(f"{_CLEAR}{self.render()}")
        self._stream.flush()

    def _run(self) -> None:
        while not self._stopped.wait(_TICK_S):
            with self._lock:
                self._ticks += 1
                self._draw()


@contextmanager
def status_line(stream: TextIO) -> Iterator[Callable[[str], None]]:
    """Where a run's progress lines go: `stream` as plain lines, under a live line on a
    terminal. The live line is removed when the block ends, however it ends, so the
    report printed next starts on a clean line.
    """
    if not wants_status_line(stream):

        def plain(text: str) -> None:
            print(text, file=stream, flush=True)

        yield plain
        return
    live = StatusLine(stream)
    live.start()
    try:
        yield live.line
    finally:
        live.stop()

"""Cancellation: SIGTERM/SIGINT (a CI runner's cancel, Ctrl-C) become one exception.

A CI runner cancels a job by signalling the step's process; the gate then has a few
seconds before SIGKILL. The handler raises `Cancelled` in the main thread, once, so
the ordinary unwinding does the cleanup: `run_worker` kills its worker's process
group, temporary directories are removed, and the gate writes the partial report.
Further signals are ignored so that this cleanup and the report are not cut short.
Other threads (models and variants checked in parallel) are not interrupted; they
ask `cancelled_by()` while they wait for a worker, and raise `Cancelled` themselves.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Cancelled(BaseException):
    """The run was cancelled by `signal_name`; a BaseException so no `except Exception`
    swallows it. The pipeline attaches the partial report (`partial`) on its way out;
    this bottom layer does not know the report's type, the gate checks it."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.partial: object | None = None


@dataclass
class _State:
    held: bool = False  # a signal so far is remembered (`pending`), not acted on
    armed: bool = False  # inside `cancellable()`: a signal raises
    fired: bool = False  # one Cancelled per run; later signals are ignored
    deferring: int = 0  # inside `deferred()`: a signal waits until the block ends
    pending: str | None = None


_state = _State()


_fired_by: str | None = None  # the signal of the run's cancellation, for every thread


def _handler(signum: int, _frame: FrameType | None) -> None:
    global _fired_by
    name = signal.Signals(signum).name
    if _state.held:  # before the run: `cancellable()` fires it as soon as the run starts
        _state.pending = _state.pending or name
        return
    if not _state.armed or _state.fired:
        return
    _fired_by = name  # other threads stop their workers at once, deferred or not
    if _state.deferring:
        _state.pending = _state.pending or name
        return
    _state.fired = True
    raise Cancelled(name)


def cancelled_by() -> str | None:
    """The signal that cancelled this run, if one did: threads that wait poll this."""
    return _fired_by if _state.armed else None


def hold_signals() -> None:
    """From now on, remember SIGTERM and SIGINT until the run starts (main thread only).

    Called first thing by the command-line and Action entry points, before their
    imports: a job cancelled while Python still loads the gate must still end in a
    cancelled report, not in a process killed with nothing written.
    """
    _state.held = True
    for signum in SIGNALS:
        signal.signal(signum, _handler)


@contextlib.contextmanager
def signals_handled() -> Iterator[None]:
    """Route SIGTERM and SIGINT to the cancellation handler while inside (main thread).

    A signal before the run is held until `cancellable()` starts it; inside, it
    raises; after it (writing reports and outputs) a signal is ignored so that they
    are written whole.
    """
    previous = {signum: signal.signal(signum, _handler) for signum in SIGNALS}
    _state.held = True
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def cancellable() -> Iterator[None]:
    """While inside, a signal raises `Cancelled`; outside (writing reports) it is ignored.

    A signal held since before (`hold_signals`) cancels the run as it starts.
    """
    global _fired_by
    early, _state.pending = _state.pending, None
    _state.held, _state.armed, _state.fired, _fired_by = False, True, False, None
    try:
        if early is not None:
            _fired_by, _state.fired = early, True
            raise Cancelled(early)
        yield
    finally:
        _state.armed = False


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a cancellation until the block ends: for starting a worker, whose pid the
    caller must have in hand before anything can interrupt it.

    Only the main thread is ever interrupted; in another thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if not _state.deferring and _state.pending is not None and not _state.fired:
        name, _state.pending = _state.pending, None
        _state.fired = True
        raise Cancelled(name)

"""Cancellation with real signals sent to this test process: held before the run,
raised once inside it, ignored after it, and held back by `deferred()`.

Each test routes SIGTERM and SIGINT to the gate's handler (`signals_handled`) before it
sends one, so no signal ever reaches pytest's own handlers; `os.kill` on this process
runs the handler before it returns. The fixture puts the handlers back and ends any
run a test left open.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

import pytest

from tflite_gate.support.cancel import (
    SIGNALS,
    Cancelled,
    cancellable,
    cancelled_by,
    deferred,
    hold_signals,
    signals_handled,
)


def _end_any_run() -> None:
    """Start and end a run: what a test left held or pending is spent, the state fresh."""
    with contextlib.suppress(Cancelled), cancellable():
        pass


@pytest.fixture(autouse=True)
def _fresh_cancellation_state() -> Iterator[None]:
    handlers = {signum: signal.getsignal(signum) for signum in SIGNALS}
    _end_any_run()
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    _end_any_run()


def _send(signum: signal.Signals) -> None:
    os.kill(os.getpid(), signum)


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_inside_the_run_raises_cancelled_named_after_it(signum: signal.Signals) -> None:
    with signals_handled(), pytest.raises(Cancelled) as caught, cancellable():
        _send(signum)
    assert caught.value.signal_name == signum.name == str(caught.value)
    assert caught.value.partial is None  # the pipeline attaches the partial report


def test_a_cancellation_passes_every_except_exception() -> None:
    """So no `except Exception` on the way out swallows it and carries on."""
    with signals_handled(), pytest.raises(Cancelled), cancellable():
        try:
            _send(signal.SIGTERM)
        except Exception:
            pytest.fail("Cancelled was caught as an Exception")


def test_a_signal_before_the_run_is_held_and_cancels_it_as_it_starts() -> None:
    started = False
    with signals_handled():
        _send(signal.SIGTERM)  # no exception here: the run has not started
        with pytest.raises(Cancelled, match="SIGTERM"), cancellable():
            started = True
    assert not started


def test_of_signals_before_the_run_the_first_is_the_one_named() -> None:
    with signals_handled():
        _send(signal.SIGINT)
        _send(signal.SIGTERM)
        with pytest.raises(Cancelled, match="SIGINT"), cancellable():
            pass


def test_a_signal_after_the_run_is_ignored_so_reports_are_written_whole() -> None:
    with signals_handled():
        with cancellable():
            pass
        _send(signal.SIGTERM)  # writing reports: nothing raises
        _send(signal.SIGINT)
    assert cancelled_by() is None


def test_a_run_is_cancelled_once_and_every_thread_can_ask_by_what() -> None:
    with signals_handled(), cancellable():
        with pytest.raises(Cancelled):
            _send(signal.SIGTERM)
        _send(signal.SIGINT)  # the cleanup on the way out is not cut short
        assert cancelled_by() == "SIGTERM"
        seen: list[str | None] = []
        asking = threading.Thread(target=lambda: seen.append(cancelled_by()))
        asking.start()
        asking.join()
        assert seen == ["SIGTERM"]
    assert cancelled_by() is None  # outside a run nothing is cancelled


def test_a_new_run_starts_uncancelled() -> None:
    with signals_handled():
        with pytest.raises(Cancelled), cancellable():
            _send(signal.SIGTERM)
        with cancellable():
            assert cancelled_by() is None
            with pytest.raises(Cancelled, match="SIGINT"):
                _send(signal.SIGINT)


def test_a_deferred_signal_waits_for_the_end_of_the_block() -> None:
    """A worker being started is not left without its pid; the other threads stop at once."""
    after_the_signal = False
    with signals_handled(), cancellable():
        with pytest.raises(Cancelled, match="SIGTERM"), deferred():
            _send(signal.SIGTERM)
            assert cancelled_by() == "SIGTERM"
            after_the_signal = True
        assert after_the_signal
        _send(signal.SIGTERM)  # one cancellation per run, deferred or not


def test_nested_deferrals_raise_when_the_outermost_ends() -> None:
    reached: list[str] = []
    with signals_handled(), cancellable():
        with pytest.raises(Cancelled), deferred():
            with deferred():
                _send(signal.SIGINT)
            reached.append("inner block ended")
        assert reached == ["inner block ended"]


def test_a_block_deferred_without_a_signal_ends_quietly() -> None:
    with signals_handled(), cancellable():
        with deferred():
            pass
        assert cancelled_by() is None


def test_deferring_in_another_thread_does_not_hold_the_main_thread_back() -> None:
    """Only the main thread is interrupted; another thread's deferral leaves it be."""
    entered, release = threading.Event(), threading.Event()

    def start_a_worker() -> None:
        with deferred():
            entered.set()
            release.wait(30)

    other = threading.Thread(target=start_a_worker)
    other.start()
    try:
        assert entered.wait(30)
        with signals_handled(), pytest.raises(Cancelled), cancellable():
            _send(signal.SIGTERM)
    finally:
        release.set()
        other.join()


def test_leaving_signals_handled_puts_the_previous_handlers_back() -> None:
    before = {signum: signal.getsignal(signum) for signum in SIGNALS}
    with signals_handled():
        assert all(signal.getsignal(signum) != before[signum] for signum in SIGNALS)
    assert {signum: signal.getsignal(signum) for signum in SIGNALS} == before


def test_a_signal_while_the_gate_loads_is_held_for_the_run() -> None:
    """`hold_signals` is the entry points' first call, before the gate's imports."""
    hold_signals()
    _send(signal.SIGTERM)
    with pytest.raises(Cancelled, match="SIGTERM"), cancellable():
        pass

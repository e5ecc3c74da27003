"""Run a worker in its own process group with a timeout and a memory limit.

The converter and the interpreter are C++ that can segfault, abort, hang or eat
all memory. Each runs in a child process; whatever happens to it comes back as a
`WorkerOutcome` the caller turns into a finding, never as the gate's death.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tflite_gate.support.cancel import Cancelled, cancelled_by, deferred
from tflite_gate.support.lifetime import lifeline, under_lifeline

_POLL_S = 0.1


@dataclass(frozen=True)
class WorkerOutcome:
    returncode: int | None
    signal_name: str | None
    timed_out: bool
    memory_exceeded: bool
    peak_rss_mb: float
    duration_s: float

    @property
    def cause(self) -> str:
        """`timeout`, `memory`, `signal` or `exit`: which limit or failure ended the worker."""
        if self.timed_out:
            return "timeout"
        if self.memory_exceeded:
            return "memory"
        return "signal" if self.signal_name else "exit"

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.memory_exceeded

    def describe(self) -> str:
        """One phrase for a finding: what happened to the worker."""
        if self.timed_out:
            return f"did not finish within the time limit ({self.duration_s:.0f} s)"
        if self.memory_exceeded:
            return f"exceeded the memory limit (peak {self.peak_rss_mb:.0f} MB)"
        if self.signal_name == "SIGKILL":
            return "was killed by SIGKILL (often the system's out-of-memory killer)"
        if self.signal_name:
            return f"crashed with {self.signal_name}"
        return f"exited with code {self.returncode}"


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# Credentials a CI job holds that no worker needs. Workers run workspace code (model
# factories, generators, pip builds); this is not a sandbox (see SECURITY.md), but no
# worker is handed a token it could print or send.
_CREDENTIALS = frozenset(
    {
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
    }
)


def without_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without the job's tokens and the Action's inputs (`INPUT_*`, the token among them)."""
    return {k: v for k, v in env.items() if k not in _CREDENTIALS and not k.startswith("INPUT_")}


# What one worker may need: a MobileNet-sized conversion peaks near 1 GB.
MB_PER_JOB = 1536


def default_jobs() -> int:
    """Workers at once: one per usable core, fewer when memory is short."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    available = _available_mb()
    by_memory = cores if available is None else max(1, int(available // MB_PER_JOB))
    return max(1, min(cores, by_memory))


def _available_mb() -> float | None:
    """Memory free for new processes now (MemAvailable), within a cgroup's limit if any."""
    available = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) / 1024
    with contextlib.suppress(OSError, ValueError):
        limit, used = (
            Path(f"/sys/fs/cgroup/{name}").read_text().strip()
            for name in ("memory.max", "memory.current")
        )
        if limit != "max":
            room = (int(limit) - int(used)) / 2**20
            available = room if available is None else min(available, room)
    return available


_slots: threading.BoundedSemaphore | None = None
_EXIT_S = 10.0  # how long an idle pooled worker may take to exit when asked
HEARTBEAT_S = 30.0


@contextlib.contextmanager
def at_most(jobs: int) -> Iterator[None]:
    """While inside, at most `jobs` workers run at once, whichever threads start them.

    Models and variants are checked in parallel threads; this one bound keeps the
    machine's cores and memory from being oversubscribed by all of them together.
    """
    global _slots
    previous, _slots = _slots, threading.BoundedSemaphore(jobs)
    try:
        yield
    finally:
        _slots = previous


@contextlib.contextmanager
def _slot() -> Iterator[None]:
    slots = _slots
    if slots is None:
        yield
        return
    while not slots.acquire(timeout=_POLL_S):
        _stop_if_cancelled(None)
    try:
        yield
    finally:
        slots.release()


def _stop_if_cancelled(process: subprocess.Popen[bytes] | None) -> None:
    """In any thread: a cancelled run kills this worker and unwinds as `Cancelled`."""
    name = cancelled_by()
    if name is None:
        return
    if process is not None:
        _kill_group(process)
        process.wait()
    raise Cancelled(name)


def run_worker(
    argv: list[str],
    *,
    timeout_s: float,
    memory_mb: int | None,
    log_path: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    heartbeat: Callable[[float], None] | None = None,
    heartbeat_s: float = HEARTBEAT_S,
) -> WorkerOutcome:
    """Run `argv` with stdout+stderr to `log_path`; enforce time and memory limits.

    `heartbeat(seconds)` is called every `heartbeat_s` while the worker runs, so a long
    conversion shows it is alive. The time limit counts from the worker's start, not
    from the wait for a free slot (`at_most`).
    """
    with _slot():
        beat = (heartbeat, heartbeat_s) if heartbeat is not None else None
        return _run(argv, timeout_s, memory_mb, log_path, cwd, env, beat)


def _run(
    argv: list[str],
    timeout_s: float,
    memory_mb: int | None,
    log_path: Path,
    cwd: Path | None,
    env: dict[str, str] | None,
    heartbeat: tuple[Callable[[float], None], float] | None,
) -> WorkerOutcome:
    started = time.monotonic()
    beat = started + (heartbeat[1] if heartbeat else 0.0)
    peak = 0.0
    over_memory = False
    with open(log_path, "wb") as log:
        timed_out = False
        process: subprocess.Popen[bytes] | None = None
        try:
            with deferred():  # a cancellation waits until the pid is in hand to kill
                process = subprocess.Popen(
                    under_lifeline(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=without_credentials(os.environ if env is None else env),
                    start_new_session=True,
                    pass_fds=(lifeline(),),
                )
            while process.poll() is None:
                _stop_if_cancelled(process)
                if heartbeat is not None and time.monotonic() >= beat:
                    heartbeat[0](time.monotonic() - started)
                    beat += heartbeat[1]
                rss = _rss_mb(process.pid)
                peak = max(peak, rss)
                if memory_mb is not None and rss > memory_mb:
                    over_memory = True
                    _kill_group(process)
                elif time.monotonic() - started > timeout_s:
                    timed_out = True
                    _kill_group(process)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=_POLL_S)
        except BaseException:  # cancelled (Ctrl-C, SIGTERM): the worker must not outlive us
            if process is not None and process.returncode is None:
                _kill_group(process)
                process.wait()
            raise
        process.wait()
    code = process.returncode
    signal_name = None
    if code is not None and code < 0:
        try:
            signal_name = signal.Signals(-code).name
        except ValueError:
            signal_name = f"signal {-code}"
    killed_by_us = timed_out or over_memory
    return WorkerOutcome(
        returncode=code,
        signal_name=None if killed_by_us else signal_name,
        timed_out=timed_out,
        memory_exceeded=over_memory,
        peak_rss_mb=peak,
        duration_s=time.monotonic() - started,
    )


@dataclass
class _Served:
    process: subprocess.Popen[bytes]
    control: int  # the read end of the worker's "job done" pipe
    jobs: int = 0


class WorkerPool:
    """Long-lived workers for jobs that share a costly start (TensorFlow's import).

    Each worker runs `argv` once, then one job at a time: a line naming the job on its
    stdin, a line on the control pipe (its fd named by the last argument, appended
    here) when the job is done. A job whose worker dies, times out or exceeds the
    memory limit costs that worker only (killed with its process group); the next
    job gets a fresh one. At most `size` workers live at once, and `at_most` bounds the
    busy ones together with every other worker. A worker is retired after `max_jobs`
    jobs (the converter leaks memory) and `shrink` ends the idle ones.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        size: int,
        cwd: Path,
        env: dict[str, str],
        startup_log: Path,
        max_jobs: int = 25,
    ) -> None:
        self._argv, self._cwd, self._env = argv, cwd, without_credentials(env)
        self._startup_log, self._max_jobs = startup_log, max_jobs
        self._idle: list[_Served] = []
        self._alive = 0
        self._size = size
        self._changed = threading.Condition()

    def run(
        self,
        job: str,
        *,
        log_path: Path,
        timeout_s: float,
        memory_mb: int | None,
        heartbeat: Callable[[float], None] | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> WorkerOutcome:
        """Run one job (a line for the worker) under the limits, as `run_worker` would."""
        with _slot():
            worker = self._take()
            outcome = self._serve(
                worker, job, log_path, timeout_s, memory_mb, heartbeat, heartbeat_s
            )
            if not outcome.ok:
                self._end(worker, log_path)
            elif worker.jobs < self._max_jobs:
                self._give_back(worker)
        if outcome.ok and worker.jobs >= self._max_jobs:  # retired: idle, so asked to exit
            self._end(worker, None, graceful=True)
        return outcome

    def shrink(self) -> None:
        """End the idle workers (no more jobs are coming, or memory is wanted back)."""
        with self._changed:
            idle, self._idle = self._idle, []
        for worker in idle:  # killed: waiting for TensorFlow's exit would hold up the run
            self._end(worker, None)

    def close(self) -> None:
        self.shrink()

    def _take(self) -> _Served:
        with self._changed:
            while not self._idle and self._alive >= self._size:
                self._changed.wait(timeout=_POLL_S)
                _stop_if_cancelled(None)
            if self._idle:
                return self._idle.pop()
            self._alive += 1
        try:
            return self._start()
        except BaseException:
            with self._changed:
                self._alive -= 1
                self._changed.notify()
            raise

    def _start(self) -> _Served:
        read, write = os.pipe()
        try:
            with deferred(), open(self._startup_log, "ab") as log:
                process = subprocess.Popen(
                    under_lifeline([*self._argv, str(write)]),
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._cwd,
                    env=self._env,
                    start_new_session=True,
                    pass_fds=(write, lifeline()),
                )
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        return _Served(process, read)

    def _give_back(self, worker: _Served) -> None:
        with self._changed:
            self._idle.append(worker)
            self._changed.notify()

    def _end(self, worker: _Served, log_path: Path | None, *, graceful: bool = False) -> None:
        """End a worker for good; a failed job's log gets what the worker printed at start.

        An idle worker is asked to exit (its stdin closed), so that its own clean-up
        runs (TensorFlow removes its temporary files at exit); a busy one is killed.
        """
        if worker.process.stdin is not None:
            with contextlib.suppress(OSError):
                worker.process.stdin.close()
        if graceful and cancelled_by() is None:  # a cancelled job has seconds, not ten
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(timeout=_EXIT_S)
        if worker.process.poll() is None:
            _kill_group(worker.process)
        worker.process.wait()
        os.close(worker.control)
        if log_path is not None and not log_tail(log_path):
            with contextlib.suppress(OSError):
                log_path.write_bytes(self._startup_log.read_bytes()[-20_000:])
        with self._changed:
            self._alive -= 1
            self._changed.notify()

    def _serve(
        self,
        worker: _Served,
        job: str,
        log_path: Path,
        timeout_s: float,
        memory_mb: int | None,
        heartbeat: Callable[[float], None] | None,
        heartbeat_s: float,
    ) -> WorkerOutcome:
        started = time.monotonic()
        beat = started + heartbeat_s
        peak, over_memory, timed_out, done = 0.0, False, False, False
        process = worker.process
        try:
            assert process.stdin is not None
            process.stdin.write(job.encode() + b"\n")
            process.stdin.flush()
        except OSError:  # it died before taking the job (at start, in TensorFlow's import)
            pass
        try:
            while not done and process.poll() is None:
                _stop_if_cancelled(process)
                if heartbeat is not None and time.monotonic() >= beat:
                    heartbeat(time.monotonic() - started)
                    beat += heartbeat_s
                rss = _rss_mb(process.pid)
                peak = max(peak, rss)
                if memory_mb is not None and rss > memory_mb:
                    over_memory = True
                    break
                if time.monotonic() - started > timeout_s:
                    timed_out = True
                    break
                ready, _, _ = select.select([worker.control], [], [], _POLL_S)
                done = bool(ready) and os.read(worker.control, 64).endswith(b"\n")
        except BaseException:
            self._end(worker, None)
            raise
        worker.jobs += done
        code = 0 if done else process.poll()
        if not done and code is None:  # over a limit: ours to kill
            _kill_group(process)
            code = process.wait()
        signal_name = None
        if code is not None and code < 0 and not (timed_out or over_memory):
            with contextlib.suppress(ValueError):
                signal_name = signal.Signals(-code).name
        return WorkerOutcome(
            returncode=code,
            signal_name=signal_name,
            timed_out=timed_out,
            memory_exceeded=over_memory,
            peak_rss_mb=peak,
            duration_s=time.monotonic() - started,
        )


def log_tail(log_path: Path, lines: int = 15) -> list[str]:
    """The last lines a dead worker printed: usually the reason it died."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


# What every TensorFlow or LiteRT process prints as it starts and works: C++ (absl) log
# lines at info or warning level, and banners. Never why a worker died.
_ROUTINE_LOG = re.compile(
    r"^(?:[IW]\d{4} [\d:.]+\s+\d+ [\w./-]+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate)"
)


def cause_tail(log_path: Path, lines: int = 3) -> list[str]:
    """The last lines a dead worker printed that can say why it died (`log_tail` without
    TensorFlow's routine log): a message quotes these as the cause, or nothing at all."""
    return [line for line in log_tail(log_path, 200) if not _ROUTINE_LOG.match(line)][-lines:]

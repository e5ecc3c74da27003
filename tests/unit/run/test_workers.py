"""Worker isolation with real child processes: crash, timeout, memory, exit code; and the
pool of long-lived workers (reuse, crashes, limits, graceful ends) with a real script."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tflite_gate.run.workers import (
    WorkerPool,
    at_most,
    cause_tail,
    default_jobs,
    log_tail,
    run_worker,
)

pytestmark = pytest.mark.slow  # every test here starts processes


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_clean_exit(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    outcome = run_worker(_python("print('hello')"), timeout_s=60, memory_mb=None, log_path=log)
    assert outcome.ok
    assert log_tail(log) == ["hello"]


def test_segfault_is_reported_by_signal_name(tmp_path: Path) -> None:
    code = "import os, signal; print('about to crash', flush=True); os.kill(os.getpid(), signal.SIGSEGV)"
    outcome = run_worker(_python(code), timeout_s=60, memory_mb=None, log_path=tmp_path / "w.log")
    assert not outcome.ok
    assert outcome.signal_name == "SIGSEGV"
    assert outcome.describe() == "crashed with SIGSEGV"
    assert log_tail(tmp_path / "w.log") == ["about to crash"]


def test_abort(tmp_path: Path) -> None:
    outcome = run_worker(
        _python("import os; os.abort()"), timeout_s=60, memory_mb=None, log_path=tmp_path / "w.log"
    )
    assert outcome.signal_name == "SIGABRT"


def test_nonzero_exit(tmp_path: Path) -> None:
    outcome = run_worker(
        _python("raise SystemExit(7)"), timeout_s=60, memory_mb=None, log_path=tmp_path / "w.log"
    )
    assert (outcome.returncode, outcome.signal_name) == (7, None)
    assert outcome.describe() == "exited with code 7"


def test_hang_is_killed_at_the_timeout(tmp_path: Path) -> None:
    outcome = run_worker(
        _python("import time; time.sleep(60)"),
        timeout_s=1,
        memory_mb=None,
        log_path=tmp_path / "w.log",
    )
    assert outcome.timed_out
    assert not outcome.ok
    assert outcome.duration_s < 30
    assert outcome.describe().startswith("did not finish within the time limit")


def test_memory_blowup_is_killed_at_the_limit(tmp_path: Path) -> None:
    code = "import time\nblocks = []\nwhile True:\n    blocks.append(bytearray(50_000_000))\n    time.sleep(0.01)"
    outcome = run_worker(_python(code), timeout_s=60, memory_mb=300, log_path=tmp_path / "w.log")
    assert outcome.memory_exceeded
    assert outcome.signal_name is None
    assert outcome.peak_rss_mb > 300
    assert outcome.describe().startswith("exceeded the memory limit")


def test_children_of_a_killed_worker_die_with_it(tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    child = tmp_path / "child.py"
    child.write_text(f"import time\ntime.sleep(3)\nopen({str(marker)!r}, 'w').close()\n")
    parent = tmp_path / "parent.py"
    parent.write_text(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, {str(child)!r}])\n"
        "time.sleep(60)\n"
    )
    outcome = run_worker(
        [sys.executable, str(parent)], timeout_s=1, memory_mb=None, log_path=tmp_path / "w.log"
    )
    assert outcome.timed_out, log_tail(tmp_path / "w.log")
    time.sleep(4)
    assert not marker.exists()


def test_workers_never_see_the_jobs_tokens(tmp_path: Path) -> None:
    """Workers run workspace code: the Action's token input and the runner's tokens stay out."""
    secrets = {
        "INPUT_GITHUB-TOKEN": "ghs_input",
        "GITHUB_TOKEN": "ghs_env",
        "ACTIONS_RUNTIME_TOKEN": "runtime",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://oidc.example",
    }
    code = "import os, json; print(json.dumps(sorted(os.environ)))"
    log = tmp_path / "w.log"
    env = {"PATH": "/usr/bin:/bin", "KEEP_ME": "1", **secrets}
    outcome = run_worker(_python(code), timeout_s=60, memory_mb=None, log_path=log, env=env)
    assert outcome.ok
    seen = set(json.loads(log_tail(log)[-1]))
    assert "KEEP_ME" in seen
    assert seen.isdisjoint(secrets)


def _sleeper(record: Path, seconds: float) -> list[str]:
    """A worker that writes when it started and ended (monotonic clock, shared by all)."""
    code = (
        "import sys, time, pathlib; start = time.monotonic(); "
        f"time.sleep({seconds}); "
        f"pathlib.Path({str(record)!r}).write_text(f'{{start}} {{time.monotonic()}}')"
    )
    return [sys.executable, "-c", code]


def _intervals(tmp_path: Path, jobs: int, count: int) -> list[tuple[float, float]]:
    def one(index: int) -> None:
        argv = _sleeper(tmp_path / f"{jobs}-{index}.txt", 0.6)
        outcome = run_worker(
            argv, timeout_s=30, memory_mb=None, log_path=tmp_path / f"{jobs}-{index}.log"
        )
        assert outcome.ok

    with at_most(jobs), ThreadPoolExecutor(count) as pool:
        list(pool.map(one, range(count)))
    spans = [(tmp_path / f"{jobs}-{i}.txt").read_text().split() for i in range(count)]
    return sorted((float(a), float(b)) for a, b in spans)


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def test_at_most_bounds_workers_started_by_any_thread(tmp_path: Path) -> None:
    assert _most_at_once(_intervals(tmp_path, jobs=1, count=3)) == 1
    assert _most_at_once(_intervals(tmp_path, jobs=3, count=3)) == 3


def test_a_long_worker_sends_heartbeats(tmp_path: Path) -> None:
    beats: list[float] = []
    outcome = run_worker(
        _sleeper(tmp_path / "r.txt", 1.0),
        timeout_s=30,
        memory_mb=None,
        log_path=tmp_path / "w.log",
        heartbeat=beats.append,
        heartbeat_s=0.3,
    )
    assert outcome.ok
    assert 2 <= len(beats) <= 4 and beats == sorted(beats) and beats[0] >= 0.3


def test_default_jobs_is_between_one_and_the_cores() -> None:
    assert 1 <= default_jobs() <= len(os.sched_getaffinity(0))


# What a conversion worker killed while loading printed (TensorFlow 2.21, this machine).
TENSORFLOW_START = [
    "I0000 00:00:1796674777.972333    6517 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796674777.973305    6517 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796674778.147836    6516 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "W0000 00:00:1796674779.000001    6516 loader.cc:12] Ignored output_format.",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
]


def test_the_cause_of_death_is_never_tensorflows_routine_log(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text("\n".join(TENSORFLOW_START) + "\n")
    assert cause_tail(log) == []
    log.write_text("\n".join(["ValueError: bad weights", *TENSORFLOW_START]) + "\n")
    assert cause_tail(log) == ["ValueError: bad weights"]
    fatal = "F0000 00:00:1796674779.1 6516 tensor.cc:7] Check failed: dims >= 0"
    log.write_text("\n".join([*TENSORFLOW_START, fatal]) + "\n")
    assert cause_tail(log) == [fatal]


# --------------------------------------------------------------------------- the pool

# Serves jobs like the conversion worker: a JSON line on stdin, "done" on the control fd.
SERVER = """\
import atexit, json, os, sys, time
control = int(sys.argv[-1])
atexit.register(lambda: open(os.environ["EXITED"], "a").write(f"{os.getpid()}\\n"))
for line in sys.stdin:
    job = json.loads(line)
    with open(job["log"], "w") as log:
        log.write(f"pid {os.getpid()}\\n")
    if job["do"] == "crash":
        os.abort()
    if job["do"] == "hang":
        time.sleep(600)
    if job["do"] == "eat":
        hog = bytearray(400 << 20)
        time.sleep(5)
    os.write(control, b"done\\n")
"""


@pytest.fixture
def pool(tmp_path: Path) -> WorkerPool:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return WorkerPool(
        [sys.executable, str(script)],
        size=2,
        cwd=tmp_path,
        env={**os.environ, "EXITED": str(tmp_path / "exited.txt")},
        startup_log=tmp_path / "startup.log",
        max_jobs=3,
    )


def _job(
    pool: WorkerPool, tmp_path: Path, name: str, do: str = "ok", **limits: float
) -> tuple[bool, str]:
    log = tmp_path / f"{name}.log"
    outcome = pool.run(
        json.dumps({"log": str(log), "do": do}),
        log_path=log,
        timeout_s=limits.get("timeout_s", 30),
        memory_mb=int(limits["memory_mb"]) if "memory_mb" in limits else None,
    )
    return outcome.ok, outcome.describe() if not outcome.ok else log.read_text().split()[1]


def test_jobs_reuse_a_worker_until_it_has_served_its_share(
    pool: WorkerPool, tmp_path: Path
) -> None:
    pids = [_job(pool, tmp_path, f"j{i}")[1] for i in range(4)]
    assert pids[0] == pids[1] == pids[2] != pids[3]  # retired after max_jobs=3
    pool.close()


def test_a_crash_costs_only_its_job(pool: WorkerPool, tmp_path: Path) -> None:
    _, first = _job(pool, tmp_path, "before")
    ok, what = _job(pool, tmp_path, "crash", "crash")
    assert not ok and what == "crashed with SIGABRT"
    ok, after = _job(pool, tmp_path, "after")
    assert ok and after != first
    pool.close()


def test_limits_kill_the_worker_and_say_which(pool: WorkerPool, tmp_path: Path) -> None:
    ok, what = _job(pool, tmp_path, "hang", "hang", timeout_s=1)
    assert not ok and what.startswith("did not finish within the time limit")
    ok, what = _job(pool, tmp_path, "eat", "eat", memory_mb=200)
    assert not ok and what.startswith("exceeded the memory limit")
    assert _job(pool, tmp_path, "fine")[0]
    pool.close()


def test_at_most_size_workers_and_retired_ones_exit_cleanly(
    pool: WorkerPool, tmp_path: Path
) -> None:
    with at_most(4), ThreadPoolExecutor(4) as threads:
        served = list(threads.map(lambda i: _job(pool, tmp_path, f"p{i}")[1], range(6)))
    assert len(set(served)) <= 3  # never more than size=2 alive; one may replace a retiree
    retired = {pid for pid in served if served.count(pid) == 3}  # max_jobs=3
    assert retired
    exited = set((tmp_path / "exited.txt").read_text().split())
    assert retired <= exited  # asked to exit: their atexit handlers ran
    pool.close()


def test_shrink_ends_idle_workers_at_once(pool: WorkerPool, tmp_path: Path) -> None:
    _, pid = _job(pool, tmp_path, "only")
    pool.shrink()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert _job(pool, tmp_path, "later")[1] != pid  # the pool still works: a new worker

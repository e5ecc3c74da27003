"""WorkerPool with a real long-lived worker script: reuse, crashes, limits, graceful ends."""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tflite_gate.run.workers import WorkerPool, at_most

pytestmark = pytest.mark.slow  # every test here starts processes

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

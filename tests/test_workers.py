"""Worker isolation with real child processes: crash, timeout, memory, exit code."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tflite_gate.workers import log_tail, run_worker


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

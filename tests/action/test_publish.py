"""The Action's publish step against a GitHub API that is slow in the ways real ones are.

Runs `entrypoint.py` as the runner does, on a workspace with one `.tflite` model (no
conversion), against the real local HTTP server of `tests/fake_github.py` told to
send its answers a byte at a time or to stall. What must hold: the step ends within
its one publish deadline, SIGTERM ends it at once, and every block is closed and
every output written before the comment is tried.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.action_env import ENTRYPOINT, action_env, parse_outputs
from tests.support.fake_github import PR, TOKEN, FakeGitHub, serve
from tests.support.tflite_builder import build_model, builtin

pytestmark = pytest.mark.slow


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from serve()


def _repository(tmp_path: Path) -> Path:
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (repository / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - {name: relu, source: relu.tflite}\n"
    )
    return repository


def _start(tmp_path: Path, github: FakeGitHub, **inputs: str) -> subprocess.Popen[str]:
    repository = _repository(tmp_path)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"number": PR, "pull_request": {"number": PR}}))
    env = action_env(
        repository,
        tmp_path,
        {"github-token": TOKEN, **inputs},
        event_name="pull_request",
        event_path=event,
        api_url=github.base_url,
    )
    return subprocess.Popen(
        [sys.executable, str(ENTRYPOINT)],
        cwd=repository,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _unclosed_blocks(stdout: str) -> list[str]:
    """stop-commands tokens and groups left open, as the runner would read the log."""
    token, groups = None, 0
    for line in stdout.splitlines():
        if token is not None:
            token = None if line == f"::{token}::" else token
        elif line.startswith("::stop-commands::"):
            token = line.removeprefix("::stop-commands::")
        elif line == "::group::" or line.startswith("::group::"):
            groups += 1
        elif line == "::endgroup::":
            groups -= 1
    return [*([token] if token else []), *(["group"] * groups)]


def test_a_trickling_api_costs_the_publish_timeout_and_no_more(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.trickle_s = 1.0  # one byte a second: the /user answer alone takes minutes
    started = time.monotonic()
    process = _start(tmp_path, github, **{"publish-timeout": "3"})
    stdout, stderr = process.communicate(timeout=120)
    took = time.monotonic() - started
    assert process.returncode == 0, stdout + stderr
    assert took < 20, took
    assert (
        "::notice title=tflite-gate comment::tflite-gate: sticky comment on #7 not written: "
        "the GitHub API did not finish within 3 s (the publish deadline)"
    ) in stdout
    assert _unclosed_blocks(stdout) == []
    outputs = parse_outputs((tmp_path / "output.txt").read_text())
    assert outputs["verdict"] == "pass"
    assert github.writes() == []


def test_sigterm_while_the_comment_is_posted_ends_the_step_at_once(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.trickle_s = 5.0  # as measured: a byte every 5 s held the step for over 350 s
    process = _start(tmp_path, github)
    deadline = time.monotonic() + 60
    while not github.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert github.requests, "the comment was never tried"
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    assert time.monotonic() - signalled < 3
    assert process.returncode == 143, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert (
        "sticky comment not written: the job was cancelled (SIGTERM) while it was being posted"
        in stdout
    )
    assert _unclosed_blocks(stdout) == []
    outputs = parse_outputs((tmp_path / "output.txt").read_text())
    assert outputs["verdict"] == "pass"  # what was checked stands: the comment was cut
    assert "PASS" in (tmp_path / "summary.md").read_text()
    report = json.loads((tmp_path / "repo" / "tflite-gate-report.json").read_text())
    assert report["verdict"] == "pass"


def test_a_bad_publish_timeout_is_an_input_error(tmp_path: Path, github: FakeGitHub) -> None:
    process = _start(tmp_path, github, **{"publish-timeout": "soon"})
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "publish-timeout must be seconds above 0 and at most 3600" in stdout

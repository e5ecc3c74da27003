"""The sticky comment as the Action publishes it: which pull request, the body, the notices.

Against the real local HTTP server of `tests/fake_github.py`, with event files written
as the runner writes them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_github import PAT_LOGIN, PR, REPO, TOKEN, FakeGitHub, serve
from tflite_gate.action.comment import MARKER
from tflite_gate.action.sticky_comment import (
    CommentRequest,
    StickyComment,
    event_pull_request,
    pull_request_number,
)
from tflite_gate.report.model import Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from serve()


def _report() -> Report:
    report = new_report()
    report.add([make_finding("divergence", "probs diverged")])
    report.finalize("error")
    return report


def _env(github: FakeGitHub, event: Path | None, name: str = "pull_request") -> dict[str, str]:
    env = {
        "GITHUB_API_URL": github.base_url,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_EVENT_NAME": name,
    }
    if event is not None:
        env["GITHUB_EVENT_PATH"] = str(event)
    return env


def _event(tmp_path: Path, payload: Any) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return path


def _publish(github: FakeGitHub, event: Path | None, report_path: str = "r.json") -> str:
    log = io.StringIO()
    request = CommentRequest(TOKEN, _env(github, event), deadline_s=10)
    StickyComment(request, log, report_path).publish(_report())
    return log.getvalue()


def test_a_pull_request_gets_the_report_as_a_comment(tmp_path: Path, github: FakeGitHub) -> None:
    event = _event(tmp_path, {"number": PR, "pull_request": {"number": PR}})

    log = _publish(github, event, "ml/tflite-gate-report.json")

    assert log == "tflite-gate: pull request comment created\n"
    [comment] = github.comments
    assert comment["body"].startswith(f"{MARKER}\n## tflite-gate: FAIL")
    assert "probs diverged" in comment["body"]
    assert "`ml/tflite-gate-report.json`" in comment["body"]


def test_the_second_run_updates_the_comment(tmp_path: Path, github: FakeGitHub) -> None:
    ours = github.add_comment(PAT_LOGIN, f"{MARKER}\nold")
    event = _event(tmp_path, {"number": PR, "pull_request": {"number": PR}})

    assert _publish(github, event) == "tflite-gate: pull request comment updated\n"
    assert "probs diverged" in github.comment(ours)["body"]


def test_a_fork_token_degrades_to_a_notice(tmp_path: Path, github: FakeGitHub) -> None:
    github.forbid_all = True
    event = _event(tmp_path, {"number": PR, "pull_request": {"number": PR}})

    log = _publish(github, event)

    assert log.startswith("::notice title=tflite-gate comment::tflite-gate: no permission")
    assert TOKEN not in log


def test_no_event_file_means_no_pull_request_and_no_traffic(github: FakeGitHub) -> None:
    assert _publish(github, None) == ""
    assert github.requests == []


def test_a_push_event_is_no_pull_request(tmp_path: Path, github: FakeGitHub) -> None:
    event = _event(tmp_path, {"ref": "refs/heads/main"})
    log = io.StringIO()
    request = CommentRequest(TOKEN, _env(github, event, "push"), deadline_s=10)

    StickyComment(request, log, "r.json").publish(_report())

    assert log.getvalue() == ""
    assert github.requests == []


def test_an_event_of_the_wrong_shape_is_a_notice(tmp_path: Path, github: FakeGitHub) -> None:
    event = _event(tmp_path, {"pull_request": {"number": "7"}})

    log = _publish(github, event)

    assert log.startswith(
        "::notice title=tflite-gate comment::tflite-gate: sticky comment skipped: "
    )
    assert 'a string ("7") as the pull request number' in log
    assert github.requests == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[1, 2]", "is a list where GitHub writes an object"),
        (b"{not json", "is not JSON"),
        (b"\xff\xfe", "is not JSON"),
        (b'{"pull_request": []}', "has `pull_request` as a list where GitHub writes an object"),
    ],
)
def test_event_files_github_would_not_write_say_why(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(content)

    number, reason = event_pull_request(str(path), "pull_request")

    assert number is None
    assert problem in reason and str(path) in reason


def test_a_missing_event_file_says_it_cannot_be_read(tmp_path: Path) -> None:
    number, reason = event_pull_request(str(tmp_path / "gone.json"), "pull_request")
    assert number is None
    assert reason.startswith(f"cannot read the event file {tmp_path / 'gone.json'}")


@pytest.mark.parametrize(
    ("event_name", "event", "expected"),
    [
        ("pull_request", {"number": 12, "pull_request": {"number": 12}}, 12),
        ("pull_request_target", {"number": 13, "pull_request": {"number": 13}}, 13),
        ("pull_request", {"number": 14}, 14),
        ("push", {"ref": "refs/heads/main", "pull_request": {"number": 1}}, None),
        ("issue_comment", {"issue": {"number": 15, "pull_request": {"url": "u"}}}, 15),
        ("issue_comment", {"issue": {"number": 16}}, None),
        ("issue_comment", {"issue": {"number": 17, "pull_request": None}}, None),
        ("workflow_dispatch", {}, None),
        ("pull_request", {}, None),
        ("pull_request", {"pull_request": {"number": "18"}}, None),
    ],
)
def test_pull_request_number(event_name: str, event: dict[str, Any], expected: int | None) -> None:
    assert pull_request_number(event, event_name) == expected

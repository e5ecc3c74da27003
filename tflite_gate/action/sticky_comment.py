"""The sticky comment as a reporter: which pull request, the Markdown body, and notices.

The comment is the last thing the Action publishes, and the only one that waits on
the network: everything else is in the log and the files by then. It never turns the
gate red. Any failure (a fork's read-only token, an API that is down) becomes a
notice pointing to the job summary, and a job cancelled while it is posted ends the
wait at once (`Cancelled` goes up to the caller, after a notice).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tflite_gate.action.comment import upsert_comment
from tflite_gate.report.github import workflow_command
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import Report
from tflite_gate.support.cancel import Cancelled, cancellable
from tflite_gate.support.workspace_files import read_regular_bytes

COMMENT_LIMIT = 65_536
MAX_EVENT_BYTES = 64 << 20  # GitHub's webhook payloads are at most 25 MB
_PULL_REQUEST_EVENTS = frozenset(
    {"pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment"}
)


@dataclass(frozen=True)
class CommentRequest:
    """What the sticky comment needs from the step: the token, the API, the event, the time."""

    token: str
    env: Mapping[str, str]  # GITHUB_EVENT_PATH, GITHUB_EVENT_NAME, GITHUB_REPOSITORY...
    deadline_s: float


@dataclass(frozen=True)
class StickyComment:
    """The reporter of the sticky pull-request comment."""

    request: CommentRequest
    log: TextIO  # the step's log: notices and the line that says what happened
    report_path: str  # the JSON report's path in the repository ("" when not written)
    name: str = "the pull request comment"
    place: str = "the pull request"

    def publish(self, report: Report) -> None:
        """Create or update the comment; a notice when it cannot be, `Cancelled` on a signal."""
        number = self._pull_request()
        repository = self.request.env.get("GITHUB_REPOSITORY", "")
        if number is None or not repository:
            return
        self.log.flush()  # everything so far is in the log, whatever happens to the exchange
        body = render_markdown(
            report, max_chars=COMMENT_LIMIT - 200, report_path=self.report_path or None
        )
        try:
            with cancellable():
                outcome = upsert_comment(
                    body,
                    api_url=self.request.env.get("GITHUB_API_URL", "https://api.github.com"),
                    repository=repository,
                    issue_number=number,
                    token=self.request.token,
                    deadline_s=self.request.deadline_s,
                )
        except Cancelled as cancelled:
            self._notice(
                f"tflite-gate: sticky comment not written: the job was cancelled "
                f"({cancelled.signal_name}) while it was being posted"
            )
            raise
        if outcome.action in {"skipped", "failed"}:
            self._notice(f"tflite-gate: {outcome.message}")
        else:
            self.log.write(f"tflite-gate: pull request comment {outcome.action}\n")

    def _pull_request(self) -> int | None:
        """The pull request to comment on; None (after a notice if it is odd) when there is none."""
        event_path = self.request.env.get("GITHUB_EVENT_PATH", "")
        if not event_path:  # not started by a workflow event: there is no pull request
            return None
        event_name = self.request.env.get("GITHUB_EVENT_NAME", "")
        number, problem = event_pull_request(event_path, event_name)
        if problem:
            self._notice(f"tflite-gate: sticky comment skipped: {problem}")
        return number

    def _notice(self, message: str) -> None:
        self.log.write(workflow_command("notice", message, {"title": "tflite-gate comment"}) + "\n")


def pull_request_number(event: Mapping[str, Any], event_name: str) -> int | None:
    """The pull request a workflow run belongs to, or None (push, schedule, plain issue...).

    Pull request events carry ``pull_request.number`` (and a top-level ``number``);
    `issue_comment` fires for issues and pull requests alike, and only the latter have
    ``issue.pull_request``.
    """
    if event_name in _PULL_REQUEST_EVENTS:
        pull_request = event.get("pull_request")
        number = pull_request.get("number") if isinstance(pull_request, Mapping) else None
        return _positive_int(number if number is not None else event.get("number"))
    if event_name == "issue_comment":
        issue = event.get("issue")
        if isinstance(issue, Mapping) and issue.get("pull_request"):
            return _positive_int(issue.get("number"))
    return None


def event_pull_request(path: str, event_name: str) -> tuple[int | None, str]:
    """The pull request of the workflow event file at ``path``, or why it cannot be used.

    Returns ``(number, "")``; ``(None, "")`` for an event without a pull request (push,
    schedule...); ``(None, reason)`` when the file cannot be read or is not the shape
    GitHub documents for ``event_name``. The caller skips the comment with a notice
    giving the reason: a comment problem must never change the gate's verdict.
    """
    try:
        data = read_regular_bytes(
            Path(path), limit=MAX_EVENT_BYTES, limit_reason="GitHub caps webhook payloads at 25 MB"
        )
        event = json.loads(data.decode("utf-8"))
    except OSError as exc:
        return None, f"cannot read the event file {path}: {exc.strerror or exc}"
    except ValueError as exc:  # not UTF-8 or not JSON
        return None, f"the event file {path} is not JSON ({exc})"
    problem = _event_shape_problem(event, event_name)
    if problem:
        return None, f"the {event_name or 'workflow'} event in {path} {problem}"
    return pull_request_number(event, event_name), ""


def _event_shape_problem(event: object, event_name: str) -> str:
    """What in ``event`` differs from GitHub's webhook payload, or ""."""
    if not isinstance(event, dict):
        return f"is {_json_kind(event)} where GitHub writes an object"
    if event_name in _PULL_REQUEST_EVENTS:
        pull_request = event.get("pull_request", {})
        if not isinstance(pull_request, dict):
            return f"has `pull_request` as {_json_kind(pull_request)} where GitHub writes an object"
        number = pull_request.get("number")
        if _positive_int(number if number is not None else event.get("number")) is None:
            shown = _json_kind(number if number is not None else event.get("number"))
            return f"has {shown} as the pull request number where GitHub writes a positive integer"
    if event_name == "issue_comment":
        issue = event.get("issue")
        if not isinstance(issue, dict):
            return f"has `issue` as {_json_kind(issue)} where GitHub writes an object"
        if issue.get("pull_request") and _positive_int(issue.get("number")) is None:
            shown = _json_kind(issue.get("number"))
            return f"has {shown} as the issue number where GitHub writes a positive integer"
    return ""


def _json_kind(value: object) -> str:
    """How a JSON value reads in a message: its kind, and a short scalar's value."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    kind = (
        "a boolean"
        if isinstance(value, bool)
        else "a string"
        if isinstance(value, str)
        else "a number"
    )
    text = json.dumps(value)
    return f"{kind} ({text if len(text) <= 40 else text[:37] + '...'})"


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value

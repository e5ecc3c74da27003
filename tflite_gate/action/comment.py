"""The sticky pull-request comment: one comment per pull request (and key), edited in place.

Why a sticky comment: a gate that posts a new comment on every push buries the
conversation; one comment that always shows the latest verdict does not.

Why `requests` (through `action/github_api.py`): it is in the Action's image already, and
it brings the connection pool, the retries that honour `Retry-After` and the `Link`
parsing a hand-written urllib client had to carry itself.

How it works (GitHub REST, API version 2022-11-28):

1. `GET {api}/user` tells whose comments are ours. The default `GITHUB_TOKEN` is an
   installation token that cannot read `/user` (401/403/404); then the author is
   `github-actions[bot]` (``fallback_login``).
2. `GET {api}/repos/{owner}/{repo}/issues/{n}/comments?per_page=100`, following
   `Link: <...>; rel="next"`, finds the comment that contains our hidden marker *and*
   was written by that user. Other users' comments are ignored even if they contain
   the marker (a quoted reply must not be hijacked, and we could not edit it anyway).
   If several match, the most recent one (GitHub lists by ascending id) is updated.
3. `PATCH .../issues/comments/{id}` or `POST .../issues/{n}/comments`.

Failure is never fatal: a fork pull request gets a read-only token (403), so
permission errors give ``skipped`` and the caller points to the job summary and
annotations instead. Everything else gives ``failed`` with GitHub's own message.
Nothing raises, and the token never appears in a message.

Security: the token is only ever sent to the origin (scheme, host, port) of
``api_url``; a pagination link or a redirect to another origin is refused.

Time: the whole exchange, retries and slow answers included, ends at one deadline
(`publish-timeout`): it runs in a thread the caller waits for.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from tflite_gate.action.github_api import (
    Deadline,
    GitHubClient,
    HttpError,
    OutOfTimeError,
    ProtocolError,
    Response,
    TransientError,
)

MARKER = "<!-- tflite-gate:sticky-comment -->"
"""Hidden HTML comment that identifies our comment. See `marker_for` for keyed markers."""

MAX_BODY_CHARS = 65_536
"""GitHub rejects longer comment bodies with 422 ("body is too long")."""

DEFAULT_DEADLINE_S = 30.0
"""The whole comment exchange, retries included."""

DEFAULT_BOT_LOGIN = "github-actions[bot]"
"""Author of comments written with the default `GITHUB_TOKEN`, as the REST API spells it."""

_PERMISSION_STATUSES = frozenset({401, 403, 404})
_MAX_PAGES = 200  # 20 000 comments: far beyond any real pull request; stops a Link loop.
_MAX_MESSAGE_CHARS = 300
_TRUNCATION_NOTE = (
    "\n\n---\n**Truncated:** this comment reached GitHub's limit of 65 536 characters. "
    "The full results are in the job summary and the JSON report.\n"
)

Action = Literal["created", "updated", "skipped", "failed"]


@dataclass(frozen=True)
class CommentOutcome:
    """What happened to the sticky comment; the caller turns it into a notice or a log line."""

    action: Action
    message: str
    comment_url: str | None = None


def marker_for(key: str | None = None) -> str:
    """The hidden marker, optionally keyed, so that several policies or workflows commenting
    on one pull request each keep their own comment.

    The key is reduced to characters that are safe inside an HTML comment (no ``--``),
    so two keys that differ only in punctuation or spaces share a marker.
    """
    if not key:
        return MARKER
    safe = re.sub(r"[^A-Za-z0-9_.:/@+]+", "-", key).strip("-")
    return f"<!-- tflite-gate:sticky-comment:{safe} -->" if safe else MARKER


def compose_body(body: str, marker: str = MARKER, limit: int = MAX_BODY_CHARS) -> str:
    """Prepend the marker and keep the whole within ``limit`` characters.

    An over-long body is cut at a line boundary, open code fences and ``<details>`` are
    closed so the note stays readable, and a short note says where the rest is. The
    marker is always kept: without it the next run would post a second comment.
    """
    head = f"{marker}\n"
    if len(head) + len(body) <= limit:
        return head + body
    budget = limit - len(head) - len(_TRUNCATION_NOTE)
    if budget <= 0:
        return (head + _TRUNCATION_NOTE)[:limit]
    cut = _cut_at_line(body, budget)
    closers = _closers(cut)
    while cut and len(cut) + len(closers) > budget:
        cut = cut[: max(budget - len(closers), 0)]
        closers = _closers(cut)
    return head + cut + closers + _TRUNCATION_NOTE


def upsert_comment(
    body: str,
    *,
    api_url: str,
    repository: str,
    issue_number: int,
    token: str,
    marker: str = MARKER,
    timeout_s: float = 20,
    deadline_s: float = DEFAULT_DEADLINE_S,
    retries: int = 3,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    fallback_login: str = DEFAULT_BOT_LOGIN,
) -> CommentOutcome:
    """Create or update our sticky comment on ``repository``'s issue or PR ``issue_number``.

    ``api_url`` is ``GITHUB_API_URL`` (``https://api.github.com``, or
    ``https://HOST/api/v3`` on GitHub Enterprise Server). ``retries`` extra attempts
    are made on 5xx, 429 and network errors, waiting ``backoff_s * 2**attempt`` or
    what ``Retry-After`` asks (through ``sleep``, injectable for tests).
    ``fallback_login`` is the author to look for when the token cannot read ``/user``
    (set it to ``"my-app[bot]"`` for a GitHub App installation token).

    ``deadline_s`` bounds the whole exchange, retries and slow answers included;
    ``timeout_s`` is per read. The exchange runs in a thread the caller waits for; the
    wait is where a signal handler can interrupt.

    Never raises (but for what a signal handler raises); never puts ``token`` in the outcome.
    """

    def finish(action: Action, message: str, url: str | None = None) -> CommentOutcome:
        return CommentOutcome(action, _redact(message, token), url)

    problem = _argument_problem(api_url, repository, issue_number, marker)
    if problem:
        return finish("failed", f"sticky comment not posted: {problem}")
    if not token:
        return finish(
            "skipped", "no GitHub token, so no PR comment; results are in the job summary"
        )
    deadline = Deadline(deadline_s, sleep)
    client = GitHubClient(api_url, token, timeout_s, max(retries, 0), backoff_s, deadline)
    target = _Target(repository, issue_number, marker, fallback_login)
    outcome = _within_deadline(lambda: _exchange(client, body, target), deadline)
    if outcome is None:
        return finish(
            "failed",
            f"sticky comment on #{issue_number} not written: the GitHub API did not finish "
            f"within {deadline_s:g} s (the publish deadline)",
        )
    return finish(outcome.action, outcome.message, outcome.comment_url)


def _within_deadline(
    exchange: Callable[[], CommentOutcome], deadline: Deadline
) -> CommentOutcome | None:
    """The exchange's outcome, or None when the deadline passed (or a signal ended the wait)."""
    outcomes: list[CommentOutcome] = []

    def run() -> None:
        with contextlib.suppress(OutOfTimeError):  # the caller says it, with the deadline
            outcomes.append(exchange())

    worker = threading.Thread(target=run, name="tflite-gate-comment", daemon=True)
    worker.start()
    try:
        worker.join(timeout=deadline.left())
    finally:
        if worker.is_alive():  # out of time, or a signal: nothing more goes to the API
            deadline.stop()
    return outcomes[0] if outcomes else None


@dataclass(frozen=True)
class _Target:
    """Which comment: the issue, the marker that identifies ours, and who we may be."""

    repository: str
    issue_number: int
    marker: str
    fallback_login: str

    @property
    def repo_path(self) -> str:
        owner, _, name = self.repository.partition("/")
        return f"/repos/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}"


def _exchange(client: GitHubClient, body: str, target: _Target) -> CommentOutcome:
    """The find-then-write exchange with the API, every failure an outcome."""
    number = target.issue_number
    try:
        with client:
            action, url = _upsert(client, compose_body(body, target.marker), target)
    except HttpError as exc:
        if exc.status in _PERMISSION_STATUSES:
            return CommentOutcome("skipped", _permission_message(exc, number))
        return CommentOutcome("failed", f"sticky comment on #{number} failed: {exc}")
    except (TransientError, ProtocolError) as exc:
        return CommentOutcome("failed", f"sticky comment on #{number} failed: {exc}")
    except OutOfTimeError:
        raise
    except Exception as exc:  # a reporter must never take the gate down
        message = f"sticky comment on #{number} failed: {type(exc).__name__}: {exc}"
        return CommentOutcome("failed", message)
    where = f": {url}" if url else ""
    return CommentOutcome(action, f"{action} sticky comment on #{number}{where}", url)


# --- the procedure ----------------------------------------------------------------------


def _upsert(client: GitHubClient, full_body: str, target: _Target) -> tuple[Action, str | None]:
    """Find-then-write, retried as a whole: a POST that timed out may still have created
    the comment, so a retry looks again before writing instead of re-posting blindly."""
    login = _token_login(client, target.fallback_login)
    comments = f"{target.repo_path}/issues/{target.issue_number}/comments"
    attempts = client.retries + 1
    for attempt in range(attempts):
        existing = _find_own_comment(
            _iter_comments(client, client.url(f"{comments}?per_page=100")), target.marker, login
        )
        try:
            if existing is None:
                created = client.request("POST", client.url(comments), full_body)
                return "created", _html_url(created)
            url = client.url(f"{target.repo_path}/issues/comments/{existing['id']}")
            return "updated", _html_url(client.request("PATCH", url, full_body))
        except TransientError:
            if attempt + 1 == attempts:
                raise
            client.pause(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _token_login(client: GitHubClient, fallback_login: str) -> str:
    """The token's user, or ``fallback_login`` for installation tokens that cannot ask."""
    try:
        data = client.request("GET", client.url("/user")).data
    except HttpError as exc:
        if exc.status in _PERMISSION_STATUSES:
            return fallback_login
        raise
    login = data.get("login") if isinstance(data, dict) else None
    return login if isinstance(login, str) and login else fallback_login


def _iter_comments(client: GitHubClient, first_url: str) -> Iterator[dict[str, Any]]:
    """Every comment of the issue, page by page along ``rel="next"`` links."""
    url: str | None = first_url
    seen: set[str] = set()
    while url is not None:
        if url in seen or len(seen) >= _MAX_PAGES:
            raise ProtocolError("comment pagination does not end; gave up")
        seen.add(url)
        response = client.request("GET", url)
        if not isinstance(response.data, list):
            raise ProtocolError("listing comments did not return a JSON list")
        yield from (item for item in response.data if isinstance(item, dict))
        url = response.next_url


def _find_own_comment(
    comments: Iterable[dict[str, Any]], marker: str, login: str
) -> dict[str, Any] | None:
    """The most recent comment with the marker written by ``login``; others are ignored."""
    found = None
    for comment in comments:
        text = comment.get("body")
        user = comment.get("user")
        author = user.get("login") if isinstance(user, dict) else None
        if (
            isinstance(text, str)
            and marker in text
            and isinstance(author, str)
            and author.lower() == login.lower()
            and isinstance(comment.get("id"), int)
        ):
            found = comment
    return found


def _html_url(response: Response) -> str | None:
    url = response.data.get("html_url") if isinstance(response.data, dict) else None
    return url if isinstance(url, str) else None


# --- small helpers ----------------------------------------------------------------------


def _argument_problem(api_url: str, repository: str, issue_number: int, marker: str) -> str:
    """Why the arguments cannot work, or "" (checked before any network traffic)."""
    parts = urllib.parse.urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"api_url {api_url!r} is not an http(s) URL"
    owner, _, name = repository.partition("/")
    if not owner or not name or "/" in name:
        return f"repository {repository!r} is not 'owner/name'"
    if isinstance(issue_number, bool) or not isinstance(issue_number, int) or issue_number < 1:
        return f"issue number {issue_number!r} is not a positive integer"
    if not marker.strip() or len(marker) > 1000:
        return "the marker must be a short, non-empty string"
    return ""


def _permission_message(exc: HttpError, issue_number: int) -> str:
    return (
        f"no permission to comment on #{issue_number} (HTTP {exc.status} on {exc.method}: "
        f"{exc.detail}) - fork pull request or missing `pull-requests: write`; "
        "results are in the job summary and annotations"
    )


def _redact(message: str, token: str) -> str:
    """One line, bounded, and never the token (GitHub could echo it back in an error)."""
    if token:
        message = message.replace(token, "***")
    line = " ".join(message.split())
    if len(line) > _MAX_MESSAGE_CHARS:
        line = line[: _MAX_MESSAGE_CHARS - 3] + "..."
    return line


def _cut_at_line(text: str, budget: int) -> str:
    cut = text[:budget]
    newline = cut.rfind("\n")
    return cut[:newline] if newline > budget // 2 else cut


def _closers(text: str) -> str:
    """Close what a cut left open, so the truncation note does not land inside it."""
    closing = ""
    if len(re.findall(r"^\s*```", text, flags=re.MULTILINE)) % 2:
        closing += "\n```"
    open_details = len(re.findall(r"<details\b", text)) - len(re.findall(r"</details>", text))
    closing += "\n</details>" * max(open_details, 0)
    return closing

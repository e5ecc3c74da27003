"""The sticky pull-request comment: one comment per pull request (and key), edited in place.

Why a sticky comment: a gate that posts a new comment on every push buries the
conversation; one comment that always shows the latest verdict does not.

Why stdlib `urllib` and not an HTTP library: the gate must stay a thin install in the
Docker action, and four REST endpoints do not justify a dependency.

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
``api_url``. A pagination link or a redirect to another origin is refused, because
urllib would otherwise forward the ``Authorization`` header to it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from tflite_gate import __version__
from tflite_gate.support.workspace_files import read_regular_bytes

MARKER = "<!-- tflite-gate:sticky-comment -->"
"""Hidden HTML comment that identifies our comment. See `marker_for` for keyed markers."""

MAX_BODY_CHARS = 65_536
MAX_EVENT_BYTES = 64 << 20  # GitHub's webhook payloads are at most 25 MB
DEFAULT_DEADLINE_S = 30.0  # the whole comment exchange, retries included
"""GitHub rejects longer comment bodies with 422 ("body is too long")."""

DEFAULT_BOT_LOGIN = "github-actions[bot]"
"""Author of comments written with the default `GITHUB_TOKEN`, as the REST API spells it."""

API_VERSION = "2022-11-28"

_PERMISSION_STATUSES = frozenset({401, 403, 404})
_MAX_PAGES = 200  # 20 000 comments: far beyond any real pull request; stops a Link loop.
_MAX_MESSAGE_CHARS = 300
_TRUNCATION_NOTE = (
    "\n\n---\n**Truncated:** this comment reached GitHub's limit of 65 536 characters. "
    "The full results are in the job summary and the JSON report.\n"
)
_PULL_REQUEST_EVENTS = frozenset(
    {"pull_request", "pull_request_target", "pull_request_review", "pull_request_review_comment"}
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
    opener: urllib.request.OpenerDirector | None = None,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    fallback_login: str = DEFAULT_BOT_LOGIN,
) -> CommentOutcome:
    """Create or update our sticky comment on ``repository``'s issue or PR ``issue_number``.

    ``api_url`` is ``GITHUB_API_URL`` (``https://api.github.com``, or
    ``https://HOST/api/v3`` on GitHub Enterprise Server). ``retries`` extra attempts
    are made on 5xx, 429 and network errors, waiting ``backoff_s * 2**attempt``
    (through ``sleep``, injectable for tests). ``opener`` replaces the default urllib
    opener, which refuses cross-origin redirects; a custom one must do the same.
    ``fallback_login`` is the author to look for when the token cannot read ``/user``
    (set it to ``"my-app[bot]"`` for a GitHub App installation token).

    ``deadline_s`` bounds the whole exchange, retries and slow answers included:
    ``timeout_s`` is urllib's, per read, so an API that sends its answer a byte at a
    time would otherwise hold the step for as long as it likes. The exchange runs in
    a thread the caller waits for; the wait is where a signal handler can interrupt.

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
    deadline = time.monotonic() + deadline_s
    client = _Client(api_url, token, opener, timeout_s, max(retries, 0), backoff_s, sleep, deadline)
    outcomes: list[CommentOutcome] = []

    def exchange() -> None:
        with contextlib.suppress(_OutOfTimeError):  # said below, with the deadline
            outcomes.append(
                _exchange(client, body, repository, issue_number, marker, fallback_login)
            )

    worker = threading.Thread(target=exchange, name="tflite-gate-comment", daemon=True)
    worker.start()
    try:
        worker.join(timeout=max(deadline - time.monotonic(), 0.0))
    finally:
        if worker.is_alive():  # out of time, or a signal: nothing more goes to the API
            client.stop()
    if not outcomes:
        return finish(
            "failed",
            f"sticky comment on #{issue_number} not written: the GitHub API did not finish "
            f"within {deadline_s:g} s (the publish deadline)",
        )
    [outcome] = outcomes
    return finish(outcome.action, outcome.message, outcome.comment_url)


def _exchange(
    client: _Client,
    body: str,
    repository: str,
    issue_number: int,
    marker: str,
    fallback_login: str,
) -> CommentOutcome:
    """The find-then-write exchange with the API, every failure an outcome."""

    def finish(action: Action, message: str, url: str | None = None) -> CommentOutcome:
        return CommentOutcome(action, message, url)

    try:
        action, url = _upsert(
            client, compose_body(body, marker), repository, issue_number, marker, fallback_login
        )
    except _HttpError as exc:
        if exc.status in _PERMISSION_STATUSES:
            return finish("skipped", _permission_message(exc, issue_number))
        return finish("failed", f"sticky comment on #{issue_number} failed: {exc}")
    except (_TransientError, _ProtocolError) as exc:
        return finish("failed", f"sticky comment on #{issue_number} failed: {exc}")
    except _OutOfTimeError:
        raise
    except Exception as exc:  # a reporter must never take the gate down
        return finish(
            "failed", f"sticky comment on #{issue_number} failed: {type(exc).__name__}: {exc}"
        )
    where = f": {url}" if url else ""
    return finish(action, f"{action} sticky comment on #{issue_number}{where}", url)


# --- the procedure ----------------------------------------------------------------------


def _upsert(
    client: _Client,
    full_body: str,
    repository: str,
    issue_number: int,
    marker: str,
    fallback_login: str,
) -> tuple[Action, str | None]:
    """Find-then-write, retried as a whole: a POST that timed out may still have created
    the comment, so a retry looks again before writing instead of re-posting blindly."""
    owner, _, name = repository.partition("/")
    repo_path = f"/repos/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(name, safe='')}"
    login = _token_login(client, fallback_login)
    list_url = client.url(f"{repo_path}/issues/{issue_number}/comments?per_page=100")
    attempts = client.retries + 1
    for attempt in range(attempts):
        existing = _find_own_comment(_iter_comments(client, list_url), marker, login)
        try:
            if existing is None:
                url = client.url(f"{repo_path}/issues/{issue_number}/comments")
                return "created", _html_url(client.request("POST", url, full_body, retry=False))
            url = client.url(f"{repo_path}/issues/comments/{existing['id']}")
            return "updated", _html_url(client.request("PATCH", url, full_body, retry=False))
        except _TransientError:
            if attempt + 1 == attempts:
                raise
            client.pause(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _token_login(client: _Client, fallback_login: str) -> str:
    """The token's user, or ``fallback_login`` for installation tokens that cannot ask."""
    try:
        data = client.request("GET", client.url("/user")).data
    except _HttpError as exc:
        if exc.status in _PERMISSION_STATUSES:
            return fallback_login
        raise
    login = data.get("login") if isinstance(data, dict) else None
    return login if isinstance(login, str) and login else fallback_login


def _iter_comments(client: _Client, first_url: str) -> Iterator[dict[str, Any]]:
    """Every comment of the issue, page by page along ``rel="next"`` links."""
    url: str | None = first_url
    seen: set[str] = set()
    while url is not None:
        if url in seen or len(seen) >= _MAX_PAGES:
            raise _ProtocolError("comment pagination does not end; gave up")
        seen.add(url)
        response = client.request("GET", url)
        if not isinstance(response.data, list):
            raise _ProtocolError("listing comments did not return a JSON list")
        yield from (item for item in response.data if isinstance(item, dict))
        url = _next_link(response.link, url)


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


def _html_url(response: _Response) -> str | None:
    url = response.data.get("html_url") if isinstance(response.data, dict) else None
    return url if isinstance(url, str) else None


# --- HTTP -------------------------------------------------------------------------------


class _HttpError(Exception):
    """A 4xx (or refused 3xx) answer: final, not retried."""

    def __init__(self, status: int, method: str, detail: str) -> None:
        super().__init__(f"HTTP {status} on {method}: {detail}")
        self.status = status
        self.method = method
        self.detail = detail


class _TransientError(Exception):
    """5xx, 429 or a network error: worth another attempt."""


class _ProtocolError(Exception):
    """An answer we cannot use (not JSON, a link to another host, a pagination loop)."""


class _OutOfTimeError(Exception):
    """The publish deadline passed: no further request is made."""


@dataclass(frozen=True)
class _Response:
    data: Any
    link: str | None


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only for GET and only within the API's origin.

    urllib copies every header, ``Authorization`` included, onto the redirected
    request; following a redirect to another host would hand it our token.
    """

    def __init__(self, origin: tuple[str, str]) -> None:
        super().__init__()
        self._origin = origin

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urllib.parse.urljoin(req.full_url, newurl)
        if req.get_method() != "GET" or _origin(target) != self._origin:
            raise urllib.error.HTTPError(
                req.full_url, code, f"redirect to {_origin_text(target)} refused", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Client:
    """Minimal GitHub REST client: auth headers, JSON, retries, one allowed origin."""

    def __init__(
        self,
        api_url: str,
        token: str,
        opener: urllib.request.OpenerDirector | None,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        sleep: Callable[[float], None],
        deadline: float,
    ) -> None:
        self._deadline = deadline
        self._stopped = threading.Event()
        self._base = api_url.rstrip("/")
        self._origin = _origin(self._base)
        self._token = token
        self._opener = opener or urllib.request.build_opener(_SameOriginRedirects(self._origin))
        self._timeout_s = timeout_s
        self.retries = retries
        self._backoff_s = backoff_s
        self._sleep = sleep

    def url(self, path: str) -> str:
        return self._base + path

    def stop(self) -> None:
        """No further request (the caller stopped waiting for this exchange)."""
        self._stopped.set()

    def _remaining(self) -> float:
        """Seconds left before the deadline; `_OutOfTimeError` when none are."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0 or self._stopped.is_set():
            raise _OutOfTimeError("the publish deadline passed")
        return remaining

    def pause(self, attempt: int) -> None:
        self._sleep(min(self._backoff_s * 2**attempt, 30.0, self._remaining()))

    def request(
        self, method: str, url: str, body: str | None = None, *, retry: bool = True
    ) -> _Response:
        """One API call; idempotent ones are retried on transient errors."""
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                return self._once(method, url, body)
            except _TransientError:
                if attempt + 1 == attempts:
                    raise
                self.pause(attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, url: str, body: str | None) -> _Response:
        if _origin(url) != self._origin:
            raise _ProtocolError(
                f"refused to send the token to {_origin_text(url)} (not the API host)"
            )
        data = None if body is None else json.dumps({"body": body}).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers())
        if data is not None:
            request.add_header("Content-Type", "application/json; charset=utf-8")
        timeout = min(self._timeout_s, self._remaining())
        try:
            with self._opener.open(request, timeout=timeout) as response:
                raw: bytes = response.read()
                link = response.headers.get("Link")
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, method) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _TransientError(f"network error on {method}: {_network_reason(exc)}") from None
        return _Response(_parse_json(raw), link)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"tflite-gate/{__version__}",
        }


def _http_error(exc: urllib.error.HTTPError, method: str) -> Exception:
    """Map an error answer to a retryable or a final error, with GitHub's message."""
    try:
        raw = exc.read()
    except (OSError, http.client.HTTPException):
        raw = b""
    finally:
        exc.close()
    detail = _github_message(raw) or str(exc.reason) or "no message"
    if exc.code >= 500 or exc.code == 429:
        return _TransientError(f"HTTP {exc.code} on {method}: {detail}")
    return _HttpError(exc.code, method, detail)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _ProtocolError("GitHub answered with something that is not JSON") from None


def _github_message(raw: bytes) -> str:
    """GitHub's ``message``, plus the ``errors[].message`` details of a 422."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [str(data["message"])] if data.get("message") else []
    errors = data.get("errors")
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, dict) and error.get("message"):
                parts.append(str(error["message"]))
            elif isinstance(error, str):
                parts.append(error)
    return ": ".join(parts)


def _network_reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def _next_link(header: str | None, current_url: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, resolved against the current URL."""
    if not header:
        return None
    for match in re.finditer(r"<([^>]*)>((?:\s*;\s*[^;,]*)*)", header):
        target, params = str(match.group(1)), str(match.group(2))
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "rel" and "next" in value.strip().strip('"').split():
                return urllib.parse.urljoin(current_url, target.strip())
    return None


def _origin(url: str) -> tuple[str, str]:
    """(scheme, host:port) with default ports made explicit, for same-origin checks."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme, 0)
    except ValueError:
        port = -1
    return scheme, f"{(parts.hostname or '').lower()}:{port}"


def _origin_text(url: str) -> str:
    scheme, host = _origin(url)
    return f"{scheme}://{host}"


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


def _permission_message(exc: _HttpError, issue_number: int) -> str:
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


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


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

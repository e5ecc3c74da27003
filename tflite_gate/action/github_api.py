"""A GitHub REST client on `requests`, for the sticky comment: one origin, one deadline.

Why `requests` (on urllib3's `Retry`): it is in the Action's image already (TensorFlow
depends on it), and it brings what a hand-written urllib client had to carry itself:
a connection pool, retries of idempotent requests on 5xx, 429 and network errors
that honour `Retry-After`, and `Link` header parsing. What stays ours is what no
library decides for us: the one origin the token is sent to, and the one deadline.

Security: the token is only ever sent to the origin (scheme, host, port) of the API
URL. A pagination link or a redirect to another origin is refused, not followed, and
no `.netrc` entry replaces the token. Certificates are checked against what the
system trusts (`SSL_CERT_FILE` included, as Python's own `ssl` does) as well as
certifi's bundle.

Time: requests' timeouts are per read, so an API that sends its answer a byte at a
time would hold the step for as long as it likes. The caller runs the exchange in a
thread it waits for until a `Deadline`; every request and every wait between retries
(backoff or `Retry-After`) ends inside that deadline or is not started.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from tflite_gate import __version__

API_VERSION = "2022-11-28"
MAX_WAIT_S = 30.0
"""The longest single wait between two attempts."""

_RETRIED_STATUSES = frozenset({429, *range(500, 600)})


class HttpError(Exception):
    """A 4xx (or refused 3xx) answer: final, not retried."""

    def __init__(self, status: int, method: str, detail: str) -> None:
        super().__init__(f"HTTP {status} on {method}: {detail}")
        self.status = status
        self.method = method
        self.detail = detail


class TransientError(Exception):
    """5xx, 429 or a network error, after the retries: worth trying the whole again."""


class ProtocolError(Exception):
    """An answer we cannot use (not JSON, a link to another host, a pagination loop)."""


class OutOfTimeError(Exception):
    """The publish deadline passed, or would pass during a wait: no further request is made."""


@dataclass(frozen=True)
class Response:
    """An answer's JSON, and where the next page of a listing is."""

    data: Any
    next_url: str | None  # the ``Link: rel="next"`` target, resolved


class Deadline:
    """The one deadline of an exchange; every wait and every request stays inside it."""

    def __init__(self, seconds: float, sleep: Callable[[float], None]) -> None:
        self._end = time.monotonic() + seconds
        self._stopped = threading.Event()
        self._sleep = sleep

    def left(self) -> float:
        """Seconds left (0 when none are): how long the caller may still wait."""
        return max(self._end - time.monotonic(), 0.0)

    def stop(self) -> None:
        """No further request (the caller stopped waiting for this exchange)."""
        self._stopped.set()

    def remaining(self) -> float:
        """Seconds left before the deadline; `OutOfTimeError` when none are."""
        remaining = self._end - time.monotonic()
        if remaining <= 0 or self._stopped.is_set():
            raise OutOfTimeError("the publish deadline passed")
        return remaining

    def wait(self, seconds: float) -> None:
        """Wait before another attempt; one that could not start before the deadline is not made."""
        if seconds >= self.remaining():
            raise OutOfTimeError("the publish deadline passes before the next attempt")
        self._sleep(seconds)


def backoff(backoff_s: float, attempt: int) -> float:
    """The wait before retry `attempt + 1`: doubling from `backoff_s`, at most 30 s."""
    return float(min(backoff_s * 2**attempt, MAX_WAIT_S))


class _DeadlineRetry(Retry):
    """urllib3's `Retry`, whose waits (backoff and `Retry-After`) stay inside the deadline.

    urllib3 decides what is retried (idempotent methods on 429/5xx, connection errors
    before anything was sent); the waits go through the deadline, so they are cut
    short, and injectable for tests.
    """

    def __init__(self, *args: Any, deadline: Deadline | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def new(self, **kw: Any) -> _DeadlineRetry:
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def get_backoff_time(self) -> float:
        return backoff(self.backoff_factor, max(len(self.history) - 1, 0))

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        assert self.deadline is not None
        retry_after = None
        if response is not None and self.respect_retry_after_header:
            with contextlib.suppress(InvalidHeader):
                retry_after = self.get_retry_after(response)
        self.deadline.wait(retry_after if retry_after is not None else self.get_backoff_time())


class _SystemTrustAdapter(HTTPAdapter):
    """Certificates the system trusts (and `SSL_CERT_FILE`), besides certifi's bundle.

    A GitHub Enterprise Server behind a company CA is trusted wherever Python's own
    `ssl` trusts it, as with the standard library's client this one replaced.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("ssl_context", ssl.create_default_context())
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs.setdefault("ssl_context", ssl.create_default_context())
        return super().proxy_manager_for(proxy, **proxy_kwargs)


class _BearerToken(requests.auth.AuthBase):
    """The token as a session's auth: set so, no `.netrc` entry takes its place."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class _OneOriginSession(requests.Session):
    """A session that follows a redirect only for GET and only within the API's origin.

    requests drops the token on a redirect to another host, but then sends the
    request there all the same; we refuse instead (the answer could not be ours).
    """

    def __init__(self, allowed: tuple[str, str]) -> None:
        super().__init__()
        self.allowed = allowed

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is None:
            return None
        method = str(resp.request.method)
        absolute = urllib.parse.urljoin(str(resp.url), target)
        if method != "GET" or origin(absolute) != self.allowed:
            resp.close()
            raise HttpError(
                resp.status_code, method, f"redirect to {origin_text(absolute)} refused"
            )
        return target

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        """Same origin only (above): the token stays, and nothing replaces it."""


class GitHubClient:
    """A GitHub REST session: auth headers, JSON, retries, one allowed origin, one deadline."""

    def __init__(
        self,
        api_url: str,
        token: str,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        deadline: Deadline,
    ) -> None:
        self._base = api_url.rstrip("/")
        self._origin = origin(self._base)
        self._timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._deadline = deadline
        self.retries = retries
        self._session = _session(self._origin, token, retries, backoff_s, deadline)

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._session.close()

    def url(self, path: str) -> str:
        """The API's URL of `path` (`/user`), under an Enterprise Server's `/api/v3` too."""
        return self._base + path

    def pause(self, attempt: int) -> None:
        """Wait before trying the find-then-write again."""
        self._deadline.wait(backoff(self._backoff_s, attempt))

    def request(self, method: str, url: str, body: str | None = None) -> Response:
        """One API call (urllib3 retries the idempotent ones); errors as our own exceptions."""
        if origin(url) != self._origin:
            raise ProtocolError(
                f"refused to send the token to {origin_text(url)} (not the API host)"
            )
        timeout = min(self._timeout_s, self._deadline.remaining())
        payload = None if body is None else {"body": body}
        try:
            response = self._session.request(method, url, json=payload, timeout=timeout)
        except requests.RequestException as exc:
            raise TransientError(f"network error on {method}: {_network_reason(exc)}") from None
        with response:
            if response.status_code >= 300:
                raise _http_error(response, method)
            next_url = response.links.get("next", {}).get("url")
            return Response(
                _parse_json(response.content),
                urllib.parse.urljoin(url, next_url.strip()) if next_url else None,
            )


def _session(
    allowed: tuple[str, str], token: str, retries: int, backoff_s: float, deadline: Deadline
) -> requests.Session:
    """The session every request of one exchange goes through."""
    session = _OneOriginSession(allowed)
    session.auth = _BearerToken(token)
    session.headers.update(
        {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"tflite-gate/{__version__}",
        }
    )
    retry = _DeadlineRetry(
        total=retries,
        status_forcelist=_RETRIED_STATUSES,
        allowed_methods=frozenset({"GET"}),  # a POST may have been applied: looked at again
        backoff_factor=backoff_s,
        backoff_max=MAX_WAIT_S,
        raise_on_status=False,
        respect_retry_after_header=True,
        deadline=deadline,
    )
    adapter = _SystemTrustAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _http_error(response: requests.Response, method: str) -> Exception:
    """Map an error answer to a retryable or a final error, with GitHub's message."""
    detail = _github_message(response.content) or response.reason or "no message"
    if response.status_code >= 500 or response.status_code == 429:
        return TransientError(f"HTTP {response.status_code} on {method}: {detail}")
    return HttpError(response.status_code, method, detail)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("GitHub answered with something that is not JSON") from None


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
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def origin(url: str) -> tuple[str, str]:
    """(scheme, host:port) with default ports made explicit, for same-origin checks."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme, 0)
    except ValueError:
        port = -1
    return scheme, f"{(parts.hostname or '').lower()}:{port}"


def origin_text(url: str) -> str:
    """The origin as a message shows it: `https://api.github.com:443`."""
    scheme, host = origin(url)
    return f"{scheme}://{host}"

"""A fake GitHub REST API on 127.0.0.1 for the comment client and the Action entrypoint.

It implements the four endpoints the gate uses (``GET /user``, list, create and update
issue comments) with GitHub's status codes, JSON bodies and ``Link`` pagination (pages
of 2 to exercise pagination with few comments), records every request, and can be told
to fail the ways GitHub does: read-only fork tokens, installation tokens that cannot
read ``/user``, 5xx, 422, and links or redirects to another host.
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tflite_gate.action.comment import MAX_BODY_CHARS

TOKEN = "ghs_SuperSecretToken0123456789abcdef"
REPO = "octo-org/models"
PR = 7
PAT_LOGIN = "octocat"

# --- the fake GitHub ---------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    body: Any


@dataclass
class FakeGitHub:
    """State and failure switches of one fake API host; tests flip the switches."""

    base_url: str = ""
    page_size: int = 2
    user_status: int = 200  # 403/404: an installation token (GITHUB_TOKEN) asking /user
    token_login: str = PAT_LOGIN  # who the token writes as
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    forbid_all: bool = False
    forbid_writes: bool = False
    fail_first: int = 0  # 500 on the first N requests
    fail_first_status: int = 500
    retry_after: str | None = None  # the failing answers' Retry-After header
    post_creates_then_fails: int = 0  # the first N POSTs create the comment, then answer 502
    write_error: tuple[int, dict[str, Any]] | None = None
    next_link_base: str | None = None  # put another host into Link: rel="next"
    redirect_list_to: str | None = None  # answer the list with a 307 to this URL
    delay_first_s: float = 0.0
    stall_s: float = 0.0  # every answer waits this long before its first byte
    trickle_s: float = 0.0  # every answer's body comes one byte per this many seconds
    _next_id: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_comment(self, login: str, body: str) -> int:
        with self._lock:
            self._next_id += 1
            comment = {
                "id": self._next_id,
                "node_id": f"IC_{self._next_id}",
                "url": f"{self.base_url}/repos/{REPO}/issues/comments/{self._next_id}",
                "html_url": f"https://github.example/{REPO}/pull/{PR}#issuecomment-{self._next_id}",
                "body": body,
                "user": {"login": login, "id": 1, "type": "Bot" if "[bot]" in login else "User"},
                "created_at": "2025-01-01T00:00:00Z",
                "updated_at": "2025-01-01T00:00:00Z",
            }
            self.comments.append(comment)
            return self._next_id

    def comment(self, comment_id: int) -> dict[str, Any]:
        return next(c for c in self.comments if c["id"] == comment_id)

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method in ("POST", "PATCH")]


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    # The request path, with GitHub Enterprise's /api/v3 prefix accepted too.
    def _serve(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with fake._lock:
            headers = {name.lower(): value for name, value in self.headers.items()}
            fake.requests.append(Recorded(method, self.path, headers, body))
            index = len(fake.requests)
        if index == 1 and fake.delay_first_s:
            time.sleep(fake.delay_first_s)
        time.sleep(fake.stall_s)
        if index <= fake.fail_first:
            wait = {"Retry-After": fake.retry_after} if fake.retry_after is not None else None
            return self._json(fake.fail_first_status, {"message": "Server Error"}, wait)
        if fake.forbid_all:
            return self._json(403, _forbidden())
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path.removeprefix("/api/v3")
        query = urllib.parse.parse_qs(parts.query)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json(401, {"message": "Bad credentials"})
        if method == "GET" and path == "/user":
            return self._user()
        list_path = f"/repos/{REPO}/issues/{PR}/comments"
        if method == "GET" and path == list_path:
            return self._list(parts.path, query)
        if method == "POST" and path == list_path:
            return self._create(body)
        if method == "PATCH" and path.startswith(f"/repos/{REPO}/issues/comments/"):
            return self._update(int(path.rsplit("/", 1)[1]), body)
        return self._json(404, {"message": "Not Found"})

    def _user(self) -> None:
        fake = self.server.fake
        if fake.user_status != 200:
            return self._json(fake.user_status, _forbidden())
        return self._json(200, {"login": fake.token_login, "id": 583231, "type": "User"})

    def _list(self, raw_path: str, query: dict[str, list[str]]) -> None:
        fake = self.server.fake
        if fake.redirect_list_to:  # one-shot, like a renamed repository's old path
            location, fake.redirect_list_to = fake.redirect_list_to, None
            self.send_response(307)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        per_page = min(int(query.get("per_page", ["30"])[0]), 100, fake.page_size)
        page = int(query.get("page", ["1"])[0])
        items = fake.comments[(page - 1) * per_page : page * per_page]
        pages = max(1, -(-len(fake.comments) // per_page))
        links = []
        base = fake.next_link_base or fake.base_url
        if page < pages:
            links.append(f'<{base}{raw_path}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(
                f'<{fake.base_url}{raw_path}?per_page={per_page}&page={pages}>; rel="last"'
            )
        return self._json(200, items, {"Link": ", ".join(links)} if links else None)

    def _create(self, body: Any) -> None:
        fake = self.server.fake
        if self._write_refusal(body):
            return None
        comment_id = fake.add_comment(fake.token_login, body["body"])
        if fake.post_creates_then_fails > 0:
            fake.post_creates_then_fails -= 1
            return self._json(502, {"message": "Server Error"})
        return self._json(201, fake.comment(comment_id))

    def _update(self, comment_id: int, body: Any) -> None:
        fake = self.server.fake
        if self._write_refusal(body):
            return None
        try:
            comment = fake.comment(comment_id)
        except StopIteration:
            return self._json(404, {"message": "Not Found"})
        if comment["user"]["login"] != fake.token_login:
            return self._json(403, {"message": "Must have admin rights to Repository."})
        comment["body"] = body["body"]
        return self._json(200, comment)

    def _write_refusal(self, body: Any) -> bool:
        """Answer with GitHub's refusal of this write, if any; True when it did."""
        fake = self.server.fake
        if fake.forbid_writes:
            self._json(403, _forbidden())
            return True
        if fake.write_error:
            self._json(*fake.write_error)
            return True
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            self._json(422, {"message": "Invalid request.", "errors": ['"body" wasn\'t supplied.']})
            return True
        if len(body["body"]) > MAX_BODY_CHARS:
            self._json(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "IssueComment",
                            "code": "custom",
                            "field": "body",
                            "message": "body is too long (maximum is 65536 characters)",
                        }
                    ],
                },
            )
            return True
        return False

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        fake = self.server.fake
        if not fake.trickle_s:
            self.wfile.write(raw)
            return
        for byte in raw:  # each byte its own read: a per-read timeout never fires
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(fake.trickle_s)


def _forbidden() -> dict[str, str]:
    return {
        "message": "Resource not accessible by integration",
        "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
        "status": "403",
    }


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a deadline) breaks the pipe: that is the test, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            scheme = "https"
        self.fake = FakeGitHub(base_url=f"{scheme}://127.0.0.1:{self.server_address[1]}")


def serve(tls: ssl.SSLContext | None = None) -> Iterator[FakeGitHub]:
    """The fake on a free port of 127.0.0.1 (over TLS with `tls`, a server context)."""
    server = FakeServer(tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

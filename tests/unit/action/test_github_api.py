"""The GitHub REST client on requests: retries inside the one deadline, one origin, trust.

Against the real local HTTP server of `tests/fake_github.py`; the waits between
retries go through an injected sleep (or a real one where the deadline is the point).
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_github import PR, REPO, TOKEN, FakeGitHub, serve
from tflite_gate.action.comment import CommentOutcome, upsert_comment
from tflite_gate.action.github_api import (
    MAX_WAIT_S,
    Deadline,
    GitHubClient,
    OutOfTimeError,
    ProtocolError,
    backoff,
    origin,
)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from serve()


def _upsert(fake: FakeGitHub, **kwargs: Any) -> CommentOutcome:
    options: dict[str, Any] = {
        "api_url": fake.base_url,
        "repository": REPO,
        "issue_number": PR,
        "token": TOKEN,
        "timeout_s": 5,
    } | kwargs
    return upsert_comment("## tflite-gate: pass", **options)


def test_backoff_doubles_from_the_first_retry_and_stops_at_thirty_seconds() -> None:
    assert [backoff(0.5, attempt) for attempt in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(1.0, 10) == MAX_WAIT_S


def test_retry_after_is_honoured_through_the_injected_sleep(github: FakeGitHub) -> None:
    github.fail_first, github.fail_first_status, github.retry_after = 2, 429, "2"
    pauses: list[float] = []

    outcome = _upsert(github, sleep=pauses.append, backoff_s=0.1)

    assert outcome.action == "created", outcome
    assert pauses == [2, 2]  # what the API asked for, not the backoff


def test_a_retry_after_beyond_the_deadline_gives_up_at_once(github: FakeGitHub) -> None:
    github.fail_first, github.fail_first_status, github.retry_after = 1, 503, "3600"
    started = time.monotonic()

    outcome = _upsert(github, deadline_s=5.0, sleep=time.sleep)

    assert time.monotonic() - started < 2.0  # not the deadline's 5 s, let alone an hour
    assert outcome.action == "failed"
    assert "did not finish within 5 s (the publish deadline)" in outcome.message
    assert len(github.requests) == 1


def test_a_deadline_refuses_a_wait_that_would_end_past_it() -> None:
    waited: list[float] = []
    deadline = Deadline(1.0, waited.append)

    deadline.wait(0.5)
    with pytest.raises(OutOfTimeError):
        deadline.wait(5.0)
    assert waited == [0.5]
    deadline.stop()
    with pytest.raises(OutOfTimeError):
        deadline.remaining()


def test_origins_make_default_ports_explicit() -> None:
    assert origin("https://api.github.com/x") == origin("HTTPS://API.GITHUB.COM:443/y")
    assert origin("http://h/") == ("http", "h:80")
    assert origin("https://h:8443/") != origin("https://h/")


def test_the_client_sends_the_token_to_its_own_origin_only(github: FakeGitHub) -> None:
    with GitHubClient(github.base_url, TOKEN, 5, 0, 0, Deadline(10, time.sleep)) as client:
        assert client.request("GET", client.url("/user")).data["login"] == "octocat"
        with pytest.raises(ProtocolError, match="refused to send the token to http://evil:80"):
            client.request("GET", "http://evil/user")
    assert len(github.requests) == 1


def test_a_netrc_entry_never_replaces_the_token(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))

    assert _upsert(github).action == "created"
    assert {r.headers["authorization"] for r in github.requests} == {f"Bearer {TOKEN}"}


# --- trust: what the system trusts, as Python's own ssl does -------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made by openssl for this test only."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_github(certificate: tuple[Path, Path]) -> Iterator[FakeGitHub]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from serve(context)


@pytest.mark.slow  # openssl makes the certificate
def test_a_certificate_the_system_trusts_is_trusted(
    tls_github: FakeGitHub, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`SSL_CERT_FILE` is how a GitHub Enterprise Server's company CA reaches Python's ssl."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))

    outcome = _upsert(tls_github, retries=0)

    assert outcome.action == "created", outcome
    assert tls_github.base_url.startswith("https://")


@pytest.mark.slow  # openssl makes the certificate
def test_an_untrusted_certificate_fails_the_comment_only(
    tls_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert "SSL_CERT_FILE" not in os.environ

    outcome = _upsert(tls_github, retries=0)

    assert outcome.action == "failed"
    assert (
        "network error on GET" in outcome.message and "CERTIFICATE_VERIFY_FAILED" in outcome.message
    )
    assert tls_github.requests == []

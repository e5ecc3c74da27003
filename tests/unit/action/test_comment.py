"""The sticky PR comment against a real local HTTP server that speaks GitHub's REST shapes.

The fake implements the four endpoints the gate uses (``GET /user``, list, create and
update issue comments) with GitHub's status codes, JSON bodies and ``Link`` pagination
(pages of 2 to exercise pagination with few comments), records every request, and can
be told to fail the ways GitHub does: read-only fork tokens, installation tokens that
cannot read ``/user``, 5xx, 422, and links or redirects to another host.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.fake_github import PAT_LOGIN, PR, REPO, TOKEN, FakeGitHub, serve
from tflite_gate import __version__
from tflite_gate.action.comment import (
    DEFAULT_BOT_LOGIN,
    MARKER,
    MAX_BODY_CHARS,
    CommentOutcome,
    compose_body,
    marker_for,
    upsert_comment,
)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    yield from serve()


@pytest.fixture
def other_host() -> Iterator[FakeGitHub]:
    """A second server standing for a foreign host: it must never hear from us."""
    yield from serve()


def upsert(fake: FakeGitHub, body: str = "## tflite-gate: pass", **kwargs: Any) -> CommentOutcome:
    options: dict[str, Any] = {
        "api_url": fake.base_url,
        "repository": REPO,
        "issue_number": PR,
        "token": TOKEN,
        "backoff_s": 0,
        "sleep": lambda _s: None,
        "timeout_s": 5,
    } | kwargs
    return upsert_comment(body, **options)


def assert_no_token(outcome: CommentOutcome) -> None:
    assert TOKEN not in outcome.message
    assert TOKEN[4:20] not in outcome.message
    assert TOKEN not in (outcome.comment_url or "")


# --- finding and writing -----------------------------------------------------------------


def test_no_existing_comment_creates_one(github: FakeGitHub) -> None:
    outcome = upsert(github, "## verdict: pass")

    assert outcome.action == "created"
    assert outcome.comment_url and outcome.comment_url.endswith("#issuecomment-1001")
    [comment] = github.comments
    assert comment["body"] == f"{MARKER}\n## verdict: pass"
    assert [(r.method, r.path) for r in github.requests] == [
        ("GET", "/user"),
        ("GET", f"/repos/{REPO}/issues/{PR}/comments?per_page=100"),
        ("POST", f"/repos/{REPO}/issues/{PR}/comments"),
    ]
    assert github.requests[-1].body == {"body": f"{MARKER}\n## verdict: pass"}


def test_existing_comment_on_page_two_is_updated(github: FakeGitHub) -> None:
    github.add_comment("alice", "LGTM")
    github.add_comment("bob", "please add a test")
    ours = github.add_comment(PAT_LOGIN, f"{MARKER}\nold verdict")
    github.add_comment("alice", "thanks")

    outcome = upsert(github, "new verdict")

    assert outcome.action == "updated", outcome
    assert outcome.comment_url and outcome.comment_url.endswith(f"#issuecomment-{ours}")
    assert github.comment(ours)["body"] == f"{MARKER}\nnew verdict"
    assert len(github.comments) == 4
    lists = [r.path for r in github.requests if r.method == "GET" and "comments" in r.path]
    assert lists == [
        f"/repos/{REPO}/issues/{PR}/comments?per_page=100",
        f"/repos/{REPO}/issues/{PR}/comments?per_page=2&page=2",
    ]
    [write] = github.writes()
    assert (write.method, write.path) == ("PATCH", f"/repos/{REPO}/issues/comments/{ours}")


def test_second_run_updates_the_comment_the_first_run_created(github: FakeGitHub) -> None:
    first = upsert(github, "run 1")
    second = upsert(github, "run 2")

    assert (first.action, second.action) == ("created", "updated")
    assert first.comment_url == second.comment_url
    assert [c["body"] for c in github.comments] == [f"{MARKER}\nrun 2"]


def test_all_pages_are_read_and_the_most_recent_of_ours_wins(github: FakeGitHub) -> None:
    older = github.add_comment(PAT_LOGIN, f"{MARKER}\nolder")
    for n in range(5):
        github.add_comment("alice", f"comment {n}")
    newer = github.add_comment(PAT_LOGIN, f"{MARKER}\nnewer")
    github.add_comment("alice", "last word")

    assert upsert(github, "latest").action == "updated"

    assert github.comment(newer)["body"] == f"{MARKER}\nlatest"
    assert github.comment(older)["body"] == f"{MARKER}\nolder"
    assert sum(1 for r in github.requests if "comments?" in r.path) == 4  # 9 comments / 2


def test_another_users_comment_with_the_marker_is_ignored(github: FakeGitHub) -> None:
    quoted = github.add_comment("mallory", f"> {MARKER}\n> copied our verdict")

    outcome = upsert(github, "ours")

    assert outcome.action == "created"
    assert github.comment(quoted)["body"].startswith("> ")
    assert [w.method for w in github.writes()] == ["POST"]


def test_installation_token_falls_back_to_github_actions_bot(github: FakeGitHub) -> None:
    github.user_status = 403  # GITHUB_TOKEN: "Resource not accessible by integration"
    github.token_login = DEFAULT_BOT_LOGIN
    github.add_comment(PAT_LOGIN, f"{MARKER}\nsomebody ran the gate with a PAT once")
    ours = github.add_comment(DEFAULT_BOT_LOGIN, f"{MARKER}\nold")

    outcome = upsert(github, "new")

    assert outcome.action == "updated", outcome
    assert github.comment(ours)["body"] == f"{MARKER}\nnew"


@pytest.mark.parametrize("status", [401, 404])
def test_user_endpoint_refusals_all_fall_back(github: FakeGitHub, status: int) -> None:
    github.user_status = status
    github.token_login = DEFAULT_BOT_LOGIN
    ours = github.add_comment(DEFAULT_BOT_LOGIN, f"{MARKER}\nold")

    assert upsert(github, "new").action == "updated"
    assert github.comment(ours)["body"] == f"{MARKER}\nnew"


def test_fallback_login_is_configurable_for_app_tokens(github: FakeGitHub) -> None:
    github.user_status = 403
    github.token_login = "model-bot[bot]"
    ours = github.add_comment("model-bot[bot]", f"{MARKER}\nold")

    assert upsert(github, "new", fallback_login="model-bot[bot]").action == "updated"
    assert github.comment(ours)["body"] == f"{MARKER}\nnew"


def test_keyed_markers_do_not_clash(github: FakeGitHub) -> None:
    float_key, int8_key = marker_for("policy: float"), marker_for("int8/mobile")
    assert len({MARKER, float_key, int8_key}) == 3
    assert MARKER not in float_key and float_key not in int8_key and int8_key not in float_key

    assert upsert(github, "default").action == "created"
    assert upsert(github, "float", marker=float_key).action == "created"
    assert upsert(github, "int8", marker=int8_key).action == "created"
    assert upsert(github, "float again", marker=float_key).action == "updated"
    assert upsert(github, "default again").action == "updated"

    assert [c["body"] for c in github.comments] == [
        f"{MARKER}\ndefault again",
        f"{float_key}\nfloat again",
        f"{int8_key}\nint8",
    ]


def test_marker_keys_are_made_safe_for_an_html_comment() -> None:
    assert marker_for(None) == marker_for("") == MARKER
    assert marker_for("a--> <b>") == "<!-- tflite-gate:sticky-comment:a-b -->"
    assert marker_for("ci.yml/gate@main") == "<!-- tflite-gate:sticky-comment:ci.yml/gate@main -->"
    assert "--" not in marker_for("x -- y").removeprefix("<!--").removesuffix("-->")


def test_enterprise_api_url_prefix_is_kept(github: FakeGitHub) -> None:
    outcome = upsert(github, "ghe", api_url=f"{github.base_url}/api/v3/")

    assert outcome.action == "created"
    assert all(r.path.startswith("/api/v3/") for r in github.requests)


# --- headers and body limits -------------------------------------------------------------


def test_every_request_carries_auth_and_github_headers(github: FakeGitHub) -> None:
    for n in range(3):
        github.add_comment("alice", f"c{n}")
    github.add_comment(PAT_LOGIN, f"{MARKER}\nold")
    upsert(github)
    upsert(github, marker=marker_for("other"))

    assert len(github.requests) >= 8
    for request in github.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.headers["x-github-api-version"] == "2022-11-28"
        assert request.headers["user-agent"] == f"tflite-gate/{__version__}"
    for write in github.writes():
        assert write.headers["content-type"].startswith("application/json")


def test_overlong_body_is_truncated_with_the_marker_kept(github: FakeGitHub) -> None:
    body = "## verdict\n\n```\n" + "\n".join(f"line {n:06d} " + "x" * 60 for n in range(2000))

    outcome = upsert(github, body)

    assert outcome.action == "created", outcome
    [write] = github.writes()
    sent = write.body["body"]
    assert len(sent) <= MAX_BODY_CHARS
    assert sent.startswith(f"{MARKER}\n## verdict")
    assert "Truncated" in sent
    assert sent.count("```") % 2 == 0  # the open fence was closed before the note
    assert upsert(github, body).action == "updated"  # and the marker still finds it


def test_compose_body_limits() -> None:
    exact = "y" * (MAX_BODY_CHARS - len(MARKER) - 1)
    assert compose_body(exact) == f"{MARKER}\n{exact}"
    assert len(compose_body(exact)) == MAX_BODY_CHARS
    over = compose_body(exact + "y")
    assert len(over) <= MAX_BODY_CHARS and over.startswith(MARKER) and "Truncated" in over
    details = compose_body("<details>\n" + "z\n" * 100, limit=150)
    assert len(details) <= 150 and details.count("<details>") == details.count("</details>")
    tiny = compose_body("w" * 100, marker="<!-- m -->", limit=60)
    assert len(tiny) <= 60 and tiny.startswith("<!-- m -->")


# --- degradation: permissions, retries, errors -------------------------------------------


def test_fork_token_forbidden_everywhere_is_skipped(github: FakeGitHub) -> None:
    github.forbid_all = True

    outcome = upsert(github)

    assert outcome.action == "skipped"
    assert "no permission to comment" in outcome.message
    assert "pull-requests: write" in outcome.message
    assert "job summary" in outcome.message
    assert "Resource not accessible by integration" in outcome.message
    assert "\n" not in outcome.message
    assert github.writes() == []


@pytest.mark.parametrize("existing", [False, True])
def test_read_only_token_forbidden_on_write_is_skipped(github: FakeGitHub, existing: bool) -> None:
    github.forbid_writes = True
    if existing:
        github.add_comment(PAT_LOGIN, f"{MARKER}\nold")

    outcome = upsert(github)

    assert outcome.action == "skipped"
    assert ("HTTP 403 on PATCH" if existing else "HTTP 403 on POST") in outcome.message
    assert len(github.writes()) == 1  # a permission error is final: no retries


def test_server_errors_are_retried_then_succeed(github: FakeGitHub) -> None:
    github.fail_first = 3
    pauses: list[float] = []

    outcome = upsert(github, retries=3, backoff_s=0.5, sleep=pauses.append)

    assert outcome.action == "created", outcome
    assert pauses == [0.5, 1.0, 2.0]  # exponential, and injected: the test never sleeps
    assert [r.path for r in github.requests[:4]] == ["/user"] * 4


def test_server_errors_exhaust_retries_and_fail(github: FakeGitHub) -> None:
    github.fail_first = 100
    github.fail_first_status = 503

    outcome = upsert(github, retries=2)

    assert outcome.action == "failed"
    assert "HTTP 503" in outcome.message
    assert len(github.requests) == 3


def test_rate_limit_429_is_retried(github: FakeGitHub) -> None:
    github.fail_first = 1
    github.fail_first_status = 429

    assert upsert(github).action == "created"


def test_post_that_failed_after_creating_is_not_duplicated(github: FakeGitHub) -> None:
    github.post_creates_then_fails = 1  # 502 although the comment was created

    outcome = upsert(github, "verdict")

    assert outcome.action == "updated", outcome
    assert [c["body"] for c in github.comments] == [f"{MARKER}\nverdict"]
    assert [w.method for w in github.writes()] == ["POST", "PATCH"]


def test_validation_error_fails_with_githubs_message(github: FakeGitHub) -> None:
    github.write_error = (
        422,
        {
            "message": "Validation Failed",
            "errors": [{"resource": "IssueComment", "code": "unprocessable", "message": "locked"}],
            "documentation_url": "https://docs.github.com/rest",
        },
    )

    outcome = upsert(github)

    assert outcome.action == "failed"
    assert "HTTP 422 on POST: Validation Failed: locked" in outcome.message
    assert len(github.writes()) == 1


def test_network_errors_are_retried_then_fail() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pauses: list[float] = []  # nothing listens on that port now

    outcome = upsert_comment(
        "x",
        api_url=f"http://127.0.0.1:{port}",
        repository=REPO,
        issue_number=PR,
        token=TOKEN,
        retries=2,
        backoff_s=0,
        sleep=pauses.append,
    )

    assert outcome.action == "failed"
    assert "network error" in outcome.message
    assert pauses == [0, 0]
    assert_no_token(outcome)


def test_timeout_is_a_retried_network_error(github: FakeGitHub) -> None:
    github.delay_first_s = 0.5

    outcome = upsert(github, timeout_s=0.1, retries=1)

    assert outcome.action == "created", outcome


def test_link_to_another_host_is_not_followed(github: FakeGitHub, other_host: FakeGitHub) -> None:
    for n in range(3):
        github.add_comment("alice", f"c{n}")
    github.next_link_base = other_host.base_url

    outcome = upsert(github)

    assert outcome.action == "failed"
    assert "refused" in outcome.message and other_host.base_url in outcome.message
    assert other_host.requests == []
    assert github.writes() == []  # without the full list a POST could duplicate
    assert_no_token(outcome)


def test_redirect_to_another_host_is_not_followed(
    github: FakeGitHub, other_host: FakeGitHub
) -> None:
    github.redirect_list_to = f"{other_host.base_url}/repos/{REPO}/issues/{PR}/comments"

    outcome = upsert(github)

    assert outcome.action == "failed"
    assert "HTTP 307" in outcome.message and "refused" in outcome.message
    assert other_host.requests == []
    assert_no_token(outcome)


def test_redirect_within_the_api_host_is_followed(github: FakeGitHub) -> None:
    # GitHub answers 307 for a renamed repository; same origin keeps the token safe.
    github.redirect_list_to = f"{github.base_url}/api/v3/repos/{REPO}/issues/{PR}/comments"

    upsert(github)

    assert github.requests[2].path == f"/api/v3/repos/{REPO}/issues/{PR}/comments"
    assert github.requests[2].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "switch",
    [
        {"forbid_all": True},
        {"forbid_writes": True},
        {"fail_first": 100},
        {"write_error": (422, {"message": f"echo: Bearer {TOKEN}"})},
        {"write_error": (400, {"message": "bad", "errors": [TOKEN]})},
        {"next_link_base": "http://127.0.0.1:9"},
    ],
)
def test_token_never_appears_in_the_outcome(github: FakeGitHub, switch: dict[str, Any]) -> None:
    for n in range(3):
        github.add_comment("alice", f"c{n}")
    for name, value in switch.items():
        setattr(github, name, value)

    outcome = upsert(github)

    assert outcome.action in ("skipped", "failed")
    assert_no_token(outcome)


def test_bad_arguments_fail_without_network(github: FakeGitHub) -> None:
    assert upsert(github, repository="no-slash").action == "failed"
    assert upsert(github, issue_number=0).action == "failed"
    assert upsert(github, api_url="ftp://example.com").action == "failed"
    assert upsert(github, marker="").action == "failed"
    assert upsert(github, token="").action == "skipped"
    assert github.requests == []


# --- one deadline for the whole exchange ----------------------------------------------------


def test_a_body_sent_a_byte_at_a_time_is_cut_at_the_deadline(github: FakeGitHub) -> None:
    """urllib's timeout is per read: a trickling answer never trips it; the deadline does."""
    github.trickle_s = 0.2  # the /user answer alone would take ~15 s
    started = time.monotonic()

    outcome = upsert(github, timeout_s=5, deadline_s=1.0)

    assert time.monotonic() - started < 2.0
    assert outcome.action == "failed"
    assert "did not finish within 1 s (the publish deadline)" in outcome.message
    assert github.writes() == []
    assert_no_token(outcome)


def test_an_api_that_stalls_costs_the_deadline_not_the_retries(github: FakeGitHub) -> None:
    github.stall_s = 3.0  # every answer; 3 retries of 20 s reads would take minutes
    started = time.monotonic()

    outcome = upsert(github, timeout_s=20, deadline_s=1.0, sleep=time.sleep, backoff_s=1)

    assert time.monotonic() - started < 2.0
    assert outcome.action == "failed"
    assert "publish deadline" in outcome.message


def test_retries_stop_when_the_deadline_passes(github: FakeGitHub) -> None:
    github.fail_first = 100  # 500s forever: retried, but never past the deadline
    started = time.monotonic()

    outcome = upsert(github, deadline_s=1.0, sleep=time.sleep, backoff_s=0.3, retries=50)

    assert time.monotonic() - started < 2.0
    assert outcome.action == "failed"
    assert len(github.requests) < 10

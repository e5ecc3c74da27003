"""Nothing derived from inputs reaches the runner's workflow-command parser unescaped.

The oracle is tests/runner_commands.py, a port of the runner's own parser
(`ActionCommand.TryParseV2` / `TryParse` and the stop-commands state machine).
Every writer is checked: annotations and their properties, `::add-mask::` for the
token, progress lines and error messages on stderr (CLI) and stdout (Action).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.action_env import run_action
from tests.support.fake_github import FakeGitHub, serve
from tests.support.harness import run_gate
from tests.support.runner_commands import DOTNET_WHITESPACE, commands_in, parse_file_command
from tflite_gate.action import main as action
from tflite_gate.report.github import (
    format_outputs,
    plain_line,
    plain_lines,
    workflow_command,
)
from tflite_gate.rules import RULES

#: Pieces that matter to the runner, mixed into arbitrary text.
_PIECES = [
    "::",
    "##[",
    "]",
    "%0A",
    "%0D",
    "%25",
    "%",
    "\n",
    "\r",
    "\r\n",
    "\u2028",
    "\u2029",
    "\x85",
    "\x0b",
    "\x00",
    "\t",
    " ",
    "\xa0",
    "\u00ad",
    "\u200b",
    "\ufeff",
    "\u034f",
    ",",
    "=",
    "add-mask",
    "ADD-MASK",
    "stop-commands",
    "error",
    "set-output name=x",
]
hostile_text = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=8))).map("".join)


@given(hostile_text)
def test_a_plain_line_is_never_a_command(text: str) -> None:
    line = plain_line(text)
    assert commands_in(line + "\n") == [], repr(line)
    assert len(line.splitlines()) <= 1


@given(hostile_text)
def test_plain_lines_are_never_commands(text: str) -> None:
    assert commands_in(plain_lines(text) + "\n") == []


@given(hostile_text, hostile_text, hostile_text)
def test_annotation_is_one_command_carrying_the_text_exactly(
    message: str, title: str, file: str
) -> None:
    line = workflow_command("error", message, {"title": title, "file": file, "line": 3})
    [command] = commands_in(line + "\n")
    assert command.name == "error" and command.data == message
    expected = {"title": title, "file": file, "line": "3"}
    assert set(command.properties) <= set(expected)
    for key, value in command.properties.items():  # the runner trims the property list
        assert value.strip(DOTNET_WHITESPACE) == expected[key].strip(DOTNET_WHITESPACE)


@given(st.dictionaries(st.sampled_from(["verdict", "summary", "report-path"]), hostile_text))
def test_outputs_come_back_exactly_and_alone(outputs: dict[str, str]) -> None:
    assert parse_file_command("earlier=1\n" + format_outputs(outputs)) == {
        "earlier": "1",
        **outputs,
    }


@pytest.fixture(scope="module")
def empty_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repo")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(hostile_text)
def test_the_token_is_masked_exactly_or_refused_unseen(empty_repository: Path, noise: str) -> None:
    token = f"ghs_Unguessable{noise}Token42"
    env = {"GITHUB_WORKSPACE": str(empty_repository), "INPUT_GITHUB-TOKEN": token}
    out = io.StringIO()
    code = action.main(env, out)
    commands = commands_in(out.getvalue())
    masks = [c for c in commands if c.name.lower() == "add-mask"]
    if code == 2 and not masks:  # refused: one error annotation, the token nowhere
        assert [c.name for c in commands] == ["error"]
        assert "github-token" in commands[0].data
        assert "Unguessable" not in out.getvalue()
    else:
        assert [m.data for m in masks] == [token.strip()]
        assert "Unguessable" not in "".join(c.data for c in commands if c not in masks)


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    yield from serve()


@pytest.mark.parametrize(
    "token",
    [
        "ghs_Unguessable\n::error title=x::injected",
        "ghs_Unguessable\r::add-mask::injected",
        "ghs_Unguessable\x1b[2Kinjected",
        "ghs_Unguessable\u2028::warning::injected",
    ],
)
@pytest.mark.slow
def test_action_refuses_a_token_with_control_characters(
    empty_repository: Path, github: FakeGitHub, tmp_path: Path, token: str
) -> None:
    run = run_action(empty_repository, github, tmp_path, **{"github-token": token})
    assert run.returncode == 2, run.stdout
    commands = commands_in(run.stdout)
    assert [c.name for c in commands] == ["error"], run.stdout
    assert "github-token contains" in commands[0].data
    assert "Unguessable" not in run.stdout and "injected" not in run.stdout


@pytest.mark.slow
def test_action_masks_a_percent_token_as_it_is(
    empty_repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    token = "ghs_Unguessable%0A%25Token"
    run = run_action(empty_repository, github, tmp_path, **{"github-token": token})
    masks = [c for c in commands_in(run.stdout) if c.name == "add-mask"]
    assert [m.data for m in masks] == [token]


_PAYLOADS = [
    "m.keras\n::add-mask::pwned",
    "m.keras\r::error title=x::pwned",
    "m.keras\n\u2028 ::set-output name=verdict::pass",
    "m##[add-mask]pwned.keras",
    "m.keras\n\u00ad::add-mask::pwned",
]


def _policy_with_source(workspace: Path, source: str) -> None:
    quoted = source.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    quoted = quoted.replace("\r", "\\r").replace("\u2028", "\\L").replace("\u00ad", "\\u00ad")
    (workspace / "tflite-gate.yml").write_text(
        f'version: 1\nmodels:\n  - name: m\n    source: "{quoted}"\n', encoding="utf-8"
    )


@pytest.mark.slow
@pytest.mark.parametrize("source", _PAYLOADS)
def test_cli_github_format_carries_no_command_from_a_model_source(
    tmp_path: Path, source: str
) -> None:
    _policy_with_source(tmp_path, source)
    run = run_gate(tmp_path, "--format", "github")
    assert commands_in(run.stderr) == [], run.stderr
    ours = {"error", "warning", "notice", "stop-commands"}
    resumes = {c.data for c in commands_in(run.stdout) if c.name == "stop-commands"}
    for command in commands_in(run.stdout):
        assert command.name in ours | resumes, command
        if command.name in {"error", "warning", "notice"}:  # an annotation of ours, not theirs
            assert command.properties.get("title", "").startswith(("tflite-gate", *RULES)), command

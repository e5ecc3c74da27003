"""The command line: every subcommand's help, as a user first meets the tool."""

from __future__ import annotations

import re

import pytest

from tflite_gate.cli import main


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    return capsys.readouterr().out


def _listed_subcommands(top_help: str) -> list[str]:
    listed = re.search(r"\{([a-z,]+)\}", top_help)
    assert listed is not None, top_help
    return listed.group(1).split(",")


def test_every_subcommand_has_help_with_a_description_and_an_example(
    capsys: pytest.CaptureFixture[str],
) -> None:
    commands = _listed_subcommands(_help(["--help"], capsys))
    assert {"check", "init", "suggest", "explain"} <= set(commands)
    for command in commands:
        shown = _help([command, "--help"], capsys)
        usage, _, rest = shown.partition("\n\n")
        assert usage.startswith(f"usage: tflite-gate {command}"), shown
        description = rest.split("\n\n")[0]
        assert not description.startswith(("positional arguments", "options")), (
            f"`{command} --help` has no description:\n{shown}"
        )
        examples = shown.partition("\nexamples:\n")[2]
        assert f"tflite-gate {command}" in examples, f"`{command} --help` has no example:\n{shown}"


@pytest.mark.parametrize("command", ["init", "suggest"])
def test_help_shows_the_default_margin_as_a_percentage(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "(default: 100%)" in " ".join(_help([command, "--help"], capsys).split())

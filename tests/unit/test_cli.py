"""The command line: every subcommand's help, as a user first meets the tool."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.check_facts import loaded_policy
from tests.support.suggest_reports import (
    TWO_VARIANTS,
    noisy_run,
    report_of,
    write_report,
)
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


def test_format_github_never_names_a_report_it_did_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--report -` with `--format github` is refused: the step outputs must not point at it."""
    outputs = tmp_path / "output.txt"
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)

    code = main(["check", "--workspace", str(tmp_path), "--format", "github", "--report", "-"])

    assert code == 2
    printed = capsys.readouterr()
    assert "::error title=usage-error" in printed.out
    assert "give --report a file path with --format github" in printed.err
    written = outputs.read_text()
    delimiter = written.split("report-path<<", 1)[1].split("\n", 1)[0]
    assert f"report-path<<{delimiter}\n\n{delimiter}\n" in written  # empty: nothing to point at


def test_suggest_command_refuses_what_it_cannot_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    report = report_of(loaded, {("det", "float"): [noisy_run(loaded, "det", "float", {}, "x")]})
    report_path = write_report(tmp_path, report)
    args = ["suggest", "--workspace", str(tmp_path), "--report", str(report_path)]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("# Nothing in ")

    report.policy = "other.yml"
    write_report(tmp_path, report)
    assert main(args) == 2
    assert "pass --policy other.yml: " in capsys.readouterr().err

    report.policy = "tflite-gate.yml"
    report.models[0].name = "gone"
    write_report(tmp_path, report)
    assert main(args) == 2
    assert "checked 'gone', which the policy does not have" in capsys.readouterr().err

    report_path.write_text(json.dumps({"not": "a report"}), encoding="utf-8")
    assert main(args) == 2
    assert "pass tflite-gate JSON reports only" in capsys.readouterr().err

    assert main([*args, "--margin=-5%"]) == 2
    assert "the margin must be between 0 and 100" in capsys.readouterr().err

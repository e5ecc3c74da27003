"""The command line's streams: one thing on stdout, the rest on stderr, and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tflite_gate.app import console
from tflite_gate.app.outcome import EXIT_PASS, EXIT_USAGE, usage_outcome
from tflite_gate.support.output_paths import STDOUT, Output, report_outputs
from tflite_gate.support.run_options import CheckOptions

NAMES = {"json": "--report", "sarif": "--sarif", "junit": "--junit"}
POLICY = "version: 1\nmodels:\n  - {name: a, source: a.tflite}\n  - {name: b, source: b.tflite}\n"


def test_stdout_carries_one_thing() -> None:
    to_stdout = [Output("json", "--report", STDOUT), Output("sarif", "--sarif", STDOUT)]
    assert console.stdout_conflict(to_stdout[:1], "text") is None
    assert console.stdout_conflict(to_stdout[:1], "json") is None
    assert console.stdout_conflict(to_stdout[:1], "github") == (
        "give --report a file path with --format github: its workflow commands go to stdout"
    )
    assert console.stdout_conflict(to_stdout[1:], "json") == (
        "give --sarif a file path: --format json prints the JSON report on stdout"
    )


def test_format_json_prints_the_report_and_nothing_else_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = report_outputs(
        json_path=tmp_path / "r.json", sarif_path=None, junit_path=None, names=NAMES
    )
    options = CheckOptions(policy=tmp_path / "p.yml", workspace=tmp_path, outputs=outputs)
    outcome = usage_outcome(["give --policy a file"], options)

    code = console.finish(outcome, outputs, output_format="json", report_name="r.json")

    printed = capsys.readouterr()
    assert code == EXIT_USAGE
    assert json.loads(printed.out)["verdict"] == "error"
    assert printed.err == "tflite-gate: error: give --policy a file\n"
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "error"


def test_a_command_line_that_did_not_parse_still_writes_the_report(tmp_path: Path) -> None:
    outputs = report_outputs(
        json_path=tmp_path / "r.json", sarif_path=None, junit_path=None, names=NAMES
    )
    options = CheckOptions(policy=tmp_path / "p.yml", workspace=tmp_path, outputs=outputs)

    assert console.command_line_error("unrecognized arguments: --fast", options) == EXIT_USAGE
    [finding] = json.loads((tmp_path / "r.json").read_text())["findings"]
    assert finding["message"] == "unrecognized arguments: --fast"
    assert console.command_line_error("x", None) == EXIT_USAGE


def test_the_matrix_is_json_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tflite-gate.yml").write_text(POLICY)
    options = CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)

    assert console.matrix_command(options, "model") == EXIT_PASS

    assert json.loads(capsys.readouterr().out) == {"include": [{"model": "a"}, {"model": "b"}]}


def test_a_matrix_of_a_bad_policy_is_located_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tflite-gate.yml").write_text("version: 1\n")
    options = CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)

    assert console.matrix_command(options, "model") == EXIT_USAGE

    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.startswith("tflite-gate.yml:1:1: ")


def test_explain_names_close_rules_for_a_typo(capsys: pytest.CaptureFixture[str]) -> None:
    assert console.explain_command("divergance") == EXIT_USAGE
    assert "did you mean divergence?" in capsys.readouterr().err
    assert console.explain_command("divergence") == EXIT_PASS
    assert capsys.readouterr().out.startswith("## divergence")
    assert console.explain_command(None) == EXIT_PASS
    assert "divergence" in capsys.readouterr().out


def test_the_schema_is_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert console.schema_command("policy") == EXIT_PASS
    assert json.loads(capsys.readouterr().out)["title"] == "tflite-gate policy (tflite-gate.yml)"


def test_suggest_without_a_report_says_so_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tflite-gate.yml").write_text(POLICY)
    options = CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)

    assert console.suggest_command(options, tmp_path / "missing.json", 1.0) == EXIT_USAGE

    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.startswith("tflite-gate suggest: make ")

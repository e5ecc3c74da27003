"""What a run is asked to do: margins, name lists, the artifacts' place, output errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflite_gate.support.output_paths import Output, PathProblem
from tflite_gate.support.run_options import (
    MAX_MARGIN,
    CheckOptions,
    OptionNames,
    OutputPathError,
    ResultLine,
    artifacts_path,
    margin_text,
    parse_margin,
    split_names,
)


@pytest.mark.parametrize(
    ("text", "margin"), [("50%", 0.5), ("0.5", 0.5), (" 100% ", 1.0), ("0", 0.0), ("10000%", 100.0)]
)
def test_a_margin_is_a_share_or_a_percentage(text: str, margin: float) -> None:
    assert parse_margin(text) == pytest.approx(margin)


@pytest.mark.parametrize("text", ["half", "", "nan", "-1", "10001%", "inf", "5e%"])
def test_a_margin_that_is_not_one_says_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="margin") as raised:
        parse_margin(text)
    assert repr(text) in str(raised.value)


def test_margins_read_back_as_percentages() -> None:
    assert margin_text(0.5) == "50%"
    assert margin_text(1.0) == "100%"
    assert parse_margin(margin_text(MAX_MARGIN)) == MAX_MARGIN


def test_names_come_in_repeats_commas_or_lines() -> None:
    assert split_names(["a,b", " c ", "d\ne", ",,"]) == ["a", "b", "c", "d", "e"]
    assert split_names([]) == []


def test_the_artifacts_default_to_the_workspace(tmp_path: Path) -> None:
    options = CheckOptions(policy=tmp_path / "p.yml", workspace=tmp_path)
    assert artifacts_path(options) == tmp_path / ".tflite-gate" / "artifacts"
    options.artifacts = tmp_path / "elsewhere"
    assert artifacts_path(options) == tmp_path / "elsewhere"


def test_an_output_path_error_says_every_problem(tmp_path: Path) -> None:
    output = Output("json", "--report", tmp_path / "r.json")
    problems = [PathProblem(output, "first"), PathProblem(output, "second")]
    error = OutputPathError(problems)
    assert str(error) == "first\nsecond"
    assert error.problems == problems


def test_option_names_default_to_the_cli_flags() -> None:
    assert OptionNames().workspace == "--workspace"
    assert OptionNames(artifacts=None).artifacts is None


def test_a_result_line_is_still_a_line() -> None:
    line = ResultLine("relu/float: passed")
    assert isinstance(line, str) and line == "relu/float: passed"

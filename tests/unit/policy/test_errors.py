"""Validation errors said as the fix, at the line of the value or key they are about.

These call the error mapping on YAML composed in memory; `test_policy_load.py`
goes through the whole file, from reading it to the paths it names.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tflite_gate.findings import Location
from tflite_gate.policy.errors import PolicyError, PolicyIssue, issues_from_validation
from tflite_gate.policy.positions import load_yaml_with_marks
from tflite_gate.policy.schema import Policy

PATH = "ci/tflite-gate.yml"


def issues(text: str) -> list[tuple[int | None, int | None, str]]:
    data, source_map = load_yaml_with_marks(text)
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(data)
    found = issues_from_validation(caught.value, source_map, PATH)
    assert {issue.path for issue in found} == {PATH}
    return [(issue.line, issue.column, issue.message) for issue in found]


def test_an_issue_names_its_place_like_a_compiler() -> None:
    assert str(PolicyIssue(PATH, 3, 7, "write a number")) == f"{PATH}:3:7: write a number"
    assert str(PolicyIssue(PATH, 3, None, "write a number")) == f"{PATH}:3:1: write a number"
    assert str(PolicyIssue(PATH, None, None, "empty")) == f"{PATH}: empty"
    assert PolicyIssue.at(Location(path=PATH, line=2, column=5), "x") == PolicyIssue(
        PATH, 2, 5, "x"
    )


def test_a_policy_error_says_every_issue_one_a_line() -> None:
    error = PolicyError([PolicyIssue(PATH, 1, 1, "a"), PolicyIssue(PATH, 2, 1, "b")])
    assert str(error) == f"{PATH}:1:1: a\n{PATH}:2:1: b"


def test_an_unknown_key_points_at_the_key_and_offers_the_close_one() -> None:
    [(line, column, message)] = issues(
        "version: 1\nmodels:\n  - name: m\n    source: m.keras\n    limts: {timeout_s: 1}\n"
    )
    assert (line, column) == (5, 5)
    assert message.startswith("models[0].limts: unknown key 'limts' (did you mean 'limits'?)")


def test_a_value_of_another_type_says_what_to_write_at_the_value() -> None:
    assert issues(
        "version: 1\nmodels:\n  - {name: m, source: m.keras, limits: {timeout_s: '10'}}\n"
    ) == [(3, 52, "models[0].limits.timeout_s: write a number without quotes, got '10'")]


def test_a_data_source_that_fits_no_branch_is_reported_once() -> None:
    found = issues(
        "version: 1\nmodels:\n  - {name: m, source: m.keras, data: {calibration: x.csv}}\n"
    )
    assert len(found) == 1
    (line, column, message) = found[0]
    assert (line, column) == (3, 52)
    assert message.startswith("models[0].data.calibration: expected a .npz file")


def test_a_validators_error_about_an_item_points_at_that_item() -> None:
    text = "version: 1\nmodels:\n  - {name: a, source: a.keras}\n  - {name: A, source: b.keras}\n"
    [(line, column, message)] = issues(text)
    assert (line, column) == (4, 12)
    assert message.startswith("models[1].name: duplicate model name 'A'")


def test_an_unquoted_version_quotes_back_the_text_as_written() -> None:
    [(_, _, message)] = issues(
        "version: 1\nmodels:\n  - {name: m, source: m.keras, versions: {tensorflow: 2.10}}\n"
    )
    assert message == (
        "models[0].versions.tensorflow: write the version as a quoted specifier (tensorflow: "
        '"==2.10.*"): YAML reads 2.10 unquoted as the number 2.1'
    )

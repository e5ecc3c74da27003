"""The Action's inputs as the runner passes them: `INPUT_<NAME>`, every value checked.

Real directories stand for the checkout; a bad value is an `InputError` naming the
input and what it may be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tflite_gate.action.comment import DEFAULT_DEADLINE_S
from tflite_gate.action.inputs import (
    DEFAULT_CACHE_DIR,
    InputError,
    input_value,
    read_inputs,
    report_place,
)
from tflite_gate.support.output_paths import DEFAULT_REPORT


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    (tmp_path / "ml").mkdir()
    return tmp_path


def _env(repository: Path, **inputs: str) -> dict[str, str]:
    env = {"GITHUB_WORKSPACE": str(repository)}
    env.update({f"INPUT_{name.upper()}": value for name, value in inputs.items()})
    return env


def test_the_defaults_of_an_empty_step(repository: Path) -> None:
    inputs = read_inputs(_env(repository))
    assert inputs.workspace == repository.resolve()
    assert inputs.prefix == ""
    assert inputs.report == repository.resolve() / DEFAULT_REPORT
    assert inputs.cache_dir == repository.resolve() / DEFAULT_CACHE_DIR
    assert (inputs.command, inputs.split_by, inputs.fail_on, inputs.jobs) == (
        "check",
        "model",
        None,
        None,
    )
    assert inputs.comment and inputs.cache
    assert inputs.publish_timeout_s == DEFAULT_DEADLINE_S


def test_paths_are_inside_the_working_directory(repository: Path) -> None:
    env = _env(repository, **{"working-directory": "ml", "sarif": "out/g.sarif", "only": "a,b\nc"})
    inputs = read_inputs(env)
    assert inputs.prefix == "ml"
    assert inputs.sarif == repository.resolve() / "ml" / "out" / "g.sarif"
    assert inputs.only == ["a", "b", "c"]


def test_names_are_hyphenated_and_upper_cased_as_the_runner_does(repository: Path) -> None:
    env = {"INPUT_FAIL-ON": " warning ", "INPUT_SPLIT_BY": "runtime"}
    assert input_value(env, "fail-on") == "warning"
    assert input_value(env, "split by") == "runtime"
    assert read_inputs(_env(repository, **{"fail-on": "never"})).fail_on == "never"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("fail-on", "sometimes", "fail-on must be error, warning or never, got 'sometimes'"),
        ("comment", "always", "comment must be update or off, got 'always'"),
        ("cache", "yes", "cache must be true or false, got 'yes'"),
        ("command", "run", "command must be check, matrix or merge, got 'run'"),
        ("split-by", "variant", "split-by must be model or runtime, got 'variant'"),
        ("jobs", "0", "jobs must be a whole number above 0 or empty, got '0'"),
        ("publish-timeout", "-1", "publish-timeout must be seconds above 0 and at most 3600"),
        ("publish-timeout", "inf", "publish-timeout must be seconds above 0 and at most 3600"),
        ("working-directory", "../..", "working-directory '../..' is outside the repository"),
        ("working-directory", "nowhere", "working-directory 'nowhere' is not a directory"),
        ("report", "/etc/passwd", "report '/etc/passwd' is outside the repository"),
        ("github-token", "ghs_a b", "github-token contains white space"),
        ("github-token", "ghs_\u00e9", "github-token contains a non-ASCII character"),
    ],
)
def test_a_bad_value_names_the_input_and_the_choices(
    repository: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(InputError) as raised:
        read_inputs(_env(repository, **{name: value}))
    assert message in str(raised.value)
    assert value not in str(raised.value) or name != "github-token"


def test_merge_takes_the_shard_reports_but_the_merged_one(repository: Path) -> None:
    shards = repository / "shards"
    shards.mkdir()
    for name in ("a.json", "b.json"):
        (shards / name).write_text("{}")
    (repository / "merged.json").write_text("{}")
    env = _env(repository, command="merge", reports="shards/*.json\n*.json", report="merged.json")
    inputs = read_inputs(env)
    assert [path.name for path in inputs.reports] == ["a.json", "b.json"]


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        ("", "command merge needs the shard reports"),
        ("none/*.json", "reports none/*.json match no file in working-directory"),
        ("../*.json", "reports pattern '../*.json' must stay inside working-directory"),
    ],
)
def test_merge_without_usable_reports_is_an_input_error(
    repository: Path, reports: str, message: str
) -> None:
    with pytest.raises(InputError, match=message.replace("*", r"\*").replace("(", r"\(")):
        read_inputs(_env(repository, command="merge", reports=reports))


def test_the_report_place_of_a_bad_step(repository: Path) -> None:
    place = report_place(_env(repository, **{"working-directory": "ml", "report": "r.json"}))
    assert place == (
        repository.resolve() / "ml",
        repository.resolve() / "ml" / "r.json",
        repository.resolve() / "ml" / "tflite-gate.yml",
    )
    assert report_place(_env(repository, report="../r.json")) is None

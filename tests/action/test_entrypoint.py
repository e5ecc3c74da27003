"""entrypoint.py run as the runner runs a Docker action: INPUT_* and GITHUB_* in the env.

The GitHub API is a real local HTTP server (tests/fake_github.py); the workspace is a
copy of the bundled examples; outputs, the job summary and stdout are read back the
way the runner reads them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.action_env import (
    ActionRun,
    action_env,
    run_action,
    run_entrypoint,
)
from tests.support.fake_github import TOKEN, FakeGitHub, serve
from tests.support.harness import REPO
from tests.support.tflite_builder import build_model, builtin

pytestmark = pytest.mark.slow  # every test here starts processes


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    yield from serve()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(
        REPO / "examples", repo / "examples", ignore=shutil.ignore_patterns(".tflite-gate")
    )
    return repo


def test_bad_input_is_an_error_annotation_and_exit_2(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    run = run_action(repository, github, tmp_path, **{"fail-on": "sometimes"})
    assert run.returncode == 2
    assert run.commands() == [
        "::error title=tflite-gate input::fail-on must be error, warning or never, got 'sometimes'"
    ]


def test_working_directory_outside_the_repository(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    run = run_action(repository, github, tmp_path, **{"working-directory": "../.."})
    assert run.returncode == 2
    assert "working-directory '../..' is outside the repository" in run.stdout


def test_invalid_policy_is_annotated_on_its_line(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    (repository / "examples" / "broken.yml").write_text(
        "version: 1\nmodels:\n  - {name: m, sorce: x.keras}\n"
    )
    run = run_action(
        repository, github, tmp_path, **{"working-directory": "examples", "policy": "broken.yml"}
    )
    assert run.returncode == 2
    errors = [c for c in run.commands() if c.startswith("::error ")]
    assert errors and errors[0].startswith(
        "::error title=policy-invalid%3A The policy file is invalid,file=examples/broken.yml,line=3,col="
    )
    assert run.outputs["verdict"] == "error"


@pytest.fixture(scope="module")
def showcase(
    repository: Path, github: FakeGitHub, tmp_path_factory: pytest.TempPathFactory
) -> ActionRun:
    tmp = tmp_path_factory.mktemp("showcase")
    return run_action(
        repository,
        github,
        tmp,
        **{"working-directory": "examples", "sarif": "out.sarif", "junit": "out.xml"},
    )


@pytest.mark.slow
def test_showcase_fails_with_annotations_on_code_and_policy_lines(
    showcase: ActionRun, repository: Path
) -> None:
    assert showcase.returncode == 1, showcase.stdout[-3000:]
    commands = showcase.commands()
    converter = [c for c in commands if c.startswith("::error title=conversion-failed")]
    assert len(converter) == 1
    code_line = next(
        i
        for i, line in enumerate(
            (repository / "examples/example_models/spectral.py").read_text().splitlines(), 1
        )
        if "return tf.linalg.svd(" in line
    )
    assert f",file=examples/example_models/spectral.py,line={code_line}::" in converter[0]
    [divergence] = [c for c in commands if c.startswith("::error title=divergence")]
    policy_line = next(
        i
        for i, line in enumerate(
            (repository / "examples/tflite-gate.yml").read_text().splitlines(), 1
        )
        if "min_cosine: 0.99999" in line
    )
    assert f",file=examples/tflite-gate.yml,line={policy_line}," in divergence


@pytest.mark.slow
def test_showcase_outputs_summary_reports_and_comment(
    showcase: ActionRun, repository: Path, github: FakeGitHub
) -> None:
    assert showcase.outputs["verdict"] == "fail"
    assert showcase.outputs["errors"] == "6"
    assert showcase.outputs["report-path"] == "examples/tflite-gate-report.json"
    assert showcase.outputs["summary"].startswith("fail")
    assert "classifier-strict" in showcase.summary and len(showcase.summary) < 1_048_576
    assert (repository / "examples/out.sarif").is_file() and (
        repository / "examples/out.xml"
    ).is_file()
    sarif = json.loads((repository / "examples/out.sarif").read_text())
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
    }
    assert "examples/example_models/spectral.py" in uris
    posted = [r for r in github.requests if r.method == "POST"]
    assert posted and "tflite-gate" in posted[-1].body["body"]


@pytest.mark.slow
def test_token_is_masked_and_never_printed(showcase: ActionRun) -> None:
    assert showcase.stdout.count(TOKEN) == 1
    assert f"::add-mask::{TOKEN}" in showcase.stdout.splitlines()


@pytest.mark.slow
def test_passing_run_updates_the_same_comment(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    before = len(github.comments)
    inputs = {"working-directory": "examples", "policy": "passing.yml"}
    first = run_action(repository, github, tmp_path, **inputs)
    second = run_action(repository, github, tmp_path, **inputs)
    assert (first.returncode, second.returncode) == (0, 0)
    assert second.outputs["verdict"] == "pass"
    assert len(github.comments) == max(before, 1)  # one sticky comment, edited in place
    assert github.requests[-1].method == "PATCH"


@pytest.mark.slow
def test_fork_pull_request_degrades_to_a_notice(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    github.forbid_all = True
    try:
        run = run_action(
            repository,
            github,
            tmp_path,
            **{"working-directory": "examples", "policy": "passing.yml"},
        )
    finally:
        github.forbid_all = False
    assert run.returncode == 0
    notices = [c for c in run.commands() if c.startswith("::notice title=tflite-gate comment::")]
    assert len(notices) == 1 and "no permission to comment" in notices[0]


@pytest.mark.slow
def test_untrusted_text_cannot_issue_commands(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    (repository / "evil.py").write_text(
        "def build():\n    raise ValueError('::add-mask::x ##[error]pwned')\n"
    )
    (repository / "evil.yml").write_text(
        "version: 1\nmodels:\n  - {name: evil, source: 'evil:build'}\n"
    )
    run = run_action(repository, github, tmp_path, event="push", policy="evil.yml")
    assert run.returncode == 1
    assert "pwned" in run.stdout
    for command in run.commands():
        assert not command.startswith("::add-mask::x"), command
    assert all(
        "##[error]pwned" not in line or not line.startswith("##[")
        for line in run.stdout.splitlines()
    )


def test_the_cache_input_reuses_or_converts_again(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    bad = run_action(repository, github, tmp_path, cache="sometimes")
    assert bad.returncode == 2
    assert "cache must be true or false, got 'sometimes'" in bad.stdout
    inputs = {"working-directory": "examples", "only": "tiny-cnn", "comment": "off"}
    runs = {}
    for name, cache in (("first", "true"), ("second", "true"), ("off", "false")):
        (tmp_path / name).mkdir()
        runs[name] = run_action(repository, github, tmp_path / name, cache=cache, **inputs)
        assert runs[name].returncode == 1, runs[name].stdout  # tiny-cnn: op-not-allowed

    last = json.loads((repository / "examples" / "tflite-gate-report.json").read_text())
    assert last["models"][0]["cache"]["status"] == "disabled"
    assert "[tiny-cnn] 1 variant(s): reused from the cache" in runs["second"].stdout
    assert "(`cache: false` converts again)" in runs["second"].stdout  # the input, no flag
    assert "converting" not in runs["second"].stdout
    assert "converting 1 variant(s)" in runs["off"].stdout


def test_the_baseline_input_shows_the_changes_in_the_summary(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    inputs = {"working-directory": "examples", "only": "tiny-cnn", "comment": "off"}
    (tmp_path / "first").mkdir()
    assert run_action(repository, github, tmp_path / "first", **inputs).returncode == 1
    shutil.copy(
        repository / "examples" / "tflite-gate-report.json", repository / "examples" / "base.json"
    )
    (tmp_path / "second").mkdir()
    run = run_action(repository, github, tmp_path / "second", baseline="base.json", **inputs)
    assert run.returncode == 1, run.stdout  # tiny-cnn: op-not-allowed, as before
    assert "### Since the baseline `examples/base.json`" in run.summary  # repository paths
    assert "1 variant unchanged." in run.summary
    report = json.loads((repository / "examples" / "tflite-gate-report.json").read_text())
    assert report["baseline"]["variants"][0]["model"] == "tiny-cnn"

    (tmp_path / "third").mkdir()
    missing = run_action(repository, github, tmp_path / "third", baseline="gone.json", **inputs)
    assert missing.returncode == 2
    assert "the `baseline` input: make examples/gone.json readable" in missing.stdout


SHARDED_POLICY = """\
version: 1
defaults:
  ops:
    allow: [FULLY_CONNECTED, SOFTMAX, QUANTIZE, DEQUANTIZE, RESHAPE, CONV_2D]
models:
  - name: classifier
    source: example_models.classifier:build
  - name: tiny-cnn
    source: example_models.tiny_cnn:build
    classification: [logits]
"""


@pytest.mark.slow
def test_the_sharded_workflow_merges_to_one_verdict_and_one_comment(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    """.github/workflows/sharded.yml's three jobs, run here as the runner runs them."""
    (repository / "examples" / "sharded.yml").write_text(SHARDED_POLICY)
    common = {"working-directory": "examples", "policy": "sharded.yml"}
    (tmp_path / "plan").mkdir()
    plan = run_action(repository, github, tmp_path / "plan", command="matrix", **common)
    assert plan.returncode == 0, plan.stdout
    entries = json.loads(plan.outputs["matrix"])["include"]
    assert entries == [{"model": "classifier"}, {"model": "tiny-cnn"}]
    before = len(github.comments)
    for index, entry in enumerate(entries):
        (tmp_path / f"job-{index}").mkdir()
        shard = run_action(
            repository,
            github,
            tmp_path / f"job-{index}",
            only=entry["model"],
            comment="off",
            report=f"shards/{index}/shard.json",
            **common,
        )
        assert shard.returncode == (0 if entry["model"] == "classifier" else 1), shard.stdout
    assert len(github.comments) == before  # shards do not comment
    (tmp_path / "merge").mkdir()
    merged = run_action(
        repository,
        github,
        tmp_path / "merge",
        command="merge",
        reports="shards/**/*.json",
        **common,
    )
    assert merged.returncode == 1, merged.stdout
    assert merged.outputs["verdict"] == "fail"
    assert "op-not-allowed" in merged.summary and "classifier" in merged.summary
    assert any(c.startswith("::error title=op-not-allowed") for c in merged.commands())
    posted = [r for r in github.requests if r.method in {"POST", "PATCH"}]
    assert "tiny-cnn" in posted[-1].body["body"]
    (tmp_path / "whole").mkdir()
    whole = run_action(repository, github, tmp_path / "whole", comment="off", **common)
    assert whole.outputs["verdict"] == merged.outputs["verdict"]
    assert whole.outputs["summary"] == merged.outputs["summary"]

    (repository / "examples" / "shards" / "1" / "shard.json").unlink()
    (tmp_path / "partial").mkdir()
    partial = run_action(
        repository,
        github,
        tmp_path / "partial",
        command="merge",
        reports="shards/**/*.json",
        comment="off",
        **common,
    )
    assert partial.returncode == 1
    line = SHARDED_POLICY.splitlines().index("    source: example_models.tiny_cnn:build") + 1
    assert any(
        c.startswith("::error title=shard-missing")
        and f"file=examples/sharded.yml,line={line}," in c
        for c in partial.commands()
    ), partial.commands()


def test_merge_without_reports_is_an_input_error(
    repository: Path, github: FakeGitHub, tmp_path: Path
) -> None:
    run = run_action(repository, github, tmp_path, command="merge", reports="nothing/*.json")
    assert run.returncode == 2
    assert "reports nothing/*.json match no file in working-directory" in run.stdout


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ({"jobs": "zero"}, "jobs must be a whole number above 0 or empty, got 'zero'"),
        ({"jobs": "0"}, "jobs must be a whole number above 0 or empty, got '0'"),
        ({"command": "plan"}, "command must be check, matrix or merge, got 'plan'"),
        ({"split-by": "variant"}, "split-by must be model or runtime, got 'variant'"),
        ({"command": "merge"}, "command merge needs the shard reports: set reports"),
        ({"command": "merge", "reports": "../*.json"}, "must stay inside working-directory"),
        ({"baseline": "../../old.json"}, "baseline '../../old.json' is outside the repository"),
    ],
)
def test_new_inputs_with_bad_values_are_input_errors(
    repository: Path, github: FakeGitHub, tmp_path: Path, inputs: dict[str, str], words: str
) -> None:
    run = run_action(repository, github, tmp_path, **inputs)
    assert run.returncode == 2
    assert any(
        c.startswith("::error title=tflite-gate input::") and words in c for c in run.commands()
    ), run.stdout
    assert run.outputs["verdict"] == "error"
    report = json.loads((repository / "tflite-gate-report.json").read_text())
    assert report["verdict"] == "error"


def test_the_action_log_states_each_result_once(tmp_path: Path) -> None:
    """The progress group and the summary below it would both carry every run result."""
    repository = tmp_path / "repo"
    repository.mkdir()
    (repository / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (repository / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - {name: relu, source: relu.tflite}\n"
    )
    env = action_env(repository, tmp_path, {"comment": "off"})
    completed = run_entrypoint(repository, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = [line for line in completed.stdout.splitlines() if "16 samples" in line]
    assert len(results) == 1, results
    assert "[relu] relu.tflite" in completed.stdout  # progress itself is still shown

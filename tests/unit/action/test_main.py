"""The Action's main, in-process: the runner's environment in, workflow commands on the
step's log, outputs and job summary in the runner's files, the report in the checkout.

Every run here stops before any model work that starts a process (a missing model, a
bad input, the `matrix` and `merge` commands), so the whole door is tested as the
runner drives it, with the log a StringIO.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from tests.support.action_env import ActionRun, action_env, parse_outputs
from tflite_gate.action.main import main
from tflite_gate.report.json_report import read_json_report, write_json_report
from tflite_gate.report.model import ModelReport, Report, RuntimeRun, Shard, VariantReport
from tflite_gate.report.model.stamp import new_report

RUNNER_UID = 1001  # the owner of the checkout on GitHub's hosted runners
MISSING_MODEL = "version: 1\nmodels:\n  - name: m\n    source: models/m.keras\n"
TWO_MODELS = "version: 1\nmodels:\n  - {name: a, source: a.keras}\n  - {name: b, source: b.keras}\n"


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    checkout = tmp_path / "repo"
    (checkout / "ml").mkdir(parents=True)
    (checkout / "ml" / "tflite-gate.yml").write_text(MISSING_MODEL)
    (checkout / "tflite-gate.yml").write_text(TWO_MODELS)
    return checkout


def _step(repository: Path, **inputs: str) -> ActionRun:
    """One Action step in `repository` with these inputs, as the runner starts it."""
    files = repository.parent / "runner-files"
    files.mkdir(exist_ok=True)
    home = repository.parent / "home"
    home.mkdir(exist_ok=True)
    env = action_env(repository, files, {"comment": "off", **inputs})
    env["HOME"] = str(home)
    out = io.StringIO()
    code = main(env, out)
    return ActionRun(
        code,
        out.getvalue(),
        parse_outputs((files / "output.txt").read_text()),
        (files / "summary.md").read_text(),
    )


def test_a_failing_check_is_annotated_at_repository_paths(repository: Path) -> None:
    run = _step(repository, **{"working-directory": "ml"})
    assert run.returncode == 1
    [annotation] = [line for line in run.commands() if line.startswith("::error ")]
    assert ",file=ml/tflite-gate.yml,line=4,col=13::" in annotation
    assert annotation.startswith("::error title=model-not-found%3A ")
    assert str(repository) not in run.stdout


def test_a_check_writes_its_report_outputs_and_summary(repository: Path) -> None:
    run = _step(repository, **{"working-directory": "ml"})
    assert run.outputs["verdict"] == "fail"
    assert run.outputs["report-path"] == "ml/tflite-gate-report.json"
    assert run.outputs["summary"] == "fail: 1 error, 0 warnings in 1 model"
    assert run.summary.startswith("## tflite-gate: FAIL\n")
    report = read_json_report(repository / "ml" / "tflite-gate-report.json")
    assert report.verdict == "fail" and [f.rule for f in report.findings] == ["model-not-found"]
    assert report.policy == "tflite-gate.yml"  # the report's paths are the workspace's


def test_progress_is_one_group_in_which_no_line_is_a_command(repository: Path) -> None:
    run = _step(repository, **{"working-directory": "ml"})
    lines = run.stdout.splitlines()
    assert lines[0] == "::group::tflite-gate progress"
    token = lines[1].removeprefix("::stop-commands::")
    assert len(token) >= 32 and token != lines[1]
    end = lines.index("::endgroup::")
    assert lines[end - 1] == f"::{token}::"
    assert "[m] models/m.keras" in lines[2:end]
    assert token not in run.stdout.replace(lines[1], "").replace(f"::{token}::", "")


def test_a_bad_input_is_one_annotation_and_an_error_verdict(repository: Path) -> None:
    run = _step(repository, **{"fail-on": "sometimes"})
    assert run.returncode == 2
    [annotation] = run.commands()
    assert annotation.startswith("::error title=tflite-gate input::fail-on must be error")
    assert run.outputs["verdict"] == "error"
    report = read_json_report(repository / "tflite-gate-report.json")
    assert (report.verdict, report.stopped) == ("error", "usage")
    assert [f.rule for f in report.findings] == ["usage-error"]
    assert "fail-on must be error, warning or never" in run.summary


def test_a_bad_input_that_places_the_report_writes_none(repository: Path) -> None:
    run = _step(repository, report="../outside.json")
    assert run.returncode == 2
    assert "report '../outside.json' is outside the repository" in run.commands()[0]
    assert run.outputs["verdict"] == "error"  # a later step still branches on it
    assert not (repository.parent / "outside.json").exists()
    assert not (repository / "tflite-gate-report.json").exists()


def test_the_token_is_masked_before_anything_else_is_written(repository: Path) -> None:
    run = _step(repository, **{"github-token": "ghs_SecretToken42", "working-directory": "ml"})
    assert run.stdout.splitlines()[0] == "::add-mask::ghs_SecretToken42"
    assert run.stdout.count("ghs_SecretToken42") == 1


def test_matrix_lists_one_shard_per_model_for_the_next_job(repository: Path) -> None:
    run = _step(repository, command="matrix")
    assert run.returncode == 0
    assert json.loads(run.outputs["matrix"]) == {"include": [{"model": "a"}, {"model": "b"}]}
    assert run.stdout.startswith("tflite-gate: 2 shard(s)\n")
    assert run.commands() == []  # the matrix is printed inside a stop-commands block
    assert not (repository / "tflite-gate-report.json").exists()


def test_matrix_of_a_policy_that_does_not_load_is_an_error_verdict(repository: Path) -> None:
    (repository / "tflite-gate.yml").write_text("version: 1\nmodels: []\n")
    run = _step(repository, command="matrix")
    assert run.returncode == 2
    assert "matrix" not in run.outputs
    assert run.outputs["verdict"] == "error"


def _shard(model: str) -> Report:
    report = new_report()
    report.policy = "tflite-gate.yml"
    report.shard = Shard(models=[model])
    variant = VariantReport(name="float", quantization="none", io="float32", status="converted")
    variant.runs.append(RuntimeRun(runtime="ai-edge-litert", status="passed"))
    report.models.append(ModelReport(name=model, source=f"{model}.keras", variants=[variant]))
    report.finalize("error")
    return report


def test_merge_publishes_the_verdict_of_the_whole_run(repository: Path) -> None:
    for model in ("a", "b"):
        write_json_report(_shard(model), repository / "shards" / f"{model}.json")
    run = _step(repository, command="merge", reports="shards/*.json")
    assert run.returncode == 0
    assert run.outputs["verdict"] == "pass"
    merged = read_json_report(repository / "tflite-gate-report.json")
    assert [model.name for model in merged.models] == ["a", "b"] and merged.shard is None


def test_merge_of_a_missing_shard_fails_at_the_models_line(repository: Path) -> None:
    write_json_report(_shard("a"), repository / "shards" / "a.json")
    run = _step(repository, command="merge", reports="shards/*.json")
    assert run.returncode == 1
    [annotation] = [line for line in run.commands() if line.startswith("::error ")]
    assert "shard-missing" in annotation and ",file=tflite-gate.yml,line=4" in annotation


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_what_the_step_wrote_goes_to_the_checkouts_owner(repository: Path) -> None:
    for path in (repository, repository / "ml"):
        os.chown(path, RUNNER_UID, RUNNER_UID)
    _step(repository, **{"working-directory": "ml"})
    written = repository / "ml" / "tflite-gate-report.json"
    assert (written.stat().st_uid, written.stat().st_gid) == (RUNNER_UID, RUNNER_UID)
    artifacts = repository / "ml" / ".tflite-gate"  # made by the run, for the next step
    assert artifacts.is_dir() and artifacts.stat().st_uid == RUNNER_UID

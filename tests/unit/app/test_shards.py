"""Merging shard reports split by runtime, on real Report models and a real policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflite_gate.app.outcome import EXIT_FAIL, EXIT_USAGE, GateOutcome
from tflite_gate.app.shards import (
    ShardError,
    matrix_entries,
    merge_reports,
    plan_matrix,
    run_merge,
)
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.report.model import ModelReport, Report, RuntimeRun, Shard, VariantReport
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding
from tflite_gate.support.run_options import CheckOptions

POLICY = """\
version: 1
defaults:
  runtimes: [ai-edge-litert, "tflite-runtime==2.14.0"]
models:
  - name: a
    source: a.keras
  - name: b
    source: b.keras
    runtimes: [ai-edge-litert]
"""


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedPolicy:
    (tmp_path / "tflite-gate.yml").write_text(POLICY)
    return load_policy(tmp_path / "tflite-gate.yml", tmp_path)


def _shard(model: str, runtime: str, status: str = "passed") -> Report:
    report = new_report()
    report.policy = "tflite-gate.yml"
    report.shard = Shard(models=[model], runtimes=[runtime])
    variant = VariantReport(name="float", quantization="none", io="float32", status="converted")
    variant.runs.append(RuntimeRun(runtime=runtime, status=status))  # type: ignore[arg-type]
    report.models.append(ModelReport(name=model, source=f"{model}.keras", variants=[variant]))
    report.add([make_finding("op-not-allowed", f"{model}: MEAN", model=model, variant="float")])
    if status == "diverged":
        report.add([make_finding("divergence", f"{model} on {runtime}", model=model)])
    report.finalize("error")
    return report


def test_matrix_by_runtime_lists_each_models_own_runtimes(loaded: LoadedPolicy) -> None:
    assert matrix_entries(loaded, "runtime") == [
        {"model": "a", "runtime": "ai-edge-litert"},
        {"model": "a", "runtime": "tflite-runtime==2.14.0"},
        {"model": "b", "runtime": "ai-edge-litert"},
    ]
    assert matrix_entries(loaded, "model") == [{"model": "a"}, {"model": "b"}]


def test_runtime_shards_of_one_model_become_one_model_with_both_runs(
    loaded: LoadedPolicy,
) -> None:
    shards = [
        ("b.json", _shard("b", "ai-edge-litert")),
        ("a-old.json", _shard("a", "tflite-runtime==2.14.0", "diverged")),
        ("a-new.json", _shard("a", "ai-edge-litert")),
    ]
    merged = merge_reports(shards, loaded)
    assert [m.name for m in merged.models] == ["a", "b"]
    runs = [run.runtime for run in merged.models[0].variants[0].runs]
    assert runs == ["tflite-runtime==2.14.0", "ai-edge-litert"]
    static = [f for f in merged.findings if f.rule == "op-not-allowed"]
    assert [f.model for f in static] == ["a", "b"]  # each shard of `a` said it: once
    assert merged.verdict == "fail" and merged.summary.errors == 3
    assert merged.shard is None


def test_a_missing_runtime_shard_is_named(loaded: LoadedPolicy) -> None:
    shards = [("a.json", _shard("a", "ai-edge-litert")), ("b.json", _shard("b", "ai-edge-litert"))]
    merged = merge_reports(shards, loaded)
    [missing] = [f for f in merged.findings if f.rule == "shard-missing"]
    assert (missing.model, missing.runtime) == ("a", "tflite-runtime==2.14.0")
    assert missing.location is not None and missing.location.line == 3  # the runtime's line
    assert merged.verdict == "fail"


def test_the_same_run_twice_is_refused(loaded: LoadedPolicy) -> None:
    shard = _shard("a", "ai-edge-litert")
    with pytest.raises(ShardError, match="repeats the a/float run on ai-edge-litert"):
        merge_reports([("1.json", shard), ("2.json", shard)], loaded)


def test_a_model_the_policy_does_not_have_is_refused(loaded: LoadedPolicy) -> None:
    with pytest.raises(ShardError, match="checked 'zzz', which the policy does not have"):
        merge_reports([("z.json", _shard("zzz", "ai-edge-litert"))], loaded)


def test_a_model_no_shard_covers_is_one_finding_at_its_source(loaded: LoadedPolicy) -> None:
    merged = merge_reports([("a.json", _shard("a", "ai-edge-litert"))], loaded)
    missing = [(f.model, f.runtime) for f in merged.findings if f.rule == "shard-missing"]
    assert missing == [("a", "tflite-runtime==2.14.0"), ("b", None)]


def _write(path: Path, report: Report) -> Path:
    path.write_text(report.model_dump_json())
    return path


def test_run_merge_gives_the_verdict_and_exit_code_of_a_whole_check(
    loaded: LoadedPolicy, tmp_path: Path
) -> None:
    shards = [
        _write(tmp_path / "a1.json", _shard("a", "ai-edge-litert")),
        _write(tmp_path / "a2.json", _shard("a", "tflite-runtime==2.14.0", "diverged")),
        _write(tmp_path / "b.json", _shard("b", "ai-edge-litert")),
    ]
    options = CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)

    outcome = run_merge(options, shards)

    assert outcome.exit_code == EXIT_FAIL
    assert [model.name for model in outcome.report.models] == ["a", "b"]


def test_run_merge_of_a_file_that_is_no_report_is_a_usage_error(
    loaded: LoadedPolicy, tmp_path: Path
) -> None:
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    options = CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)

    outcome = run_merge(options, [tmp_path / "notes.json"])

    assert outcome.exit_code == EXIT_USAGE
    assert outcome.messages[0].startswith(f"pass tflite-gate JSON reports only: {tmp_path}")


def test_plan_matrix_of_a_bad_policy_is_its_outcome(tmp_path: Path) -> None:
    (tmp_path / "tflite-gate.yml").write_text("version: 1\n")
    options = CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)
    planned = plan_matrix(options, "model")
    assert isinstance(planned, GateOutcome) and planned.exit_code == EXIT_USAGE

"""`check --baseline`: what changed since an earlier report, and what the policy forbids."""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path

import pytest

from tests.support.harness import run_gate
from tests.support.tflite_builder import build_model, builtin
from tflite_gate.judge.baseline import variant_change
from tflite_gate.judge.checks import check_regressions, metric_worsening
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.report.model import (
    Inspection,
    MetricChange,
    OpInfo,
    VariantChange,
    VariantReport,
)
from tflite_gate.report.text import format_number

POLICY = """\
    version: 1
    defaults:
      regression:
        max_size_increase: 50%
        allow_new_ops: {new_ops}
    models:
      - name: relu
        source: relu.tflite
    """


def _baseline(tmp_path: Path) -> Path:
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (tmp_path / "tflite-gate.yml").write_text(textwrap.dedent(POLICY).format(new_ops="true"))
    base = tmp_path / "base.json"
    assert run_gate(tmp_path, report=base).returncode == 0
    return base


@pytest.mark.slow
def test_one_more_layer_shows_its_deltas_and_fails_when_new_ops_are_forbidden(
    tmp_path: Path,
) -> None:
    base = _baseline(tmp_path)
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU"), builtin("TANH")]))

    allowed = run_gate(tmp_path, "--baseline", str(base))
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert allowed.report is not None
    [change] = allowed.report["baseline"]["variants"]
    assert change["ops_added"] == ["TANH"] and change["ops_removed"] == []
    assert change["size_after"] > change["size_before"]
    assert "Since the baseline " in allowed.stdout
    assert "relu/tflite: size " in allowed.stdout and "ops +TANH" in allowed.stdout

    (tmp_path / "tflite-gate.yml").write_text(textwrap.dedent(POLICY).format(new_ops="false"))
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    forbidden = run_gate(tmp_path, "--baseline", str(base), "--format", "github", env=env)
    assert forbidden.returncode == 1
    [finding] = forbidden.findings(rule="baseline-regression")
    assert finding["location"] == {"path": "tflite-gate.yml", "line": 5, "column": 20}
    assert finding["message"].startswith(
        "relu/tflite: remove the new op(s) or set regression.allow_new_ops: true: TANH"
    )
    assert "### Since the baseline `" in summary.read_text()
    assert "ops +TANH" in summary.read_text()


@pytest.mark.slow
def test_growth_beyond_the_allowed_share_fails_at_that_key(tmp_path: Path) -> None:
    base = _baseline(tmp_path)
    bigger = build_model([builtin("RELU", count=40)])
    (tmp_path / "relu.tflite").write_bytes(bigger)
    run = run_gate(tmp_path, "--baseline", str(base))
    assert run.returncode == 1
    [finding] = run.findings(rule="baseline-regression")
    assert finding["location"]["line"] == 4
    assert "shrink the model or raise regression.max_size_increase" in finding["message"]
    assert finding["details"]["after"] == len(bigger)


@pytest.mark.slow
def test_a_baseline_that_is_not_a_report_is_a_usage_error(tmp_path: Path) -> None:
    _baseline(tmp_path)
    (tmp_path / "old.json").write_text(json.dumps({"verdict": "pass"}))
    run = run_gate(tmp_path, "--baseline", str(tmp_path / "old.json"))
    assert run.returncode == 2
    [finding] = run.findings(rule="usage-error")
    assert finding["message"].startswith("--baseline: pass tflite-gate JSON reports only")


@pytest.mark.parametrize(
    ("metric", "before", "after", "worse"),
    [
        ("max_abs", 0.01, 0.012, 0.2),
        ("cosine", 0.999, 0.998, 1.0),
        ("top1", 0.9, 0.95, -0.5),
        ("max_abs", 0.0, 0.1, None),
        ("cosine", 1.0, 0.99, None),
        ("snr_db", 40.0, 20.0, None),
        ("rel_rmse", math.inf, math.inf, None),  # an all-zero reference, both times
        ("rel_rmse", math.inf, 0.1, None),
    ],
)
def test_metric_worsening_is_a_share_of_the_baselines_error(
    metric: str, before: float, after: float, worse: float | None
) -> None:
    found = metric_worsening(metric, before, after)
    assert found == pytest.approx(worse) if worse is not None else found is None


def test_a_newer_runtime_and_a_worse_metric_fail_where_forbidden(tmp_path: Path) -> None:
    (tmp_path / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: m\n    source: m.keras\n    regression:\n"
        "      allow_min_runtime_increase: false\n      max_metric_worsening: 10%\n"
    )
    config = resolve_model(load_policy(tmp_path / "tflite-gate.yml", tmp_path), 0)
    change = VariantChange(
        model="m",
        variant="int8",
        runtime_before="1.14.0",
        runtime_after="2.3.0",
        metrics=[
            MetricChange(runtime="r", output="y", metric="rel_rmse", before=0.01, after=0.0105),
            MetricChange(runtime="r", output="y", metric="cosine", before=0.999, after=0.998),
        ],
    )
    findings = check_regressions(config, change)
    assert [(f.key, f.location.line if f.location else None) for f in findings] == [
        ("allow_min_runtime_increase", 6),
        ("max_metric_worsening", 7),
    ]
    assert "it needs runtime 2.3.0, the baseline needed 1.14.0" in findings[0].message
    assert "cosine 0.999 → 0.998 (100.0% worse)" in findings[1].message
    assert check_regressions(config, change.model_copy(update={"presence": "new"})) == []


def test_a_variant_that_did_not_convert_has_no_op_changes() -> None:
    ops = [OpInfo(name="CONV_2D", kind="builtin", version=3, count=1)]
    inspected = Inspection(
        size_bytes=10, schema_version=3, subgraphs=1, ops=ops, inputs=[], outputs=[], signatures=[]
    )
    failed = VariantReport(name="v", quantization="none", io="float32", status="conversion-failed")
    fixed = failed.model_copy(update={"status": "converted", "inspection": inspected})
    change = variant_change("m", failed, fixed)
    assert (change.ops_added, change.ops_removed, change.versions) == ([], [], [])


CNN = """\
import keras


def build() -> keras.Model:
    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3), batch_size=1, name="image")
    x = image
    for _ in range({convs}):
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    logits = keras.layers.Dense(4, name="logits")(keras.layers.Flatten()(x))
    return keras.Model(image, logits)
"""

CNN_POLICY = """\
version: 1
defaults:
  regression:
    max_metric_worsening: 10%
models:
  - name: cnn
    source: cnn:build
    variants:
      - {name: float}
      - {name: int8, quantization: int8}
"""


@pytest.mark.slow
def test_one_more_conv_gives_one_finding_per_worse_output_and_the_op_count(
    tmp_path: Path,
) -> None:
    (tmp_path / "tflite-gate.yml").write_text(CNN_POLICY)
    (tmp_path / "cnn.py").write_text(CNN.format(convs=2))
    base = tmp_path / "base.json"
    assert run_gate(tmp_path, "--no-cache", report=base).returncode == 0
    (tmp_path / "cnn.py").write_text(CNN.format(convs=3))
    run = run_gate(tmp_path, "--no-cache", "--baseline", str(base))
    assert run.report is not None, run.stderr

    changes = {change["variant"]: change for change in run.report["baseline"]["variants"]}
    for change in changes.values():
        assert [count for count in change["counts"] if count["op"] == "CONV_2D"] == [
            {"op": "CONV_2D", "before": 2, "after": 3}
        ]
        for item in change["metrics"]:  # only what reads differently
            assert format_number(item["before"], 6) != format_number(item["after"], 6), item
    assert "CONV_2D x2→x3" in run.stdout

    findings = run.findings(rule="baseline-regression")
    outputs = [(f["variant"], f["details"]["runtime"], f["output"]) for f in findings]
    assert len(outputs) == len(set(outputs))  # one finding per output
    too_worse = {
        (variant, item["runtime"], item["output"], item["metric"])
        for variant, change in changes.items()
        for item in change["metrics"]
        if (worse := metric_worsening(item["metric"], item["before"], item["after"])) is not None
        and worse > 0.1
    }
    named = {
        (f["variant"], f["details"]["runtime"], f["output"], item["metric"])
        for f in findings
        for item in f["details"]["metrics"]
    }
    assert named == too_worse
    assert len(too_worse) > len(findings)  # several metrics of one output got worse
    assert run.returncode == 1

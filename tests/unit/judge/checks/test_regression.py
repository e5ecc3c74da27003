"""What the policy's `regression:` section forbids against the baseline report, each at
the key that forbids it: a bigger model, new ops, a newer runtime, worse metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.support.check_facts import line_of, resolved_model
from tflite_gate.judge import checks
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import MetricChange, OpVersionChange, VariantChange

STRICT = """\
    version: 1
    models:
      - name: m
        source: m.keras
        regression:
          max_size_increase: 10%
          allow_new_ops: false
          allow_min_runtime_increase: false
          max_metric_worsening: 10%
    """


@pytest.fixture
def strict(tmp_path: Path) -> ModelConfig:
    """A model whose regression section forbids everything it can."""
    return resolved_model(tmp_path, STRICT)


def test_a_worse_output_is_one_baseline_finding_naming_each_worse_metric(
    tmp_path: Path,
) -> None:
    config = resolved_model(
        tmp_path,
        "version: 1\nmodels:\n  - name: m\n    source: m.keras\n    regression:\n"
        "      max_metric_worsening: 10%\n",
    )
    worse = {"max_abs": (0.01, 0.02), "mean_abs": (0.002, 0.003), "rmse": (0.003, 0.0045)}
    worse |= {"rel_rmse": (0.03, 0.04), "cosine": (0.999, 0.998), "top1": (0.95, 0.9)}
    change = VariantChange(
        model="m",
        variant="int8",
        metrics=[
            *(
                MetricChange(runtime="r", output="y", metric=metric, before=old, after=new)
                for metric, (old, new) in worse.items()
            ),
            MetricChange(runtime="r", output="y", metric="snr_db", before=40.0, after=30.0),
            MetricChange(runtime="r", output="z", metric="rmse", before=0.01, after=0.0105),
            MetricChange(runtime="r", output="z", metric="max_abs", before=0.01, after=0.05),
        ],
    )
    findings = checks.check_regressions(config, change)
    assert [(f.output, f.location.line if f.location else None) for f in findings] == [
        ("y", 6),
        ("z", 6),
    ]
    y, z = findings
    assert [item["metric"] for item in y.details["metrics"]] == list(worse)
    assert [item["metric"] for item in z.details["metrics"]] == ["max_abs"]
    assert y.message.startswith(
        "m/int8: find what made output 'y' worse on r, or raise regression.max_metric_worsening:"
    )
    assert "max_abs 0.01 → 0.02 (100.0% worse)" in y.message
    assert "cosine 0.999 → 0.998 (100.0% worse)" in y.message
    assert y.message.endswith("against the baseline (at most 10.0% worse)")


def test_a_model_that_grew_past_the_allowed_share(strict: ModelConfig) -> None:
    grown = VariantChange(model="m", variant="int8", size_before=1000, size_after=1200)
    [finding] = checks.check_regressions(strict, grown)
    assert (finding.rule, finding.key) == ("baseline-regression", "max_size_increase")
    assert finding.message == (
        "m/int8: shrink the model or raise regression.max_size_increase: 1200 bytes is 20.0% "
        "more than the baseline's 1000 (at most 10.0%)"
    )
    assert finding.details == {"before": 1000, "after": 1200}
    assert finding.location is not None
    assert finding.location.line == line_of("max_size_increase", STRICT)
    within = grown.model_copy(update={"size_after": 1100})
    assert checks.check_regressions(strict, within) == []


def test_new_ops_are_a_regression_only_where_the_policy_forbids_them(
    strict: ModelConfig, tmp_path: Path
) -> None:
    added = VariantChange(model="m", variant="int8", ops_added=["GATHER", "TANH"])
    [finding] = checks.check_regressions(strict, added)
    assert finding.message == (
        "m/int8: remove the new op(s) or set regression.allow_new_ops: true: GATHER, TANH not in "
        "the baseline"
    )
    assert finding.details == {"ops": ["GATHER", "TANH"]}
    allowing = resolved_model(tmp_path, "version: 1\nmodels:\n  - {name: m, source: m.keras}\n")
    assert checks.check_regressions(allowing, added) == []  # the default allows new ops


def test_a_newer_runtime_names_the_ops_whose_versions_went_up(strict: ModelConfig) -> None:
    bumped = VariantChange(
        model="m",
        variant="dynamic",
        runtime_before="2.14.0",
        runtime_after="2.17.0",
        versions=[
            OpVersionChange(op="FULLY_CONNECTED", before=9, after=12),
            OpVersionChange(op="ADD", before=3, after=2),
        ],
    )
    [finding] = checks.check_regressions(strict, bumped)
    assert finding.message == (
        "m/dynamic: keep the ops the baseline used or set regression.allow_min_runtime_increase: "
        "true: it needs runtime 2.17.0, the baseline needed 2.14.0 (FULLY_CONNECTED v9→v12)"
    )
    assert finding.key == "allow_min_runtime_increase"


def test_a_runtime_that_is_no_version_or_went_down_is_no_regression(
    strict: ModelConfig,
) -> None:
    """The baseline is a file from elsewhere: what it says is never trusted to raise."""
    odd = VariantChange(model="m", variant="v", runtime_before="garbage", runtime_after="2.17.0")
    older = VariantChange(model="m", variant="v", runtime_before="2.17.0", runtime_after="2.14.0")
    assert checks.check_regressions(strict, odd) == []
    assert checks.check_regressions(strict, older) == []


def test_a_variant_new_or_gone_is_not_compared(strict: ModelConfig) -> None:
    for presence in ("new", "gone"):
        change = VariantChange(
            model="m", variant="v", presence=presence, size_before=1, size_after=10**6
        )
        assert checks.check_regressions(strict, change) == []


@pytest.mark.parametrize(
    ("metric", "before", "after", "share"),
    [
        ("max_abs", 0.01, 0.03, 2.0),
        ("rmse", 0.02, 0.01, -0.5),  # better
        ("cosine", 0.999, 0.998, 1.0),  # the disagreement doubled
        ("top1", 0.9, 0.8, 1.0),
        ("max_abs", 0.0, 0.01, None),  # no error before: no share of it
        ("cosine", 1.0, 0.9, None),
        ("snr_db", 40.0, 30.0, None),  # a ratio already
        ("max_abs", math.inf, 1.0, None),
    ],
)
def test_metric_worsening_is_a_share_of_the_baselines_error(
    metric: str, before: float, after: float, share: float | None
) -> None:
    worsening = checks.metric_worsening(metric, before, after)
    assert worsening == (pytest.approx(share) if share is not None else None)

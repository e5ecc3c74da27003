"""Checks of what the comparison decided: non-finite outputs, each broken threshold at
the policy line that set it, and thresholds that were not (or could not be) applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.check_facts import (
    line_of,
    nan_run,
    op,
    output_metrics,
    resolved_model,
    runtime_run,
    variant,
    violated_run,
)
from tflite_gate.judge import checks
from tflite_gate.judge.compare import OutputPlan, compare_run
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import ModelReport, RuntimeRun, SkippedThreshold, VariantReport


def test_non_finite_outputs_name_uninitialised_variables_as_the_cause(
    configs: list[ModelConfig],
) -> None:
    stateful = variant(op("VAR_HANDLE"), op("READ_VARIABLE"), op("FULLY_CONNECTED"))
    [finding] = checks.check_divergence(configs[0], stateful, nan_run())
    assert finding.rule == "non-finite"
    assert "nothing else was compared" in finding.message
    assert "likely cause: resource variables (VAR_HANDLE, READ_VARIABLE) were not frozen" in (
        finding.message
    )
    initialised = variant(op("VAR_HANDLE"), op("READ_VARIABLE"), op("CALL_ONCE"))
    [finding] = checks.check_divergence(configs[0], initialised, nan_run())
    assert "likely cause" not in finding.message


def test_some_non_finite_values_say_what_the_metrics_cover(configs: list[ModelConfig]) -> None:
    partly = RuntimeRun(
        runtime="ai-edge-litert",
        status="non-finite",
        metrics=[output_metrics(compared=12, non_finite=4)],
    )
    [finding] = checks.check_divergence(configs[0], variant(), partly)
    assert finding.message == (
        "m/v on ai-edge-litert: output 'y' has 4 value(s) where one side is NaN/Inf and the "
        "other is not (or NaN vs Inf), metrics cover the 12 finite value(s) only"
    )
    assert finding.details == {"count": 4, "compared": 12}
    assert finding.location == configs[0].source_location


@pytest.mark.parametrize(
    ("cosine", "threshold", "said"),
    [
        (0.9999949, 0.999995, "cosine 0.9999949 is below min_cosine 0.999995"),
        (0.9299999999999999, 0.95, "cosine 0.93 is below min_cosine 0.95"),
    ],
)
def test_a_divergence_message_shows_the_gap_to_the_threshold(
    configs: list[ModelConfig], cosine: float, threshold: float, said: str
) -> None:
    [finding] = checks.check_divergence(configs[0], variant(), violated_run(cosine, threshold))
    assert said in finding.message


THRESHOLDS = """\
    version: 1
    models:
      - name: d
        source: d.keras
        max_divergence:
          max_abs: 0.001
          per_output:
            probs: {min_cosine: 0.9999}
    """


def _compared(config: ModelConfig, reference: np.ndarray, actual: np.ndarray) -> RuntimeRun:
    """A run of output 'probs' judged by the real comparison against the model's thresholds."""
    plan = config.thresholds["float"]
    judged = compare_run(
        {"probs": reference},
        {"probs": actual},
        by_order=False,
        plan_for=lambda name, _: OutputPlan({k: s.value for k, s in plan.for_output(name).items()}),
    )
    return RuntimeRun(
        runtime="ai-edge-litert",
        status=judged.status,
        metrics=judged.metrics,
        violations=judged.violations,
        tightest=judged.tightest,
    )


def _float() -> VariantReport:
    return variant().model_copy(update={"name": "float"})


def test_each_broken_threshold_lands_at_its_own_line_with_the_tightest_passing_value(
    tmp_path: Path,
) -> None:
    config = resolved_model(tmp_path, THRESHOLDS)
    rng = np.random.default_rng(0)
    reference = rng.random((4, 10))
    run = _compared(config, reference, reference + 0.01 * rng.standard_normal((4, 10)))
    findings = checks.check_divergence(config, _float(), run)
    assert [(f.threshold_key, f.location.line if f.location else None) for f in findings] == [
        ("max_abs", line_of("max_abs", THRESHOLDS)),
        ("min_cosine", line_of("probs:", THRESHOLDS)),
    ]
    for finding in findings:
        tightest = run.tightest["probs"][str(finding.threshold_key)]
        assert f"(tightest passing: {finding.threshold_key}: {tightest})" in finding.message
        assert finding.details["tightest"] == run.tightest["probs"]
        assert (finding.rule, finding.output) == ("divergence", "probs")


def test_a_collapsed_output_says_quantization_collapsed_it(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, THRESHOLDS)
    reference = np.random.default_rng(1).random((4, 10))
    run = _compared(config, reference, np.zeros_like(reference))
    [first, *_] = checks.check_divergence(config, _float(), run)
    assert first.message.endswith(
        "; the converted output is the same for every sample (0 everywhere) while the source "
        "model's varies: quantization collapsed it (check that the calibration data covers the "
        "inputs' real range)"
    )


def test_a_broken_threshold_no_value_would_pass_says_so(configs: list[ModelConfig]) -> None:
    run = violated_run(-0.5, 0.9)
    [finding] = checks.check_divergence(configs[0], variant(), run)
    assert finding.message.endswith("(no threshold of this kind would pass)")
    assert finding.location == configs[0].source_location  # the threshold is written nowhere


def test_the_first_runtime_is_the_reference_not_an_uncompared_run(
    two_runtimes: ModelConfig,
) -> None:
    first = RuntimeRun(runtime="ai-edge-litert", status="ran")
    old = RuntimeRun(runtime="tflite-runtime==2.14.0", status="passed", compared_with="x 1")
    assert checks.check_uncompared_thresholds(two_runtimes, _as_is(first, old)) == []
    assert checks.check_uncompared_thresholds(two_runtimes, _as_is(first)) == []  # a shard
    gone = RuntimeRun(runtime="ai-edge-litert", status="crash")
    alone = RuntimeRun(runtime="tflite-runtime==2.14.0", status="ran")
    (notice,) = checks.check_uncompared_thresholds(two_runtimes, _as_is(gone, alone))
    assert notice.message.startswith("t: make the first runtime, ai-edge-litert, run ")
    assert notice.details["reference_runtime"] == "ai-edge-litert"


def _as_is(*runs: RuntimeRun) -> ModelReport:
    as_is = VariantReport(
        name="tflite", quantization="as-is", io="as-is", status="not-converted", runs=list(runs)
    )
    return ModelReport(name="t", source="m.tflite", variants=[as_is])


def test_a_divergence_names_the_runtime_it_was_compared_with(two_runtimes: ModelConfig) -> None:
    run = nan_run()
    run.runtime, run.compared_with = "tflite-runtime==2.14.0", "ai-edge-litert 2.3.0"
    [finding] = checks.check_divergence(two_runtimes, variant(), run)
    assert finding.message.startswith(
        "t/v on tflite-runtime==2.14.0 vs ai-edge-litert 2.3.0: output 'y' has 16 value(s)"
    )
    assert finding.details["compared_with"] == "ai-edge-litert 2.3.0"


ALONE = """\
    version: 1
    models:
      - name: t
        source: m.tflite
        max_divergence: {max_abs: 0.001}
    """


def test_a_threshold_on_a_run_with_nothing_to_compare_with_is_a_notice_at_its_line(
    tmp_path: Path,
) -> None:
    config = resolved_model(tmp_path, ALONE)
    [notice] = checks.check_uncompared_thresholds(config, _as_is(runtime_run("x", "ran")))
    assert (notice.rule, notice.severity.value) == ("threshold-not-applied", "notice")
    assert notice.message == (
        "t: add `reference:` (the model this .tflite was made from) to apply max_divergence: "
        "without it the outputs have nothing to be compared with, so no threshold was checked"
    )
    assert notice.location is not None and notice.location.line == line_of("max_div", ALONE)
    referenced = resolved_model(tmp_path, ALONE + "    reference: m.keras\n")
    assert checks.check_uncompared_thresholds(referenced, _as_is(runtime_run("x", "ran"))) == []


def _skipping(*skipped: SkippedThreshold) -> ModelReport:
    runs = [
        RuntimeRun(runtime=name, status="passed", skipped_thresholds=list(skipped))
        for name in ("a", "b")
    ]
    variants = [
        VariantReport(name=v, quantization="none", io="float32", status="converted", runs=runs)
        for v in ("float", "int8")
    ]
    return ModelReport(name="d", source="d.keras", variants=variants)


def test_a_skipped_threshold_is_said_once_per_output(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, THRESHOLDS)
    implicit = SkippedThreshold(output="box", threshold_key="min_top1", reason="not classes")
    explicit = SkippedThreshold(
        output="probs", threshold_key="min_cosine", reason="it has no values", explicit=True
    )
    findings = checks.check_skipped_thresholds(config, _skipping(implicit, explicit))
    assert [(f.rule, f.message) for f in findings] == [
        ("threshold-not-applied", "d: min_top1 was not applied to output 'box': not classes"),
        ("policy-invalid", "d: min_cosine cannot apply to output 'probs': it has no values"),
    ]
    assert findings[1].location is not None
    assert findings[1].location.line == line_of("probs:", THRESHOLDS)
    assert findings[0].location == config.source_location  # no min_top1 is written


def test_classification_names_the_model_does_not_output_are_a_typo(
    two_runtimes: ModelConfig,
) -> None:
    outputs = RuntimeRun(
        runtime="ai-edge-litert",
        status="passed",
        metrics=[output_metrics("logits"), output_metrics("box")],
    )
    [finding] = checks.check_classification_names(two_runtimes, _as_is(outputs))
    assert (finding.rule, finding.message) == (
        "policy-invalid",
        "t: classification names 'probs', which the model does not output; its outputs are "
        "box, logits",
    )
    assert finding.location is not None and finding.location.line == 6
    named = RuntimeRun(runtime="x", status="passed", metrics=[output_metrics("probs")])
    assert checks.check_classification_names(two_runtimes, _as_is(named)) == []
    assert checks.check_classification_names(two_runtimes, _as_is(runtime_run("x", "crash"))) == []

"""Checks of what the comparison decided: non-finite outputs, broken thresholds at
the policy line that set them, and thresholds that were not applied.
"""

from __future__ import annotations

from typing import Any

from tflite_gate.findings import Finding, Location, RuleId
from tflite_gate.judge.checks.inspection import UNFROZEN_FIX, uninitialised_variable_ops
from tflite_gate.judge.compare import MAX_METRICS
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.policy.schema import runtime_name
from tflite_gate.report.model import (
    ModelReport,
    OutputMetrics,
    RuntimeRun,
    SkippedThreshold,
    ThresholdViolation,
    VariantReport,
)
from tflite_gate.report.text import (
    AGREEMENT_METRICS,
    format_number,
    format_threshold,
)
from tflite_gate.rules import make_finding


def _unfrozen_variables_cause(variant: VariantReport) -> str:
    """A likely cause of garbage outputs the flatbuffer shows: variables never initialised."""
    found = uninitialised_variable_ops(variant)
    if not found:
        return ""
    names = ", ".join(op.name for op in found)
    return f"; likely cause: resource variables ({names}) were not frozen: {UNFROZEN_FIX}"


def _collapse_note(metrics: OutputMetrics) -> str:
    if not metrics.collapsed:
        return ""
    value = f" ({metrics.collapsed_to:g} everywhere)" if metrics.collapsed_to is not None else ""
    return (
        f"; the converted output is the same for every sample{value} while the source "
        "model's varies: quantization collapsed it (check that the calibration data covers "
        "the inputs' real range)"
    )


def _violation_text(violation: ThresholdViolation) -> str:
    comparison = "above" if violation.threshold_key in MAX_METRICS else "below"
    shown = violation.infinite or format_number(
        violation.value,
        threshold=violation.threshold,
        agreement=violation.metric in AGREEMENT_METRICS,
    )
    sample = (
        f", worst sample {violation.worst_sample}" if violation.worst_sample is not None else ""
    )
    return (
        f"{violation.metric} {shown} is {comparison} {violation.threshold_key} "
        f"{format_threshold(violation.threshold)}{sample}"
    )


def check_divergence(config: ModelConfig, variant: VariantReport, run: RuntimeRun) -> list[Finding]:
    """Non-finite outputs, and each broken threshold at the policy line that set it.

    Reads what the comparison decided (`run.metrics`, `run.violations`): nothing here
    re-derives a verdict from numbers.
    """
    plan = config.thresholds.get(variant.name)
    common: dict[str, Any] = {"model": config.name, "variant": variant.name, "runtime": run.runtime}
    where = f"{config.name}/{variant.name} on {run.runtime}"
    versus: dict[str, Any] = {}
    if run.compared_with is not None:  # another runtime's outputs were the reference
        where += f" vs {run.compared_with}"
        versus = {"compared_with": run.compared_with}
    by_output = {metrics.output: metrics for metrics in run.metrics}
    findings: list[Finding] = []
    for metrics in run.metrics:
        if not metrics.non_finite:
            continue
        compared = (
            "nothing else was compared"
            if metrics.compared == 0
            else f"metrics cover the {metrics.compared} finite value(s) only"
        )
        findings.append(
            make_finding(
                "non-finite",
                f"{where}: output {metrics.output!r} has {metrics.non_finite} value(s) where one "
                "side is NaN/Inf and the other is not (or NaN vs Inf), "
                f"{compared}"
                f"{_unfrozen_variables_cause(variant)}",
                location=config.source_location,
                output=metrics.output,
                details={
                    "count": metrics.non_finite,
                    "compared": metrics.compared,
                    **versus,
                },
                **common,
            )
        )
    for violation in run.violations:
        settings = plan.for_output(violation.output) if plan else {}
        setting = settings.get(violation.threshold_key)
        tightest = run.tightest.get(violation.output, {})
        suggestion = tightest.get(violation.threshold_key)
        passing = (
            f" (tightest passing: {violation.threshold_key}: {suggestion})"
            if suggestion is not None
            else " (no threshold of this kind would pass)"
        )
        measured = by_output.get(violation.output)
        note = _collapse_note(measured) if measured is not None else ""
        findings.append(
            make_finding(
                "divergence",
                f"{where}: output {violation.output!r} {_violation_text(violation)}{passing}"
                f"{note}{_unfrozen_variables_cause(variant)}",
                location=(setting.location if setting else None) or config.source_location,
                output=violation.output,
                threshold_key=violation.threshold_key,
                metric=violation.metric,
                infinite=violation.infinite,
                details={
                    "value": violation.value,
                    "threshold": violation.threshold,
                    "worst_sample": violation.worst_sample,
                    "tightest": tightest,
                    **versus,
                },
                **common,
            )
        )
    return findings


def check_skipped_thresholds(config: ModelConfig, model: ModelReport) -> list[Finding]:
    """Once per model and output: a threshold that was not applied, and why.

    A model-wide min_top1 that does not fit an output is a notice (the policy meant the
    classification outputs); one written for that very output is a policy error.
    """
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for variant in model.variants:
        plan = config.thresholds.get(variant.name)
        for run in variant.runs:
            for skipped in run.skipped_thresholds:
                key = (skipped.output, skipped.threshold_key)
                if key in seen:
                    continue
                seen.add(key)
                setting = plan.for_output(skipped.output).get(key[1]) if plan else None
                location = (setting.location if setting else None) or config.source_location
                findings.append(_skipped_threshold_finding(config, skipped, location))
    return findings


def _skipped_threshold_finding(
    config: ModelConfig, skipped: SkippedThreshold, location: Location
) -> Finding:
    rule: RuleId = "policy-invalid" if skipped.explicit else "threshold-not-applied"
    what = "cannot apply to" if skipped.explicit else "was not applied to"
    return make_finding(
        rule,
        f"{config.name}: {skipped.threshold_key} {what} output {skipped.output!r}: "
        f"{skipped.reason}",
        model=config.name,
        location=location,
        output=skipped.output,
        threshold_key=skipped.threshold_key,
        details={"reason": skipped.reason, "explicit": skipped.explicit},
    )


def check_uncompared_thresholds(config: ModelConfig, model: ModelReport) -> list[Finding]:
    """Thresholds inherited by a run that had nothing to compare with: say so once.

    A .tflite source without `reference:` runs, but its outputs have no reference; a
    `max_divergence` from `defaults` then judges nothing, which must not pass unnoticed.
    On several runtimes the first one's outputs are the others' reference: its own run
    is not compared, and the others are not when it gave no outputs.
    """
    if config.reference.value is not None:  # a failed reference is reported on its own
        return []
    names = [runtime_name(item) for item in config.runtimes.value]
    first = names[0] if len(names) > 1 else None
    for variant in model.variants:
        plan = config.thresholds.get(variant.name)
        written = [s for s in (plan.all_settings() if plan else []) if s.location is not None]
        uncompared = [r for r in variant.runs if r.status == "ran" and r.runtime != first]
        if written and uncompared:
            return [
                make_finding(
                    "threshold-not-applied",
                    f"{config.name}: {_uncompared_fix(first)}, so no threshold was checked",
                    model=config.name,
                    location=written[0].location,
                    details={"reason": "no reference", "reference_runtime": first},
                )
            ]
    return []


def _uncompared_fix(first_runtime: str | None) -> str:
    if first_runtime is None:
        return (
            "add `reference:` (the model this .tflite was made from) to apply max_divergence: "
            "without it the outputs have nothing to be compared with"
        )
    return (
        f"make the first runtime, {first_runtime}, run (its outputs are the reference of the "
        "other runtimes), or add `reference:`: no other runtime's outputs were compared"
    )


def check_classification_names(config: ModelConfig, model: ModelReport) -> list[Finding]:
    """`classification:` names that are not outputs of the model: a typo, not a choice."""
    declared = config.classification.value
    outputs = {
        metrics.output
        for variant in model.variants
        for run in variant.runs
        for metrics in run.metrics
    }
    if declared is None or not outputs:
        return []
    unknown = [name for name in declared if name not in outputs]
    if not unknown:
        return []
    return [
        make_finding(
            "policy-invalid",
            f"{config.name}: classification names {', '.join(map(repr, unknown))}, which the "
            f"model does not output; its outputs are {', '.join(sorted(outputs))}",
            model=config.name,
            location=config.classification.location or config.source_location,
            details={"unknown": unknown, "outputs": sorted(outputs)},
        )
    ]

"""This run against an earlier report: size, ops, op versions and counts, runtime, metrics, latency.

A pull request that makes a model 30% bigger, adds an op or needs a newer runtime may
still pass every absolute limit; the base branch's report says what it was before.
Variants are matched by model and variant name, runs by runtime, metrics by output.
A metric counts as changed only when it prints differently, so float rounding is
never a change (nor, through `max_metric_worsening`, a regression).
Only the comparison lives here; `checks.check_regressions` turns the changes the
policy's `regression:` section forbids into findings.
"""

from __future__ import annotations

from collections import Counter
from typing import get_args

from tflite_gate.report.model import (
    FLOAT_ROUNDING_REL_RMSE,
    BaselineComparison,
    LatencyChange,
    MetricChange,
    MetricName,
    OpCountChange,
    OpVersionChange,
    OutputMetrics,
    Report,
    VariantChange,
    VariantReport,
)
from tflite_gate.report.text import reads_differently

METRICS: tuple[MetricName, ...] = get_args(MetricName)


def _builtin_ops(variant: VariantReport) -> dict[str, int]:
    if variant.inspection is None:
        return {}
    return {op.name: op.version for op in variant.inspection.ops}


def _op_counts(variant: VariantReport) -> Counter[str]:
    """How often each op occurs, all its versions together (a second CONV_2D is news)."""
    counts: Counter[str] = Counter()
    for op in variant.inspection.ops if variant.inspection else []:
        counts[op.name] += op.count
    return counts


def _count_changes(before: VariantReport, after: VariantReport) -> list[OpCountChange]:
    old, new = _op_counts(before), _op_counts(after)
    return [
        OpCountChange(op=op, before=old[op], after=count)
        for op, count in sorted(new.items())
        if op in old and old[op] != count
    ]


def _both_float_rounding(before: OutputMetrics, after: OutputMetrics) -> bool:
    """Both runs' error is float rounding: 3.7e-9 → 7.5e-9 is no regression, nor a change.

    Doubling a rounding error reads as "100% worse" although neither run lost any
    accuracy; such an output's metrics are neither listed nor gated.
    """
    return all(
        value is not None and value <= FLOAT_ROUNDING_REL_RMSE
        for value in (before.rel_rmse, after.rel_rmse)
    )


def _metric_changes(before: VariantReport, after: VariantReport) -> list[MetricChange]:
    earlier = {run.runtime: {m.output: m for m in run.metrics} for run in before.runs}
    found: list[MetricChange] = []
    for run in after.runs:
        outputs = earlier.get(run.runtime, {})
        for metrics in run.metrics:
            old = outputs.get(metrics.output)
            if old is None or _both_float_rounding(old, metrics):
                continue
            found += [
                MetricChange(
                    runtime=run.runtime,
                    output=metrics.output,
                    metric=metric,
                    before=old.value(metric),
                    after=metrics.value(metric),
                )
                for metric in METRICS
                if reads_differently(old.value(metric), metrics.value(metric))
            ]
    return found


def _latency_changes(before: VariantReport, after: VariantReport) -> list[LatencyChange]:
    earlier = {run.runtime: run.latency_ms for run in before.runs}
    return [
        LatencyChange(runtime=run.runtime, before_ms=old, after_ms=run.latency_ms)
        for run in after.runs
        if run.latency_ms is not None and (old := earlier.get(run.runtime)) is not None
    ]


def variant_change(model: str, before: VariantReport, after: VariantReport) -> VariantChange:
    """What changed in one variant since the baseline."""
    inspected = before.inspection is not None and after.inspection is not None
    # A side that was not converted has no ops to compare, not an empty op set.
    old_ops, new_ops = (_builtin_ops(before), _builtin_ops(after)) if inspected else ({}, {})
    counts = _count_changes(before, after) if inspected else []
    return VariantChange(
        model=model,
        variant=after.name,
        size_before=before.inspection.size_bytes if before.inspection else None,
        size_after=after.inspection.size_bytes if after.inspection else None,
        ops_added=sorted(set(new_ops) - set(old_ops)),
        ops_removed=sorted(set(old_ops) - set(new_ops)),
        versions=[
            OpVersionChange(op=op, before=old_ops[op], after=version)
            for op, version in sorted(new_ops.items())
            if op in old_ops and old_ops[op] != version
        ],
        counts=counts,
        runtime_before=before.inspection.required_runtime if before.inspection else None,
        runtime_after=after.inspection.required_runtime if after.inspection else None,
        metrics=_metric_changes(before, after),
        latency=_latency_changes(before, after),
    )


def compare_with_baseline(report: Report, baseline: Report, shown_as: str) -> BaselineComparison:
    """Every variant of `report` against its namesake in `baseline` (new ones marked)."""
    earlier = {
        (model.name, variant.name): variant
        for model in baseline.models
        for variant in model.variants
    }
    changes: list[VariantChange] = []
    seen: set[tuple[str, str]] = set()
    for model in report.models:
        for variant in model.variants:
            key = (model.name, variant.name)
            seen.add(key)
            old = earlier.get(key)
            changes.append(
                variant_change(model.name, old, variant)
                if old is not None
                else VariantChange(model=model.name, variant=variant.name, presence="new")
            )
    checked = {model.name for model in report.models}
    changes += [
        VariantChange(model=model, variant=variant, presence="gone")
        for (model, variant) in earlier
        if model in checked and (model, variant) not in seen
    ]
    return BaselineComparison(
        report=shown_as,
        started_at=baseline.started_at,
        tool_version=baseline.tool.version,
        variants=changes,
    )

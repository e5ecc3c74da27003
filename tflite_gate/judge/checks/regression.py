"""What the policy's `regression:` section forbids, against the baseline report."""

from __future__ import annotations

import math
from typing import Any

from tflite_gate.findings import Finding
from tflite_gate.judge.checks.common import setting_location, version_less
from tflite_gate.judge.compare import MAX_METRICS
from tflite_gate.policy.resolve import ModelConfig, Setting
from tflite_gate.report.model import (
    MetricChange,
    VariantChange,
)
from tflite_gate.report.text import metric_change_text
from tflite_gate.rules import make_finding


def _regression(
    config: ModelConfig, change: VariantChange, setting: Setting[Any], text: str, **details: Any
) -> Finding:
    return make_finding(
        "baseline-regression",
        f"{config.name}/{change.variant}: {text}",
        location=setting_location(setting, config),
        key=details.pop("key"),
        output=details.pop("output", None),
        details=details,
        model=config.name,
        variant=change.variant,
    )


def _size_regression(config: ModelConfig, change: VariantChange) -> list[Finding]:
    allowed = config.max_size_increase
    before, after = change.size_before, change.size_after
    if (
        allowed.value is None
        or not before
        or after is None
        or after <= before * (1 + allowed.value)
    ):
        return []
    grown = (after - before) / before
    text = (
        f"shrink the model or raise regression.max_size_increase: {after} bytes is {grown:.1%} "
        f"more than the baseline's {before} (at most {allowed.value:.1%})"
    )
    return [
        _regression(
            config, change, allowed, text, key="max_size_increase", before=before, after=after
        )
    ]


def _op_regression(config: ModelConfig, change: VariantChange) -> list[Finding]:
    if config.allow_new_ops.value or not change.ops_added:
        return []
    text = (
        f"remove the new op(s) or set regression.allow_new_ops: true: "
        f"{', '.join(change.ops_added)} not in the baseline"
    )
    return [
        _regression(
            config, change, config.allow_new_ops, text, key="allow_new_ops", ops=change.ops_added
        )
    ]


def _runtime_regression(config: ModelConfig, change: VariantChange) -> list[Finding]:
    before, after = change.runtime_before, change.runtime_after
    if config.allow_min_runtime_increase.value or not before or not after:
        return []
    if not version_less(before, after):  # the baseline is a file from elsewhere: never trust it
        return []
    bumped = ", ".join(
        f"{v.op} v{v.before}→v{v.after}" for v in change.versions if v.after > v.before
    )
    why = f" ({bumped})" if bumped else ""
    text = (
        "keep the ops the baseline used or set regression.allow_min_runtime_increase: true: "
        f"it needs runtime {after}, the baseline needed {before}{why}"
    )
    setting = config.allow_min_runtime_increase
    return [
        _regression(
            config,
            change,
            setting,
            text,
            key="allow_min_runtime_increase",
            before=before,
            after=after,
        )
    ]


def metric_worsening(metric: str, before: float, after: float) -> float | None:
    """How much worse `after` is, as a share of the baseline's error; None: not relative.

    Error metrics compare themselves; cosine and top-1 compare their distance from 1
    (0.9990 → 0.9980 doubles the disagreement). A baseline without error (0, or a
    perfect cosine) gives no share to compare with, and the SNR is a ratio already.
    """
    if not (math.isfinite(before) and math.isfinite(after)):
        return None  # an infinite baseline is no share to compare with
    if metric in MAX_METRICS:
        return (after - before) / before if before > 0 else None
    if metric in ("cosine", "top1"):
        gap = 1.0 - before
        return ((1.0 - after) - gap) / gap if gap > 0 else None
    return None


def _worse_metrics(
    change: VariantChange, allowed: float
) -> dict[tuple[str, str], list[tuple[MetricChange, float]]]:
    """Each output's metrics that got worse by more than allowed, by (runtime, output)."""
    found: dict[tuple[str, str], list[tuple[MetricChange, float]]] = {}
    for item in change.metrics:
        if item.before is None or item.after is None:
            continue
        worse = metric_worsening(item.metric, item.before, item.after)
        if worse is not None and worse > allowed:
            found.setdefault((item.runtime, item.output), []).append((item, worse))
    return found


def _metric_regressions(config: ModelConfig, change: VariantChange) -> list[Finding]:
    """One finding per output: a layer that costs accuracy moves all its metrics at once."""
    allowed = config.max_metric_worsening
    if allowed.value is None:
        return []
    found = []
    for (runtime, output), worse in _worse_metrics(change, allowed.value).items():
        changes = ", ".join(
            f"{metric_change_text(item.metric, item.before, item.after)} ({share:.1%} worse)"
            for item, share in worse
        )
        text = (
            f"find what made output {output!r} worse on {runtime}, or raise "
            f"regression.max_metric_worsening: {changes} against the baseline "
            f"(at most {allowed.value:.1%} worse)"
        )
        metrics = [
            {"metric": item.metric, "before": item.before, "after": item.after, "worse": share}
            for item, share in worse
        ]
        found.append(
            _regression(
                config,
                change,
                allowed,
                text,
                key="max_metric_worsening",
                runtime=runtime,
                output=output,
                metrics=metrics,
            )
        )
    return found


def check_regressions(config: ModelConfig, change: VariantChange) -> list[Finding]:
    """What the policy's `regression:` section forbids, at the key that forbids it."""
    if change.presence != "both":
        return []
    return [
        *_size_regression(config, change),
        *_op_regression(config, change),
        *_runtime_regression(config, change),
        *_metric_regressions(config, change),
    ]

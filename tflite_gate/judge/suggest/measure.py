"""What was measured and how far a threshold loosens it: the worst finite value of
each broken threshold, and the value that lets its error grow by the margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tflite_gate.judge.compare import (
    MAX_METRICS,
    MIN_METRICS,
    round_down,
    round_up,
)
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.policy.resolve import ModelConfig, resolve_model
from tflite_gate.report.model import (
    ModelReport,
    OutputMetrics,
    Report,
    ThresholdKey,
    ThresholdViolation,
)

DIGITS = 2
"""Significant digits of a suggested value (rounded in the passing direction)."""


class SuggestionError(Exception):
    """The snippet would not make the thresholds pass: a bug, never shown as advice."""


def loosened(key: ThresholdKey, measured: float, margin: float) -> float:
    """The threshold that lets the error behind `measured` grow by `margin`.

    Error metrics grow with the error; cosine's distance from 1 grows with its square
    (1 - cos ≈ rel_rmse² / 2), the SNR drops by 20·log10(1 + margin) dB, and top-1
    disagreement grows like the error. Rounded to `DIGITS` significant digits, looser.
    """
    growth = 1.0 + margin
    if key in MAX_METRICS:
        return _looser_than(measured, measured * growth, round_up)
    if key == "min_cosine":
        gap = min((1.0 - measured) * growth**2, 2.0)
        return max(_one_minus(_looser_than(1.0 - measured, gap, round_up), measured), -1.0)
    if key == "min_snr_db":
        return math.floor((measured - 20 * math.log10(growth)) * 10) / 10
    if key == "min_top1":
        gap = min((1.0 - measured) * growth, 1.0)
        return max(_one_minus(_looser_than(1.0 - measured, gap, round_up), measured), 0.0)
    raise ValueError(f"unknown threshold {key!r}")


def _one_minus(gap: float, measured: float) -> float:
    """1 - `gap` as the decimal it stands for, never above `measured`.

    In binary 1 - 0.07 is 0.9299999999999999: a policy would carry that noise where
    0.93 was meant. When the decimal itself would not pass (a gap at the last bits of
    a float), the passing value is rounded down to 12 significant digits instead.
    """
    value = float(f"{1.0 - gap:.12g}")
    return value if value <= measured else round_down(min(1.0 - gap, measured), 12)


def _looser_than(measured: float, loose: float, rounded: Callable[[float, int], float]) -> float:
    """`loose` rounded to `DIGITS`, read as a decimal first: 0.001 * 4 is 0.0040000000000000036
    in binary and would round up to 0.0041. Never below `measured`."""
    tidy = rounded(float(f"{loose:.12g}"), DIGITS)
    return tidy if tidy >= measured else rounded(loose, DIGITS)


def worse(key: str, a: float, b: float) -> float:
    """The worse of two measurements for threshold `key`: the larger error, the lower agreement."""
    return max(a, b) if key in MAX_METRICS else min(a, b)


def metric_value(metrics: OutputMetrics, key: str) -> float | None:
    """The measured value threshold `key` is compared with (±inf included)."""
    metric = key if key in MAX_METRICS else MIN_METRICS[key]
    return metrics.value(metric)  # type: ignore[arg-type]  # a key's metric is a MetricName


@dataclass
class Broken:
    """A threshold key broken for one output of one variant, over all its runtimes."""

    output: str
    key: ThresholdKey
    threshold: float
    measured: float
    violation: ThresholdViolation


def broken_in(model: ModelReport, variant: str) -> dict[tuple[str, str], Broken]:
    """(output, key) → the worst measured value over the variant's runs; finite ones only:
    no threshold passes an infinite error, so those stay findings, not suggestions."""
    broken: dict[tuple[str, str], Broken] = {}
    for run in next(v for v in model.variants if v.name == variant).runs:
        by_output = {metrics.output: metrics for metrics in run.metrics}
        for violation in run.violations:
            metrics = by_output.get(violation.output)
            value = metric_value(metrics, violation.threshold_key) if metrics else None
            if value is None or not math.isfinite(value):
                continue
            found = broken.get((violation.output, violation.threshold_key))
            if found is None:
                broken[(violation.output, violation.threshold_key)] = Broken(
                    violation.output,
                    violation.threshold_key,
                    violation.threshold,
                    value,
                    violation,
                )
            else:
                found.measured = worse(violation.threshold_key, found.measured, value)
    return broken


def configured_models(
    report: Report, loaded: LoadedPolicy
) -> Iterator[tuple[ModelReport, ModelConfig]]:
    """Each model of the report the policy has, with its resolved settings."""
    indices = {model.name: index for index, model in enumerate(loaded.policy.models)}
    for model in report.models:
        if model.name in indices:
            yield model, resolve_model(loaded, indices[model.name])


def measured_text(measured: float, *beside: float) -> str:
    """`measured` with 6 significant digits, or as many more as it takes to tell it apart
    from the thresholds `beside` it and from 1: a cosine of 0.99999995 printed as 1 would
    look better than what was measured."""
    for digits in range(6, 18):
        text = f"{measured:.{digits}g}"
        shown = float(text)
        if shown not in beside and (shown == 1.0) == (measured == 1.0):
            return text
    return repr(measured)

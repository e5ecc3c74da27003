"""Metric values as text, the same way in every reporter.

A metric is a number, an infinity (`inf`, e.g. the SNR of identical outputs), or
nothing measured (`n/a`: no value was compared). Reporters never print a stand-in
number for the last two.
"""

from __future__ import annotations

import math

from tflite_gate.report.model import MetricName, OutputMetrics

NOT_MEASURED = "n/a"


def format_number(value: float | None, digits: int = 3) -> str:
    """Compact general format: `0.0116`, `7.45e-9`, `153`, `inf`; None is `n/a`."""
    if value is None:
        return NOT_MEASURED
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{digits}g}"
    mantissa, sep, exponent = text.partition("e")
    if sep:
        sign = "-" if exponent.startswith("-") else ""
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def format_metric(metrics: OutputMetrics, metric: MetricName, digits: int = 3) -> str:
    """One metric of one output: its number, `inf`/`-inf`, or `n/a`."""
    return format_number(metrics.value(metric), digits)


def metrics_line(metrics: OutputMetrics) -> str:
    """`probs: max_abs 0.0116 rel_rmse 0.0393 cosine 0.999226 snr_db 28.1 top1 1.000`."""
    parts = [
        f"max_abs {format_metric(metrics, 'max_abs')}",
        f"rel_rmse {format_metric(metrics, 'rel_rmse')}",
        f"cosine {format_metric(metrics, 'cosine', 6)}",
        f"snr_db {format_metric(metrics, 'snr_db')}",
    ]
    if metrics.top1 is not None:
        parts.append(f"top1 {metrics.top1:.3f}")
    if metrics.non_finite:
        parts.append(f"{metrics.non_finite} NaN/Inf")
    if metrics.compared == 0:
        parts.append("nothing compared")
    return f"{metrics.output}: " + " ".join(parts)

"""Metric values as text, the same way in every reporter.

A metric is a number, an infinity (`inf`, e.g. the SNR of identical outputs), or
nothing measured (`n/a`: no value was compared). Reporters never print a stand-in
number for the last two.
"""

from __future__ import annotations

import math

from tflite_gate.report.model import (
    CacheUse,
    LayerDiagnosis,
    MetricName,
    OutputMetrics,
    VariantChange,
)

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


AGREEMENT_METRICS = ("cosine", "top1")
"""Metrics whose best value is 1: rounding must never print a lower value as 1."""


def format_metric_value(metric: MetricName, value: float | None, digits: int = 3) -> str:
    """A metric's value: its number, `inf`/`-inf`, or `n/a`.

    A cosine of 0.99999997 is not a perfect match: agreement metrics get more digits
    until a value below 1 no longer reads as 1.
    """
    text = format_number(value, digits)
    if metric in AGREEMENT_METRICS and value is not None and value < 1.0:
        while float(text) >= 1.0 and digits < 17:
            digits += 1
            text = format_number(value, digits)
    return text


def format_metric(metrics: OutputMetrics, metric: MetricName, digits: int = 3) -> str:
    """One metric of one output, as `format_metric_value` writes it."""
    return format_metric_value(metric, metrics.value(metric), digits)


def metrics_line(metrics: OutputMetrics) -> str:
    """`probs: max_abs 0.0116 rel_rmse 0.0393 cosine 0.999226 snr_db 28.1 top1 1.000`."""
    parts = [
        f"max_abs {format_metric(metrics, 'max_abs')}",
        f"rel_rmse {format_metric(metrics, 'rel_rmse')}",
        f"cosine {format_metric(metrics, 'cosine', 6)}",
        f"snr_db {format_metric(metrics, 'snr_db')}",
    ]
    if metrics.top1 is not None:
        parts.append(f"top1 {format_metric(metrics, 'top1', 3)}")
    if metrics.non_finite:
        parts.append(f"{metrics.non_finite} NaN/Inf")
    if metrics.compared == 0:
        parts.append("nothing compared")
    return f"{metrics.output}: " + " ".join(parts)


def plural(count: int, word: str) -> str:
    """`1 error`, `2 errors`: counts users read in logs, summaries and outputs."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def counts(errors: int, warnings: int, notices: int) -> str:
    """`1 error, 0 warnings, 2 notices`."""
    return ", ".join(
        plural(n, word)
        for n, word in ((errors, "error"), (warnings, "warning"), (notices, "notice"))
    )


def cache_note(cache: CacheUse | None) -> str | None:
    """What a reader must know about the cache: results from an earlier run, or none kept."""
    if cache is None:
        return None
    if cache.status == "reused":
        when = (cache.converted_at or "?").replace("T", " ").replace("+00:00", " UTC")
        took = f" in {cache.original_s:.1f} s" if cache.original_s is not None else ""
        return f"reused from the cache: converted {when}{took}, not converted in this run"
    if cache.status == "not-stored" and cache.reason:
        return f"not kept in the cache: {cache.reason}"
    return None


def diagnosis_line(diagnosis: LayerDiagnosis) -> str:
    """One progress line: the top layer and whether a fix passed."""
    if diagnosis.error:
        return f"layers not measured: {diagnosis.error}"
    if not diagnosis.layers:
        return "no op output to compare"
    top = diagnosis.layers[0]
    head = f"most error added at {top.tensor!r} ({top.op}, {top.share:.0%})"
    if diagnosis.keep_float is not None:
        kept = keep_float_text(diagnosis.keep_float, diagnosis.keep_float_ops or [])
        return f"{head}; keep_float of {kept} passes on {diagnosis.runtime}"
    if diagnosis.trials:
        return f"{head}; no keep_float set tried passes ({len(diagnosis.trials)} tried)"
    return head


def keep_float_text(nodes: list[str], ops: list[str]) -> str:
    """What a keep_float set leaves in float, in words: "2 op outputs and every SOFTMAX"."""
    parts = [plural(len(nodes), "op output")] if nodes else []
    parts += [f"every {op}" for op in ops]
    return " and ".join(parts) or "nothing"


def format_size(n: int) -> str:
    """Bytes as people read them (the terminal and Markdown reporters share it)."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


CHANGE_DIGITS = 6
"""Significant digits a metric is compared with the baseline at, and printed with."""


def reads_differently(before: float | None, after: float | None) -> bool:
    """Whether two values of a metric differ when printed: the only changes worth a line.

    A float variant's cosine of 0.9999999999999997 against a baseline's 1.0 is
    rounding, not a change; listed, it reads "cosine 1 → 1".
    """
    return format_number(before, CHANGE_DIGITS) != format_number(after, CHANGE_DIGITS)


def metric_change_text(metric: MetricName, before: float | None, after: float | None) -> str:
    """`cosine 0.999 → 0.998`: both sides with the digits a change is judged at."""
    return (
        f"{metric} {format_metric_value(metric, before, CHANGE_DIGITS)} → "
        f"{format_metric_value(metric, after, CHANGE_DIGITS)}"
    )


_SHOWN_CHANGES: tuple[MetricName, ...] = ("max_abs", "rel_rmse", "cosine")


def _op_changes(change: VariantChange) -> str | None:
    ops = [f"+{op}" for op in change.ops_added] + [f"-{op}" for op in change.ops_removed]
    ops += [f"{v.op} v{v.before}→v{v.after}" for v in change.versions]
    ops += [f"{c.op} x{c.before}→x{c.after}" for c in change.counts]
    return f"ops {' '.join(ops)}" if ops else None


def _metric_changes(change: VariantChange) -> list[str]:
    """One phrase per output and runtime, with the shown metrics that read differently."""
    by_output: dict[tuple[str, str], list[str]] = {}
    for item in change.metrics:
        if item.metric in _SHOWN_CHANGES:
            by_output.setdefault((item.output, item.runtime), []).append(
                metric_change_text(item.metric, item.before, item.after)
            )
    parts = [
        f"{output} on {runtime}: {', '.join(changed)}"
        for (output, runtime), changed in by_output.items()
    ]
    others = sum(item.metric not in _SHOWN_CHANGES for item in change.metrics)
    if others:
        parts.append(f"{plural(others, 'other metric')} changed (see the report)")
    return parts


def change_parts(change: VariantChange) -> list[str]:
    """A variant's changes since the baseline as short phrases; empty when nothing changed."""
    if change.presence == "new":
        return ["new (not in the baseline)"]
    if change.presence == "gone":
        return ["gone (only in the baseline)"]
    parts = []
    before, after = change.size_before, change.size_after
    if before is not None and after is not None and before != after:
        grown = f" ({(after - before) / before:+.1%})" if before else ""
        parts.append(f"size {format_size(before)} → {format_size(after)}{grown}")
    ops = _op_changes(change)
    if ops:
        parts.append(ops)
    if change.runtime_before != change.runtime_after:
        parts.append(f"min runtime {change.runtime_before or '?'} → {change.runtime_after or '?'}")
    parts += _metric_changes(change)
    parts += [
        f"{item.runtime} {item.before_ms:.3g} → {item.after_ms:.3g} ms/invoke"
        for item in change.latency
    ]
    return parts

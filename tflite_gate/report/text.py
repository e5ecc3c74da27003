"""Metric values as text, the same way in every reporter.

A metric is a number, an infinity (`inf`, e.g. the SNR of identical outputs), or
nothing measured (`n/a`: no value was compared). Reporters never print a stand-in
number for the last two.
"""

from __future__ import annotations

import math
import re

from tflite_gate.report.model import (
    CacheUse,
    LayerDiagnosis,
    MetricName,
    OutputMetrics,
    VariantChange,
)

NOT_MEASURED = "n/a"


_MAX_DIGITS = 17
"""Significant digits that tell any two floats apart."""
_AGREEMENT_DIGITS = 9
"""How close to 1 an agreement metric is shown; closer is float noise (`0.9999999999999998`)."""


def format_number(
    value: float | None,
    digits: int = 3,
    *,
    threshold: float | None = None,
    agreement: bool = False,
) -> str:
    """A measured number with the digits that show its gap, and no more.

    `digits` significant digits (`0.0116`, `7.45e-9`, `153`, `inf`; None is `n/a`), more
    where a gap needs them: beside its `threshold` a value keeps two digits of the
    distance between them, so it is never printed equal to it or on its other side
    (`0.9999949` against `0.999995`, not `0.999995`). An `agreement` metric (best
    value 1) below 1 never reads as 1: it gets the digits of its distance from 1, up
    to float noise, which is shown as a bound (`>0.999999999`).
    """
    if value is None:
        return NOT_MEASURED
    if not math.isfinite(value):
        return _non_finite(value)
    if value == threshold:
        return format_threshold(value)  # no gap: the same text, not a rounded neighbour
    shown = max(1, digits)
    if threshold is not None and math.isfinite(threshold):
        shown = _digits_apart(value, threshold, shown)
    if agreement and value < 1.0:
        return _below_one(value, shown, threshold)
    return _general(value, shown)


def format_threshold(value: float) -> str:
    """A policy setting as it was written: the shortest text that reads back as `value`."""
    if not math.isfinite(value):
        return _non_finite(value)
    text = repr(float(value)).removesuffix(".0")
    return _short_exponent(text)


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _general(value: float, digits: int) -> str:
    """`{:g}` with a short exponent: `7.45e-9`, not `7.45e-09`."""
    return _short_exponent(f"{value:.{digits}g}")


def _short_exponent(text: str) -> str:
    mantissa, sep, exponent = text.partition("e")
    if not sep:
        return text
    sign = "-" if exponent.startswith("-") else ""
    return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"


def _exponent(value: float) -> int:
    return math.floor(math.log10(abs(value)))


def _digits_apart(value: float, threshold: float, digits: int) -> int:
    """Significant digits of `value` that show two digits of its distance to `threshold`
    and keep it on its own side of the threshold."""
    if value == 0:
        return digits
    gap = abs(value - threshold)
    needed = _exponent(value) - _exponent(gap) + 2 if gap > 0 else _MAX_DIGITS
    shown = min(max(digits, needed), _MAX_DIGITS)
    while shown < _MAX_DIGITS and not _same_side(float(_general(value, shown)), value, threshold):
        shown += 1
    return shown


def _same_side(shown: float, value: float, threshold: float) -> bool:
    return (shown > threshold, shown < threshold) == (value > threshold, value < threshold)


def _below_one(value: float, digits: int, threshold: float | None) -> str:
    """An agreement value below 1 that rounding must not lift to 1."""
    written = len(format_threshold(threshold).lstrip("-0.")) if threshold is not None else 0
    limit = max(digits, _AGREEMENT_DIGITS, written)
    for shown in range(digits, limit + 1):
        text = _general(value, shown)
        if float(text) < 1.0:
            return text
    return ">0." + "9" * limit


AGREEMENT_METRICS = ("cosine", "top1")
"""Metrics whose best value is 1: rounding must never print a lower value as 1."""


def format_metric_value(metric: MetricName, value: float | None, digits: int = 3) -> str:
    """A metric's value: its number, `inf`/`-inf`, or `n/a` (see `format_number`).

    A cosine of 0.99999997 is not a perfect match: an agreement metric below 1 never
    reads as 1.
    """
    return format_number(value, digits, agreement=metric in AGREEMENT_METRICS)


def format_metric(metrics: OutputMetrics, metric: MetricName, digits: int = 3) -> str:
    """One metric of one output, as `format_metric_value` writes it."""
    return format_metric_value(metric, metrics.value(metric), digits)


def metrics_line(metrics: OutputMetrics) -> str:
    """`probs: max_abs 0.0116 rel_rmse 0.0393 cosine 0.999226 snr_db 28.1 top1 1`."""
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


_SHOWN_LAYERS = 3
_VARIABLE_READ = re.compile(r"ReadVariableOp(_\d+)?")


def layer_name(tensor: str) -> str:
    """A converter tensor name shortened to the Keras layers it comes from.

    The converter names a fused op's output after every TensorFlow op folded into it,
    often hundreds of characters (`model/dense_1/MatMul;model/dense_1/BiasAdd;
    model/re_lu/Relu`); people know the layers (`dense_1+re_lu`). The report keeps
    the full name: it is what `keep_float.nodes` takes.
    """
    layers: list[str] = []
    for part in tensor.split(";"):
        path = [step for step in part.split("/") if not _VARIABLE_READ.fullmatch(step)]
        layer = path[-2] if len(path) > 1 else part
        if layer and layer not in layers:
            layers.append(layer)
    if not layers:
        return tensor
    shown = "+".join(layers[:_SHOWN_LAYERS])
    more = len(layers) - _SHOWN_LAYERS
    return f"{shown} (+{more} more)" if more > 0 else shown


def diagnosis_line(diagnosis: LayerDiagnosis) -> str:
    """One progress line: the top layer and whether a fix passed."""
    if diagnosis.error:
        return f"layers not measured: {diagnosis.error}"
    if not diagnosis.layers:
        return "no op output to compare"
    top = diagnosis.layers[0]
    head = f"most error added at {layer_name(top.tensor)!r} ({top.op}, {top.share:.0%})"
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

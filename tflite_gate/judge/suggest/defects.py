"""Variants no threshold should pass: a collapsed output, or one whose passing
threshold would also pass an unrelated output. They are fixed, never loosened.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from tflite_gate.judge.compare import (
    MAX_METRICS,
    has_classes,
)
from tflite_gate.judge.suggest.measure import broken_in, configured_models, loosened, measured_text
from tflite_gate.model.data import sample_shape
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.report.model import (
    MetricName,
    OutputMetrics,
    Report,
    ThresholdKey,
    VariantReport,
)
from tflite_gate.support.run_options import margin_text


@dataclass(frozen=True)
class Defect:
    """A variant no threshold should pass: it is fixed in the conversion, never loosened."""

    model: str
    variant: str
    output: str
    why: str

    def text(self) -> str:
        return (
            f"{self.model}/{self.variant}: fix the variant, no threshold should pass it: "
            f"output {self.output!r} {self.why}"
        )


def output_defect(
    metrics: Sequence[OutputMetrics],
    margin: float,
    classes: int | None,
    keys: Collection[ThresholdKey] = ("min_cosine", "rel_rmse", "min_top1"),
) -> str | None:
    """Why no threshold should pass this output (its metrics on each runtime), or None.

    A collapsed output (one value for every sample while the source's vary) is a defect,
    and so is one whose passing threshold, with the error grown by the margin, would
    also pass an output unrelated to the source's: a `min_cosine` at or below 0 passes
    an orthogonal or inverted output, a `rel_rmse` at or above 1 (an SNR at or below
    0 dB) passes an output of zeros, a `min_top1` at or below chance (1/classes; 0 when
    the class count is unknown) passes a model that guesses. Such a threshold switches
    the check off: like a crash, the variant needs fixing, not a looser policy. `keys`
    limits the judgement to the thresholds the caller would write.
    """
    if any(m.collapsed for m in metrics):
        return "is the same for every sample while the source model's varies (collapsed)"
    for key, metric, passes in _UNRELATED:
        measured = _worst_finite(metrics, metric)
        if key not in keys or measured is None:
            continue
        value = loosened(key, measured, margin)
        line = _unrelated_line(key, classes)
        if value >= line if key in MAX_METRICS else value <= line:
            return (
                f"{metric} {measured_text(measured, value)}: a {key} that passes it with the "
                f"{margin_text(margin)} margin is {value!r}, {_past(key, line, classes)}, "
                f"where {passes} passes"
            )
    return None


_UNRELATED: tuple[tuple[ThresholdKey, MetricName, str], ...] = (
    ("min_cosine", "cosine", "an unrelated output"),
    ("rel_rmse", "rel_rmse", "an output of zeros"),
    ("min_top1", "top1", "a model that guesses"),
)
"""Per threshold: what a value past its line would let pass."""


def _unrelated_line(key: ThresholdKey, classes: int | None) -> float:
    """The value at which a threshold `key` passes what `_UNRELATED` names."""
    if key == "rel_rmse":
        return 1.0
    if key == "min_top1" and classes:
        return 1.0 / classes
    return 0.0


def _past(key: ThresholdKey, line: float, classes: int | None) -> str:
    if key == "min_top1":
        odds = f"with {classes} classes" if classes else "the class count is unknown"
        return f"at or below chance ({line:g}, {odds})"
    return f"at or {'above' if key in MAX_METRICS else 'below'} {line:g}"


def _worst_finite(metrics: Sequence[OutputMetrics], metric: MetricName) -> float | None:
    values = [v for m in metrics if (v := m.value(metric)) is not None and math.isfinite(v)]
    if not values:
        return None
    return max(values) if metric in MAX_METRICS else min(values)


def metrics_by_output(variant: VariantReport) -> dict[str, list[OutputMetrics]]:
    """Each output's metrics, one per runtime the variant ran on."""
    by_output: dict[str, list[OutputMetrics]] = {}
    for run in variant.runs:
        for metrics in run.metrics:
            by_output.setdefault(metrics.output, []).append(metrics)
    return by_output


def _classes(variant: VariantReport, output: str) -> int | None:
    """How many classes the converted model's `output` scores, if it is a classification."""
    tensors = variant.inspection.outputs if variant.inspection else []
    for tensor in tensors:
        shape = tuple(sample_shape(tensor.shape))
        if tensor.name == output and has_classes(shape):
            return shape[-1]
    return None


def find_defects(report: Report, loaded: LoadedPolicy, margin: float) -> list[Defect]:
    """The variants whose broken thresholds are defects, one line each (`output_defect`)."""
    found = []
    for model, config in configured_models(report, loaded):
        for variant in model.variants:
            if variant.name not in config.thresholds:
                continue
            broken = dict.fromkeys(b.output for b in broken_in(model, variant.name).values())
            measured = metrics_by_output(variant)
            for output in broken:
                why = output_defect(measured[output], margin, _classes(variant, output))
                if why is not None:
                    found.append(Defect(model.name, variant.name, output, why))
                    break
    return found

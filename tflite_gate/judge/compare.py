"""Divergence of a converted model's outputs from the reference outputs.

Pure numpy: the pipeline (or a worker) calls this with plain arrays, so it never needs
TensorFlow or the policy. Metrics are computed per sample and the *worst* sample is
reported, because a gate cares about the one input the model gets badly wrong, not the
average input; `worst_sample` says which one so a user can reproduce it.

Honest numbers: metrics cover only the values that were compared (finite in both
outputs), and say how many that was. Nothing compared gives null metrics, never a
perfect score. An infinite metric (snr_db of identical outputs, rel_rmse against an
all-zero reference) is null in the report with its direction in `infinite`: JSON has no
Infinity, and a stand-in number would read as a measurement. Threshold decisions use
the real values, infinities included, here where the metrics are computed: a run's
status and its violations are decided once, and findings and reporters only read them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from tflite_gate.report.model import (
    Infinity,
    MetricName,
    OutputMetrics,
    RunStatus,
    ThresholdViolation,
)

MAX_METRICS = ("max_abs", "mean_abs", "rmse", "rel_rmse")
"""Error metrics: higher is worse; the policy key is the metric name, a maximum."""

MIN_METRICS: dict[str, MetricName] = {
    "min_cosine": "cosine",
    "min_snr_db": "snr_db",
    "min_top1": "top1",
}
"""Agreement metrics: lower is worse; policy key (a minimum) → metric name."""

SIGNIFICANT_DIGITS = 4
"""Digits kept by `tightest_passing`: enough to be tight, few enough to paste."""

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class _SampleStats:
    """Metrics of one sample over its comparable (both finite) positions."""

    max_abs: float
    mean_abs: float
    rmse: float
    rel_rmse: float
    cosine: float
    snr_db: float


def _norm(x: FloatArray) -> float:
    """Euclidean norm, scaled by max|x| first so squaring cannot overflow or underflow."""
    scale = float(np.max(np.abs(x))) if x.size else 0.0
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    return scale * math.sqrt(float(np.sum(np.square(x / scale))))


def _unit_scaled(x: FloatArray) -> FloatArray | None:
    """x / max|x| (None for a zero vector): same direction, no overflow when squared."""
    scale = float(np.max(np.abs(x)))
    return None if scale == 0.0 else x / scale


def _cosine(reference: FloatArray, actual: FloatArray) -> float:
    """Cosine similarity; two zero vectors agree (1.0), one zero vector is orthogonal (0.0)."""
    ref, act = _unit_scaled(reference), _unit_scaled(actual)
    if ref is None or act is None:
        return 1.0 if ref is None and act is None else 0.0
    # One sqrt of the product: sqrt(fl(x·x)) == x in IEEE arithmetic, so a vector compared
    # with itself gets exactly 1.0. Each squared norm is in [1, size]: no over/underflow.
    norms = math.sqrt(float(np.dot(ref, ref)) * float(np.dot(act, act)))
    cosine = float(np.dot(ref, act)) / norms
    return max(-1.0, min(1.0, cosine))  # rounding can step just outside [-1, 1]


def _snr_db(ref_norm: float, err_norm: float) -> float:
    """10·log10(Σref² / Σerr²), written with norms so the ratio cannot overflow."""
    if err_norm == 0.0:
        return math.inf
    if ref_norm == 0.0:
        return -math.inf
    return 20.0 * (math.log10(ref_norm) - math.log10(err_norm))


def _rel_rmse(ref_norm: float, err_norm: float) -> float:
    """rmse / rms(reference) = ‖err‖ / ‖ref‖; a zero reference makes any error infinite."""
    if ref_norm == 0.0:
        return 0.0 if err_norm == 0.0 else math.inf
    return err_norm / ref_norm


def _sample_stats(reference: FloatArray, actual: FloatArray) -> _SampleStats | None:
    """All metrics of one flattened sample (finite values only); None if it has none."""
    if reference.size == 0:
        return None
    with np.errstate(over="ignore"):
        error = actual - reference
        abs_error = np.abs(error)
        mean_abs = float(np.mean(abs_error))
    ref_norm, err_norm = _norm(reference), _norm(error)
    return _SampleStats(
        max_abs=float(np.max(abs_error)),
        mean_abs=mean_abs,
        rmse=err_norm / math.sqrt(error.size),
        rel_rmse=_rel_rmse(ref_norm, err_norm),
        cosine=_cosine(reference, actual),
        snr_db=_snr_db(ref_norm, err_norm),
    )


def _non_finite_mask(reference: FloatArray, actual: FloatArray) -> npt.NDArray[np.bool_]:
    """Positions where the two disagree about being finite, or are non-finite differently."""
    ref_finite, act_finite = np.isfinite(reference), np.isfinite(actual)
    both_non_finite = ~ref_finite & ~act_finite
    same_way = (np.isnan(reference) & np.isnan(actual)) | np.equal(reference, actual)
    return np.not_equal(ref_finite, act_finite) | (both_non_finite & ~same_way)


def has_classes(sample_shape: tuple[int, ...]) -> bool:
    """Per-sample shape (C,) or (1, C) with C > 1: argmax can mean "the predicted class"."""
    if len(sample_shape) == 1:
        return sample_shape[0] > 1
    return len(sample_shape) == 2 and sample_shape[0] == 1 and sample_shape[1] > 1


def _top1(reference: FloatArray, actual: FloatArray) -> tuple[float, int | None]:
    """Share of samples whose argmax agrees, and the first sample where it does not.

    A sample with a NaN/Inf score has no predicted class: it counts as a wrong answer
    (np.argmax would pick the first NaN and could agree by chance).
    """
    defined = np.all(np.isfinite(actual), axis=1)
    agree = (np.argmax(reference, axis=1) == np.argmax(actual, axis=1)) & defined
    disagreeing = np.flatnonzero(~agree)
    first = int(disagreeing[0]) if disagreeing.size else None
    return float(np.mean(agree)), first


def _as_samples(array: npt.NDArray[Any]) -> FloatArray:
    """[N, ...] → float64 [N, M]: metrics treat each sample as one flat vector."""
    per_sample = math.prod(array.shape[1:])  # not -1: that cannot be inferred when N == 0
    return np.asarray(array, dtype=np.float64).reshape(array.shape[0], per_sample)


def _collapse(reference: FloatArray, actual: FloatArray) -> tuple[bool, float | None]:
    """Is the actual output the same for every sample while the reference's varies?

    The typical int8 failure: an output whose range the calibration missed is stuck at
    one quantization step (often 0) whatever the input. Only meaningful with two or more
    samples; the value is returned when every position holds the same one.
    """
    if len(actual) < 2 or not np.all(np.isfinite(actual)):
        return False, None
    same_actual = bool(np.all(actual == actual[0]))
    same_reference = bool(np.all(reference == reference[0]))
    if not same_actual or same_reference:
        return False, None
    values = np.unique(actual)
    return True, float(values[0]) if values.size == 1 else None


def _reportable(values: dict[str, float]) -> tuple[dict[str, float | None], dict[str, Infinity]]:
    """Metric values as the report holds them: infinities become null plus a direction."""
    shown: dict[str, float | None] = {}
    infinite: dict[str, Infinity] = {}
    for metric, value in values.items():
        if math.isinf(value):
            infinite[metric] = "inf" if value > 0 else "-inf"
            shown[metric] = None
        else:
            shown[metric] = value
    return shown, infinite


def compare_output(
    name: str,
    reference: npt.NDArray[Any],
    actual: npt.NDArray[Any],
    *,
    top1: bool = False,
) -> OutputMetrics:
    """Divergence of `actual` from `reference` for one output, reported at the worst sample.

    Both arrays are sample-major `[N, ...]` (sample i is `arr[i]`) and are compared as
    float64. For each sample, flattened, over the positions where both values are finite:

    - max_abs, mean_abs, rmse of the error `actual - reference`;
    - rel_rmse = rmse / rms(reference); 0 if both are 0, +inf if only the reference is 0;
    - cosine similarity; 1.0 if both vectors are zero, 0.0 if exactly one is;
    - snr_db = 10·log10(Σref² / Σerr²); +inf if the error is 0, -inf if only ref is 0.

    The reported value is the worst sample's (max for errors, min for cosine and SNR),
    and `worst_sample[metric]` is its index (the first one on ties). Samples without
    a comparable position do not take part; when no sample has one, every metric is
    None (nothing was measured, so nothing can look perfect). Infinite values are None
    in the report with their direction in `infinite`.

    `top1` (asked for by the caller, who knows which outputs are classifications, and
    computed only for per-sample shapes (C,) or (1, C)) is the share of samples whose
    argmax agrees; `worst_sample["top1"]` is the first disagreeing sample.

    `non_finite` counts positions where actual is NaN/Inf and the reference is finite,
    and also positions where the reference is NaN/Inf and actual is finite, or both are
    non-finite in different ways (NaN vs Inf, +Inf vs -Inf). All these, and positions
    where both are non-finite the same way, are left out of the other metrics, so one NaN
    does not hide how far the remaining values are off.

    Raises ValueError if the shapes differ (the caller reports `output-mismatch`) or if
    the arrays have no sample axis.
    """
    if reference.shape != actual.shape:
        raise ValueError(
            f"output {name!r}: reference shape {tuple(reference.shape)} != "
            f"actual shape {tuple(actual.shape)}"
        )
    if reference.ndim == 0:
        raise ValueError(f"output {name!r}: expected [N, ...] arrays, got a scalar")
    ref, act = _as_samples(reference), _as_samples(actual)
    non_finite = _non_finite_mask(ref, act)
    comparable = np.isfinite(ref) & np.isfinite(act)
    stats = [_sample_stats(ref[i][comparable[i]], act[i][comparable[i]]) for i in range(len(ref))]
    values, worst = _worst(stats)
    measured = bool(np.any(comparable))
    if top1 and measured and has_classes(tuple(reference.shape[1:])):
        values["top1"], first_wrong = _top1(ref, act)
        if first_wrong is not None:
            worst["top1"] = first_wrong
    shown, infinite = _reportable(values)
    collapsed, collapsed_to = _collapse(ref, act)
    return OutputMetrics(
        output=name,
        samples=len(ref),
        compared=int(np.count_nonzero(comparable)),
        max_abs=shown.get("max_abs"),
        mean_abs=shown.get("mean_abs"),
        rmse=shown.get("rmse"),
        rel_rmse=shown.get("rel_rmse"),
        cosine=shown.get("cosine"),
        snr_db=shown.get("snr_db"),
        top1=shown.get("top1"),
        infinite=infinite,
        non_finite=int(np.count_nonzero(non_finite)),
        collapsed=collapsed,
        collapsed_to=collapsed_to,
        worst_sample=worst,
    )


def _worst(stats: list[_SampleStats | None]) -> tuple[dict[str, float], dict[str, int]]:
    """Per metric, the worst value over measured samples and its (first) sample index."""
    measured = [(i, s) for i, s in enumerate(stats) if s is not None]
    values: dict[str, float] = {}
    worst: dict[str, int] = {}
    if not measured:
        return values, worst
    lower_is_worse = set(MIN_METRICS.values())
    for metric in (*MAX_METRICS, "cosine", "snr_db"):
        column = np.array([getattr(s, metric) for _, s in measured], dtype=np.float64)
        index = int(np.argmin(column) if metric in lower_is_worse else np.argmax(column))
        values[metric] = float(column[index])
        worst[metric] = measured[index][0]
    return values, worst


# --------------------------------------------------------------------------- thresholds


def violations(metrics: OutputMetrics, thresholds: dict[str, float]) -> list[ThresholdViolation]:
    """The thresholds `metrics` break, in the order the thresholds are given.

    Keys are the policy's (`max_abs`, ..., `min_cosine`, `min_snr_db`, `min_top1`). A
    maximum is broken when value > threshold, a minimum when value < threshold; infinite
    values count as such (+inf error breaks any maximum). Metrics that were not measured
    (nothing compared, or no top1 for this output) break nothing: the run's status says
    why there is nothing to judge. An unknown key raises ValueError: a typo must not
    silently switch a check off.
    """
    found: list[ThresholdViolation] = []
    for key, threshold in thresholds.items():
        metric = _metric_for(key)
        value = metrics.value(metric)
        if value is None:
            continue
        within = value <= threshold if key in MAX_METRICS else value >= threshold
        if not within:
            found.append(
                ThresholdViolation(
                    output=metrics.output,
                    threshold_key=key,
                    metric=metric,
                    value=None if math.isinf(value) else value,
                    infinite=metrics.infinite.get(metric),
                    threshold=threshold,
                    worst_sample=metrics.worst_sample.get(metric),
                )
            )
    return found


def _metric_for(key: str) -> MetricName:
    if key in MAX_METRICS:
        return key  # type: ignore[return-value]  # MAX_METRICS are metric names
    if key in MIN_METRICS:
        return MIN_METRICS[key]
    known = ", ".join([*MAX_METRICS, *MIN_METRICS])
    raise ValueError(f"unknown threshold {key!r}; expected one of {known}")


def tightest_passing(metrics: OutputMetrics) -> dict[str, float]:
    """The strictest thresholds these metrics still pass, ready to paste into the policy.

    Like Polygraphy's "minimum tolerance that would have passed", but rounded to 4
    significant digits in the passing direction (maxima up, minima down), so the value
    a user copies passes: `violations(m, tightest_passing(m)) == []`. Unmeasured and
    infinite metrics get no entry: no threshold would pass +inf error, and any passes
    an infinite SNR.
    """
    tightest: dict[str, float] = {}
    for key in MAX_METRICS:
        value = metrics.value(key)  # type: ignore[arg-type]  # MAX_METRICS are metric names
        if value is not None and math.isfinite(value):
            tightest[key] = round_up(value)
    for key, metric in MIN_METRICS.items():
        found = metrics.value(metric)
        if found is not None and math.isfinite(found):
            tightest[key] = cosine_floor(found) if key == "min_cosine" else round_down(found)
    return tightest


def cosine_floor(cosine: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Round the distance from 1 instead: 0.99922637 → 0.9992264, not 0.9992.

    Cosines of good conversions crowd just below 1, where 4 significant digits of the
    cosine itself would hide everything; 4 digits of `1 - cosine` keep the signal.
    """
    if cosine >= 1.0 or cosine <= 0.0:
        return round_down(cosine, digits)
    floor = 1.0 - round_up(1.0 - cosine, digits)
    tidy = float(f"{floor:.12g}")  # 1 - 0.9 is 0.09999999999999998; write 0.1 if it passes
    if tidy <= cosine:
        return tidy
    while floor > cosine:  # float subtraction may land a hair above
        floor = math.nextafter(floor, -math.inf)
    return floor


def round_up(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """The smallest `digits`-significant-digit decimal float not below `value`."""
    return _round_significant(value, ROUND_CEILING, digits)


def round_down(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """The largest `digits`-significant-digit decimal float not above `value`."""
    return _round_significant(value, ROUND_FLOOR, digits)


def _round_significant(value: float, rounding: str, digits: int) -> float:
    """Round to `digits` significant digits in the passing direction, never past `value`.

    Floats are binary: 0.1 is really 0.1000000000000000055…, so rounding its exact value
    up would give 0.1001. First try the nearest 4-digit decimal; if, as a float, it
    still passes (0.1 → 0.1), take it. Otherwise round the exact value (Decimal(value)
    is exact) in the passing direction; float() then rounds to nearest, which is
    monotonic, so the result cannot come back past `value`.
    """
    if value == 0.0 or not math.isfinite(value):
        return value
    exact = Decimal(value)
    quantum = Decimal(1).scaleb(exact.adjusted() - (digits - 1))
    nearest = float(exact.quantize(quantum, rounding=ROUND_HALF_EVEN))
    if (nearest >= value) if rounding == ROUND_CEILING else (nearest <= value):
        return nearest
    return float(exact.quantize(quantum, rounding=rounding))


class OutputMismatch(Exception):  # noqa: N818 -- names the finding `output-mismatch`
    """The converted model's outputs cannot be paired with the source model's."""


def match_outputs(
    reference: dict[str, npt.NDArray[Any]],
    actual: dict[str, npt.NDArray[Any]],
    *,
    by_order: bool,
) -> list[tuple[str, str, npt.NDArray[Any], npt.NDArray[Any]]]:
    """(reference name, converted name, reference, actual), paired by name.

    When the names differ and `by_order` allows it (a model without signatures has only
    tensor names), the i-th output of one is paired with the i-th of the other, in the
    order each model gives them: a guess, so it is used only when names cannot be.
    """
    if len(reference) != len(actual):
        raise OutputMismatch(
            f"the source model has {len(reference)} output(s) ({', '.join(sorted(reference))}), "
            f"the converted model {len(actual)} ({', '.join(actual)})"
        )
    if set(reference) == set(actual):
        return [(name, name, reference[name], actual[name]) for name in sorted(reference)]
    if by_order:
        pairs = zip(reference, actual, strict=True)
        return [(name, other, reference[name], actual[other]) for name, other in pairs]
    missing = sorted(set(reference) - set(actual))
    raise OutputMismatch(
        f"output(s) {', '.join(missing)} of the source model are missing from the converted "
        f"model, which has {', '.join(sorted(actual))}"
    )


# --------------------------------------------------------------------------- a run


@dataclass(frozen=True)
class OutputPlan:
    """What to judge on one output: its thresholds, and whether top1 means anything there."""

    thresholds: dict[str, float] = field(default_factory=dict)
    top1: bool = False


PlanFor = Callable[[str, str], OutputPlan]
"""(reference output name, converted output name) → what to judge on that output."""


@dataclass(frozen=True)
class RunComparison:
    """A run judged against the reference: the one place its status is decided."""

    status: RunStatus
    metrics: list[OutputMetrics]
    violations: list[ThresholdViolation]
    tightest: dict[str, dict[str, float]]
    message: str | None = None


def compare_run(
    reference: dict[str, npt.NDArray[Any]],
    actual: dict[str, npt.NDArray[Any]],
    *,
    by_order: bool,
    plan_for: PlanFor,
) -> RunComparison:
    """Pair outputs, measure each, check its thresholds, and decide the run's status.

    The status is the worst of: `mismatch` (outputs cannot be paired or shapes differ:
    nothing is measured), `non-finite` (NaN/Inf where the reference has a number, or
    the other way round: values were left out, so the metrics alone would flatter the
    run), `diverged` (a threshold is broken), else `passed`.
    """
    try:
        pairs = match_outputs(reference, actual, by_order=by_order)
        plans = {name: plan_for(name, other) for name, other, _, _ in pairs}
        metrics = [
            compare_output(name, ref, act, top1=plans[name].top1) for name, _, ref, act in pairs
        ]
    except (OutputMismatch, ValueError) as error:
        return RunComparison("mismatch", [], [], {}, str(error))
    broken = [v for m in metrics for v in violations(m, plans[m.output].thresholds)]
    status: RunStatus = "passed"
    if any(m.non_finite for m in metrics):
        status = "non-finite"
    elif broken:
        status = "diverged"
    # Thresholds cannot make NaN/Inf pass: no "tightest passing" for such an output.
    tightest = {m.output: tightest_passing(m) for m in metrics if not m.non_finite}
    return RunComparison(status, metrics, broken, tightest)

"""Divergence of a converted model's outputs from the reference outputs.

Pure numpy: the pipeline (or a worker) calls this with plain arrays, so it never needs
TensorFlow or the policy. Metrics are computed per sample and the *worst* sample is
reported, because a gate cares about the one input the model gets badly wrong, not the
average input; `worst_sample` says which one so a user can reproduce it.

JSON and infinities: a perfect match has SNR +inf, and a zero reference gives an
infinite relative error. JSON has no Infinity. pydantic 2 writes inf/NaN as `null` by
default, which is valid JSON but no longer a number: the report then fails its own JSON
Schema and `OutputMetrics.model_validate_json` rejects it. So every metric this module
returns is passed through `finite_for_json`, which clamps ±inf (and anything beyond
±1e300) to ±`JSON_INF` = ±1e300. Comparisons against thresholds keep their meaning
(1e300 dB passes any `min_snr_db`; a relative error of 1e300 fails any `rel_rmse`), and
a reader can treat |value| >= 1e300 as "infinite".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from tflite_gate.report.model import OutputMetrics

JSON_INF = 1e300
"""Stands for infinity in reports: finite, so JSON and the report schema can hold it."""

MAX_METRICS = ("max_abs", "mean_abs", "rmse", "rel_rmse")
"""Error metrics: higher is worse; the policy key is the metric name, a maximum."""

MIN_METRICS = {"min_cosine": "cosine", "min_snr_db": "snr_db", "min_top1": "top1"}
"""Agreement metrics: lower is worse; policy key (a minimum) → metric name."""

SIGNIFICANT_DIGITS = 4
"""Digits kept by `tightest_passing`: enough to be tight, few enough to paste."""

FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- JSON


def finite_for_json(x: float) -> float:
    """Clamp ±inf (and |x| beyond 1e300) to ±`JSON_INF` so the report stays valid JSON.

    NaN is returned unchanged: it has no direction to clamp to. `compare_output` never
    produces NaN (non-finite positions are counted, not averaged), so a NaN reaching a
    report is a caller's bug and will show up as `null` in the JSON.
    """
    if math.isnan(x):
        return x
    return max(-JSON_INF, min(JSON_INF, x))


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


_EMPTY_SAMPLE = _SampleStats(
    max_abs=0.0, mean_abs=0.0, rmse=0.0, rel_rmse=0.0, cosine=1.0, snr_db=math.inf
)
"""A sample with no comparable position: like two zero vectors, nothing diverges.

Its positions are all non-finite, so `non_finite` (and the gate's non-finite rule)
already reports the problem; the divergence metrics stay about the finite values.
"""


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


def _sample_stats(reference: FloatArray, actual: FloatArray) -> _SampleStats:
    """All metrics of one flattened sample; both arrays hold finite values only."""
    if reference.size == 0:
        return _EMPTY_SAMPLE
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


def _is_classifier(sample_shape: tuple[int, ...]) -> bool:
    """Per-sample shape (C,) or (1, C) with C > 1: argmax means "the predicted class"."""
    if len(sample_shape) == 1:
        return sample_shape[0] > 1
    return len(sample_shape) == 2 and sample_shape[0] == 1 and sample_shape[1] > 1


def _top1(reference: FloatArray, actual: FloatArray) -> tuple[float, int | None]:
    """Share of samples whose argmax agrees, and the first sample where it does not.

    np.argmax picks the first NaN if there is one, so a NaN score in the actual output
    (where the reference has none) counts as a wrong answer.
    """
    agree = np.argmax(reference, axis=1) == np.argmax(actual, axis=1)
    disagreeing = np.flatnonzero(~agree)
    first = int(disagreeing[0]) if disagreeing.size else None
    return float(np.mean(agree)), first


def _as_samples(array: npt.NDArray[Any]) -> FloatArray:
    """[N, ...] → float64 [N, M]: metrics treat each sample as one flat vector."""
    per_sample = math.prod(array.shape[1:])  # not -1: that cannot be inferred when N == 0
    return np.asarray(array, dtype=np.float64).reshape(array.shape[0], per_sample)


def compare_output(
    name: str, reference: npt.NDArray[Any], actual: npt.NDArray[Any]
) -> OutputMetrics:
    """Divergence of `actual` from `reference` for one output, reported at the worst sample.

    Both arrays are sample-major `[N, ...]` (sample i is `arr[i]`) and are compared as
    float64. For each sample, flattened, over the positions where both values are finite:

    - max_abs, mean_abs, rmse of the error `actual - reference`;
    - rel_rmse = rmse / rms(reference); 0 if both are 0, +inf if only the reference is 0;
    - cosine similarity; 1.0 if both vectors are zero, 0.0 if exactly one is;
    - snr_db = 10·log10(Σref² / Σerr²); +inf if the error is 0, -inf if only ref is 0.

    The reported value is the worst sample's (max for errors, min for cosine and SNR),
    and `worst_sample[metric]` is its index (the first one on ties). `top1` is set only
    for classifier-like outputs (per-sample shape (C,) or (1, C), C > 1): the share of
    samples whose argmax agrees; `worst_sample["top1"]` is the first disagreeing sample.

    `non_finite` counts positions where actual is NaN/Inf and the reference is finite,
    and also positions where the reference is NaN/Inf and actual is finite, or both are
    non-finite in different ways (NaN vs Inf, +Inf vs -Inf). All these, and positions
    where both are non-finite the same way, are left out of the other metrics, so one NaN
    does not hide how far the remaining values are off. A sample with no finite position
    left counts as a perfect match in the metrics; `non_finite` carries the failure.

    Infinite results are clamped by `finite_for_json` (±1e300), see the module docstring.
    With N == 0 the metrics are those of a perfect match and `worst_sample` is empty.

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
    top1: float | None = None
    if len(ref) and _is_classifier(tuple(reference.shape[1:])):
        top1, first_wrong = _top1(ref, act)
        if first_wrong is not None:
            worst["top1"] = first_wrong
    return OutputMetrics(
        output=name,
        samples=len(ref),
        max_abs=finite_for_json(values["max_abs"]),
        mean_abs=finite_for_json(values["mean_abs"]),
        rmse=finite_for_json(values["rmse"]),
        rel_rmse=finite_for_json(values["rel_rmse"]),
        cosine=values["cosine"],  # always within [-1, 1]
        snr_db=finite_for_json(values["snr_db"]),
        top1=top1,
        non_finite=int(np.count_nonzero(non_finite)),
        worst_sample=worst,
    )


def _worst(stats: list[_SampleStats]) -> tuple[dict[str, float], dict[str, int]]:
    """Per metric, the worst value over samples and the index of the (first) worst sample."""
    values: dict[str, float] = {}
    worst: dict[str, int] = {}
    lower_is_worse = set(MIN_METRICS.values())
    for metric in (*MAX_METRICS, "cosine", "snr_db"):
        if not stats:
            values[metric] = getattr(_EMPTY_SAMPLE, metric)
            continue
        column = np.array([getattr(s, metric) for s in stats], dtype=np.float64)
        index = int(np.argmin(column) if metric in lower_is_worse else np.argmax(column))
        values[metric] = float(column[index])
        worst[metric] = index
    return values, worst


# --------------------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Violation:
    """One threshold the metrics break: what, by how much, and on which sample."""

    threshold_key: str
    metric: str
    value: float
    threshold: float
    worst_sample: int | None


def violations(metrics: OutputMetrics, thresholds: dict[str, float]) -> list[Violation]:
    """The thresholds `metrics` break, in the order the thresholds are given.

    Keys are the policy's (`max_abs`, ..., `min_cosine`, `min_snr_db`, `min_top1`). A
    maximum is broken when value > threshold, a minimum when value < threshold; a NaN
    value breaks either (written as "not within" so NaN never passes). `min_top1` is
    skipped for outputs without top1. An unknown key raises ValueError: a typo must not
    silently switch a check off.
    """
    found: list[Violation] = []
    for key, threshold in thresholds.items():
        metric = _metric_for(key)
        value: float | None = getattr(metrics, metric)
        if value is None:
            continue
        within = value <= threshold if key in MAX_METRICS else value >= threshold
        if not within:
            found.append(Violation(key, metric, value, threshold, metrics.worst_sample.get(metric)))
    return found


def _metric_for(key: str) -> str:
    if key in MAX_METRICS:
        return key
    if key in MIN_METRICS:
        return MIN_METRICS[key]
    known = ", ".join([*MAX_METRICS, *MIN_METRICS])
    raise ValueError(f"unknown threshold {key!r}; expected one of {known}")


def tightest_passing(metrics: OutputMetrics) -> dict[str, float]:
    """The strictest thresholds these metrics still pass, ready to paste into the policy.

    Like Polygraphy's "minimum tolerance that would have passed", but rounded to 4
    significant digits in the passing direction (maxima up, minima down), so the value
    a user copies passes: `violations(m, tightest_passing(m)) == []`. NaN metrics and a
    missing top1 get no entry, since no threshold would pass them.
    """
    tightest: dict[str, float] = {}
    for key in MAX_METRICS:
        value: float = getattr(metrics, key)
        if not math.isnan(value):
            tightest[key] = _round_significant(value, ROUND_CEILING)
    for key, metric in MIN_METRICS.items():
        found: float | None = getattr(metrics, metric)
        if found is not None and not math.isnan(found):
            tightest[key] = (
                _cosine_floor(found)
                if key == "min_cosine"
                else _round_significant(found, ROUND_FLOOR)
            )
    return tightest


def _cosine_floor(cosine: float) -> float:
    """Round the distance from 1 instead: 0.99922637 → 0.9992264, not 0.9992.

    Cosines of good conversions crowd just below 1, where 4 significant digits of the
    cosine itself would hide everything; 4 digits of `1 - cosine` keep the signal.
    """
    if cosine >= 1.0 or cosine <= 0.0:
        return _round_significant(cosine, ROUND_FLOOR)
    floor = 1.0 - _round_significant(1.0 - cosine, ROUND_CEILING)
    tidy = float(f"{floor:.12g}")  # 1 - 0.9 is 0.09999999999999998; write 0.1 if it passes
    if tidy <= cosine:
        return tidy
    while floor > cosine:  # float subtraction may land a hair above
        floor = math.nextafter(floor, -math.inf)
    return floor


def _round_significant(value: float, rounding: str) -> float:
    """Round to `SIGNIFICANT_DIGITS` in the passing direction, never past `value`.

    Floats are binary: 0.1 is really 0.1000000000000000055…, so rounding its exact value
    up would give 0.1001. First try the nearest 4-digit decimal; if, as a float, it
    still passes (0.1 → 0.1), take it. Otherwise round the exact value (Decimal(value)
    is exact) in the passing direction; float() then rounds to nearest, which is
    monotonic, so the result cannot come back past `value`.
    """
    if value == 0.0 or not math.isfinite(value):
        return value
    exact = Decimal(value)
    quantum = Decimal(1).scaleb(exact.adjusted() - (SIGNIFICANT_DIGITS - 1))
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
) -> list[tuple[str, npt.NDArray[Any], npt.NDArray[Any]]]:
    """Pair outputs by signature name; by order only when the model has no signature.

    Order-based pairing is a guess (converters may reorder outputs), so it is used only
    when names cannot be: a model without signatures has only tensor names.
    """
    if len(reference) != len(actual):
        raise OutputMismatch(
            f"the source model has {len(reference)} output(s) ({', '.join(sorted(reference))}), "
            f"the converted model {len(actual)} ({', '.join(actual)})"
        )
    if by_order:
        pairs = zip(sorted(reference), actual, strict=True)
        return [(name, reference[name], actual[other]) for name, other in pairs]
    missing = sorted(set(reference) - set(actual))
    if missing:
        raise OutputMismatch(
            f"output(s) {', '.join(missing)} of the source model are missing from the converted "
            f"model, which has {', '.join(sorted(actual))}"
        )
    return [(name, reference[name], actual[name]) for name in sorted(reference)]

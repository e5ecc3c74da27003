"""Divergence metrics: exact values on arrays small enough to check by hand."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tflite_gate.judge.compare import (
    MAX_METRICS,
    MIN_METRICS,
    OutputPlan,
    compare_output,
    compare_run,
    match_outputs,
    tightest_passing,
    violations,
)
from tflite_gate.policy.schema import Thresholds
from tflite_gate.report.model import OutputMetrics, ThresholdViolation

NAN, INF = math.nan, math.inf


def strict_json(text: str) -> Any:
    """json.loads, but reject the non-standard Infinity/NaN that Python would accept."""

    def reject(constant: str) -> None:
        raise ValueError(f"not valid JSON: {constant}")

    return json.loads(text, parse_constant=reject)


def metrics(**overrides: Any) -> OutputMetrics:
    values: dict[str, Any] = {
        "output": "y",
        "samples": 4,
        "compared": 40,
        "max_abs": 0.1,
        "mean_abs": 0.01,
        "rmse": 0.02,
        "rel_rmse": 0.05,
        "cosine": 0.99,
        "snr_db": 30.0,
        "top1": 0.75,
        "worst_sample": {"max_abs": 2, "cosine": 3, "top1": 1},
    }
    return OutputMetrics(**{**values, **overrides})


# --------------------------------------------------------------------------- metrics

# sample 0: identical; sample 1: error [0, -2]; sample 2: [1, 0] vs [0, 1] (orthogonal).
REFERENCE = np.array([[3.0, 4.0], [3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
ACTUAL = np.array([[3.0, 4.0], [3.0, 2.0], [0.0, 1.0]], dtype=np.float32)


def test_every_metric_is_the_worst_sample_with_its_index() -> None:
    m = compare_output("probs", REFERENCE, ACTUAL, top1=True)

    assert m.output == "probs"
    assert m.samples == 3
    assert m.max_abs == 2.0  # sample 1: |2 - 4|
    assert m.mean_abs == 1.0  # samples 1 and 2 tie at (0+2)/2 = (1+1)/2: first wins
    assert m.rmse == pytest.approx(math.sqrt(2))  # sample 1: sqrt((0+4)/2)
    # sample 1: sqrt(2)/sqrt(12.5) = 0.4; sample 2: 1/sqrt(0.5) = sqrt(2) is worse
    assert m.rel_rmse == pytest.approx(math.sqrt(2))
    assert m.cosine == 0.0  # sample 2 is orthogonal
    assert m.snr_db == pytest.approx(10 * math.log10(1 / 2))  # sample 2: Σref²=1, Σerr²=2
    assert m.worst_sample == {
        "max_abs": 1,
        "mean_abs": 1,
        "rmse": 1,
        "rel_rmse": 2,
        "cosine": 2,
        "snr_db": 2,
        "top1": 1,  # first sample whose argmax differs
    }
    assert m.non_finite == 0
    assert m.compared == 6
    assert m.infinite == {}


def test_middle_sample_values_by_hand() -> None:
    """Sample 1 alone: cosine 17/(5·sqrt 13), SNR 10·log10(25/4), rel_rmse 0.4."""
    m = compare_output("y", REFERENCE[1:2], ACTUAL[1:2])

    assert m.cosine == pytest.approx(17 / (5 * math.sqrt(13)))
    assert m.snr_db == pytest.approx(10 * math.log10(25 / 4))
    assert m.rel_rmse == pytest.approx(0.4)
    assert m.worst_sample["snr_db"] == 0


def test_top1_is_the_share_of_samples_whose_argmax_agrees() -> None:
    m = compare_output("probs", REFERENCE, ACTUAL, top1=True)
    assert m.top1 == pytest.approx(1 / 3)  # only sample 0 keeps its class


def test_top1_only_when_the_caller_gates_a_classification() -> None:
    """A landmarks head has the same shape as a classifier: top1 is not computed unasked."""
    m = compare_output("landmarks", REFERENCE, ACTUAL)
    assert m.top1 is None
    assert "top1" not in m.worst_sample


@pytest.mark.parametrize(
    ("shape", "classifier"),
    [
        ((4, 10), True),  # (C,)
        ((4, 1, 10), True),  # (1, C)
        ((4,), False),  # one scalar per sample
        ((4, 1), False),  # C == 1: nothing to argmax over
        ((4, 1, 1), False),
        ((4, 2, 10), False),  # two rows: not one prediction
        ((4, 8, 8, 3), False),  # an image
    ],
)
def test_top1_only_for_classifier_like_outputs(shape: tuple[int, ...], classifier: bool) -> None:
    data = np.random.default_rng(0).normal(size=shape)
    m = compare_output("y", data, data, top1=True)
    assert (m.top1 == 1.0) if classifier else (m.top1 is None)


def test_top1_agreement_is_not_scaled_by_the_values() -> None:
    reference = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    actual = np.array([[0.0, 9.0, 1.0], [0.4, 0.3, 0.3]])
    m = compare_output("y", reference, actual, top1=True)
    assert m.top1 == 1.0
    assert "top1" not in m.worst_sample


def test_identical_outputs_match_perfectly() -> None:
    data = np.array([[1.0, -2.0, 3.0], [0.5, 0.25, -4.0]])
    m = compare_output("y", data, data.copy(), top1=True)

    assert (m.max_abs, m.mean_abs, m.rmse, m.rel_rmse) == (0.0, 0.0, 0.0, 0.0)
    assert m.cosine == 1.0
    assert m.snr_db is None  # +inf: JSON has no infinity, and no stand-in number is written
    assert m.infinite == {"snr_db": "inf"}
    assert m.value("snr_db") == INF
    assert m.top1 == 1.0


def test_both_zero_vectors_agree_fully() -> None:
    zeros = np.zeros((2, 3))
    m = compare_output("y", zeros, zeros)
    assert (m.cosine, m.rel_rmse, m.value("snr_db")) == (1.0, 0.0, INF)


def test_zero_reference_against_nonzero_actual() -> None:
    m = compare_output("y", np.zeros((1, 2)), np.array([[0.0, 3.0]]))

    assert m.cosine == 0.0
    assert m.value("rel_rmse") == INF  # rmse > 0 over an rms of 0
    assert m.value("snr_db") == -INF  # Σref² = 0 < Σerr²
    assert m.infinite == {"rel_rmse": "inf", "snr_db": "-inf"}
    assert (m.rel_rmse, m.snr_db) == (None, None)
    assert m.max_abs == 3.0
    assert m.rmse == pytest.approx(3 / math.sqrt(2))


def test_nonzero_reference_against_zero_actual() -> None:
    m = compare_output("y", np.array([[1.0, 0.0]]), np.zeros((1, 2)))
    assert m.cosine == 0.0
    assert m.rel_rmse == pytest.approx(1.0)
    assert m.snr_db == pytest.approx(0.0)


def test_opposite_vectors_have_cosine_minus_one() -> None:
    m = compare_output("y", np.array([[1.0, 2.0, 3.0]]), np.array([[-1.0, -2.0, -3.0]]))
    assert m.cosine == -1.0
    assert m.rel_rmse == pytest.approx(2.0)


def test_huge_values_do_not_overflow_the_squares() -> None:
    m = compare_output("y", np.array([[1e200, 1e200]]), np.array([[-1e200, 1e200]]))
    assert m.cosine == pytest.approx(0.0, abs=1e-12)
    assert m.snr_db == pytest.approx(10 * math.log10(2 / 4))  # scale cancels
    assert m.rel_rmse == pytest.approx(math.sqrt(2))


def test_integer_outputs_are_compared_as_floats() -> None:
    reference = np.array([[10, -128]], dtype=np.int8)
    actual = np.array([[12, 127]], dtype=np.int8)
    m = compare_output("y", reference, actual)
    assert m.max_abs == 255.0  # no int8 wrap-around


def test_non_finite_positions_are_counted_and_left_out_of_the_metrics() -> None:
    reference = np.array([[1.0, 2.0, NAN, INF, INF, NAN, 5.0, 3.0, INF]])
    actual = np.array([[1.0, NAN, NAN, INF, -INF, 7.0, INF, 4.0, NAN]])
    #            ok    count  same  same  count  count  count  ok   count
    m = compare_output("y", reference, actual)

    assert m.non_finite == 5
    # Only positions 0 and 7 are compared: reference [1, 3], actual [1, 4].
    assert m.max_abs == 1.0
    assert m.mean_abs == 0.5
    assert m.rmse == pytest.approx(math.sqrt(0.5))
    assert m.cosine == pytest.approx(13 / (math.sqrt(10) * math.sqrt(17)))
    assert m.snr_db == pytest.approx(10 * math.log10(10 / 1))


def test_one_nan_does_not_hide_the_other_samples() -> None:
    reference = np.array([[1.0, 1.0], [1.0, 1.0]])
    actual = np.array([[NAN, 1.0], [1.0, 3.0]])
    m = compare_output("y", reference, actual)
    assert m.non_finite == 1
    assert m.max_abs == 2.0
    assert m.worst_sample["max_abs"] == 1


def test_nothing_compared_gives_no_metrics_not_perfect_ones() -> None:
    m = compare_output("y", np.array([[NAN, 1.0]]), np.array([[NAN, INF]]))
    assert m.non_finite == 1
    assert m.compared == 0
    assert (m.max_abs, m.mean_abs, m.rmse, m.rel_rmse, m.cosine, m.snr_db) == (None,) * 6
    assert m.infinite == {}
    assert tightest_passing(m) == {}


def test_all_nan_output_against_a_finite_reference() -> None:
    """The case a broken interpreter produces: every value NaN, nothing measured."""
    reference = np.arange(12, dtype=np.float32).reshape(3, 4)
    m = compare_output("y", reference, np.full((3, 4), NAN, dtype=np.float32))
    assert (m.non_finite, m.compared, m.cosine, m.max_abs) == (12, 0, None, None)
    assert m.worst_sample == {}


def test_a_sample_without_finite_values_does_not_count_as_a_perfect_sample() -> None:
    reference = np.array([[1.0, 2.0], [1.0, 2.0]])
    actual = np.array([[NAN, NAN], [1.0, 0.0]])
    m = compare_output("y", reference, actual)
    assert (m.non_finite, m.compared) == (2, 2)
    assert m.max_abs == 2.0
    assert m.worst_sample["cosine"] == 1  # sample 0 had nothing to compare


def test_a_collapsed_output_is_flagged_with_its_value() -> None:
    reference = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    m = compare_output("y", reference, np.zeros((3, 2)))
    assert (m.collapsed, m.collapsed_to) == (True, 0.0)
    same_per_sample = np.array([[0.3, 0.7]] * 3)
    m = compare_output("y", reference, same_per_sample)
    assert (m.collapsed, m.collapsed_to) == (True, None)
    assert compare_output("y", reference, reference.copy()).collapsed is False
    constant = np.ones((3, 2))
    assert compare_output("y", constant, constant).collapsed is False  # the source agrees
    assert compare_output("y", reference[:1], np.zeros((1, 2))).collapsed is False


def test_different_shapes_raise_with_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        compare_output("logits", np.zeros((2, 3)), np.zeros((2, 4)))


def test_scalar_arrays_have_no_sample_axis() -> None:
    with pytest.raises(ValueError, match="scalar"):
        compare_output("y", np.array(1.0), np.array(1.0))


def test_no_samples_measure_nothing() -> None:
    m = compare_output("y", np.zeros((0, 3)), np.zeros((0, 3)), top1=True)
    assert (m.samples, m.compared) == (0, 0)
    assert m.worst_sample == {}
    assert m.top1 is None
    assert (m.max_abs, m.cosine, m.snr_db) == (None, None, None)


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("reference", "actual"),
    [
        (np.ones((1, 2)), np.ones((1, 2))),  # snr +inf
        (np.zeros((1, 2)), np.ones((1, 2))),  # rel_rmse +inf, snr -inf
        (np.array([[1e308, -1e308]]), np.array([[-1e308, 1e308]])),  # error overflows
        (np.ones((2, 2)), np.full((2, 2), NAN)),  # nothing compared
    ],
)
def test_reports_hold_no_stand_in_numbers(reference: Any, actual: Any) -> None:
    m = compare_output("y", reference, actual)
    text = m.model_dump_json()
    data = strict_json(text)
    numbers = [v for v in data.values() if isinstance(v, float)]
    assert all(abs(v) < 1e300 for v in numbers), data
    assert OutputMetrics.model_validate_json(text) == m


# --------------------------------------------------------------------------- violations


@pytest.mark.parametrize("key", MAX_METRICS)
def test_a_maximum_is_broken_only_above_it(key: str) -> None:
    value = getattr(metrics(), key)
    assert violations(metrics(), {key: value}) == []
    assert violations(metrics(), {key: value * 2}) == []
    [violation] = violations(metrics(), {key: value / 2})
    assert violation == ThresholdViolation(
        output="y",
        threshold_key=key,
        metric=key,
        value=value,
        threshold=value / 2,
        worst_sample=2 if key == "max_abs" else None,
    )


@pytest.mark.parametrize(("key", "metric"), MIN_METRICS.items())
def test_a_minimum_is_broken_only_below_it(key: str, metric: str) -> None:
    value = getattr(metrics(), metric)
    assert violations(metrics(), {key: value}) == []
    assert violations(metrics(), {key: value - 0.5}) == []
    [violation] = violations(metrics(), {key: value + 0.001})
    expected_sample = {"cosine": 3, "top1": 1}.get(metric)
    assert violation == ThresholdViolation(
        output="y",
        threshold_key=key,
        metric=metric,
        value=value,
        threshold=value + 0.001,
        worst_sample=expected_sample,
    )


def test_an_infinite_error_breaks_a_maximum_and_says_so() -> None:
    m = compare_output("y", np.zeros((1, 2)), np.ones((1, 2)))
    [violation] = violations(m, {"rel_rmse": 1e6})
    assert (violation.value, violation.infinite) == (None, "inf")


def test_unmeasured_metrics_break_nothing() -> None:
    m = compare_output("y", np.ones((1, 2)), np.full((1, 2), NAN))
    assert violations(m, {"max_abs": 0.0, "min_cosine": 1.0}) == []


@pytest.mark.parametrize("key", [*MAX_METRICS, "min_cosine", "min_snr_db", "min_top1"])
def test_nan_breaks_every_threshold(key: str) -> None:
    metric = MIN_METRICS.get(key, key)
    m = metrics(**{metric: NAN})
    [violation] = violations(m, {key: 1e300 if key in MAX_METRICS else -1e300})
    assert violation.metric == metric
    assert math.isnan(violation.value)


def test_min_top1_is_skipped_without_top1() -> None:
    assert violations(metrics(top1=None), {"min_top1": 0.99}) == []


def test_violations_come_in_threshold_order() -> None:
    found = violations(metrics(), {"min_cosine": 0.999, "max_abs": 0.01, "rmse": 1.0})
    assert [v.threshold_key for v in found] == ["min_cosine", "max_abs"]


def test_unknown_threshold_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="max_abz"):
        violations(metrics(), {"max_abz": 1.0})


# --------------------------------------------------------------------------- tightest


def test_tightest_passing_rounds_in_the_passing_direction() -> None:
    m = compare_output("probs", REFERENCE, ACTUAL, top1=True)
    assert tightest_passing(m) == {
        "max_abs": 2.0,
        "mean_abs": 1.0,
        "rmse": 1.415,  # sqrt 2 = 1.41421… rounded up
        "rel_rmse": 1.415,
        "min_cosine": 0.0,
        "min_snr_db": -3.011,  # -3.0103 rounded down
        "min_top1": 0.3333,
    }


def test_tightest_passing_four_significant_digits() -> None:
    m = metrics(max_abs=0.012345, cosine=0.99987654, snr_db=41.23456, top1=None)
    tight = tightest_passing(m)
    assert tight["max_abs"] == 0.01235
    assert tight["min_cosine"] == 0.9998765  # 4 digits of the distance from 1
    assert tight["min_snr_db"] == 41.23
    assert "min_top1" not in tight


def test_tightest_passing_keeps_exact_values() -> None:
    """A value already at 4 digits is not pushed one step further."""
    tight = tightest_passing(metrics(max_abs=0.5, cosine=0.25))
    assert (tight["max_abs"], tight["min_cosine"]) == (0.5, 0.25)
    # 0.1 and 0.0123 are slightly off in binary; they must still come back as themselves.
    tight = tightest_passing(metrics(max_abs=0.1, rmse=0.0123, cosine=0.1, snr_db=0.0123))
    assert (tight["max_abs"], tight["rmse"]) == (0.1, 0.0123)
    assert (tight["min_cosine"], tight["min_snr_db"]) == (0.1, 0.0123)


def test_tightest_passing_skips_nan() -> None:
    assert "rmse" not in tightest_passing(metrics(rmse=NAN))


def test_tightest_passing_leaves_out_infinite_metrics() -> None:
    m = compare_output("y", np.zeros((1, 2)), np.ones((1, 2)))
    tight = tightest_passing(m)
    assert "rel_rmse" not in tight  # no maximum passes an infinite error
    assert "min_snr_db" not in tight
    assert tight["max_abs"] == 1.0


values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32) | st.sampled_from(
    [NAN, INF, -INF, 0.0, 1e-30]
)


@st.composite
def array_pairs(draw: st.DrawFn) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    reference = draw(hnp.arrays(np.float32, shape, elements=values))
    noise = draw(hnp.arrays(np.float32, shape, elements=values))
    scale = draw(st.sampled_from([0.0, 1e-6, 1e-2, 1.0]))
    with np.errstate(all="ignore"):
        actual = (reference + scale * noise).astype(np.float32)
    return reference, actual


@settings(max_examples=300, deadline=None)
@given(array_pairs())
def test_tightest_passing_always_passes(
    pair: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    m = compare_output("y", *pair)
    tight = tightest_passing(m)

    assert violations(m, tight) == []
    finite = {k for k in MAX_METRICS if (v := m.value(k)) is not None and math.isfinite(v)}  # type: ignore[arg-type]
    assert set(tight) >= finite
    Thresholds.model_validate(tight)  # pastes into the policy as it is
    strict_json(m.model_dump_json())


@settings(max_examples=100, deadline=None)
@given(array_pairs())
def test_comparing_with_itself_is_perfect(
    pair: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    reference, _ = pair
    m = compare_output("y", reference, reference.copy())
    assert m.non_finite == 0
    if m.compared:
        assert (m.max_abs, m.rel_rmse, m.cosine, m.value("snr_db")) == (0.0, 0.0, 1.0, INF)


any_metric = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False)


@settings(max_examples=500, deadline=None)
@given(error=any_metric.map(abs), cosine=st.floats(-1, 1), snr=any_metric, top1=st.floats(0, 1))
def test_rounding_passes_across_the_whole_float_range(
    error: float, cosine: float, snr: float, top1: float
) -> None:
    """Subnormals, 1e300 and everything between: the rounded threshold still passes."""
    m = metrics(
        max_abs=error,
        mean_abs=error,
        rmse=error,
        rel_rmse=error,
        cosine=cosine,
        snr_db=snr,
        top1=top1,
    )
    tight = tightest_passing(m)
    assert violations(m, tight) == []
    for key, value in tight.items():
        digits = 17 if key == "min_cosine" else 4  # cosine: 4 digits of 1 - cosine, any length
        assert float(f"{value:.{digits}g}") == value, (key, value)  # pasteable


# --------------------------------------------------------------------------- a run


def test_a_run_is_decided_where_it_is_measured() -> None:
    reference = {"y": REFERENCE}
    plan = OutputPlan({"max_abs": 1.0})
    judged = compare_run(reference, {"y": ACTUAL}, by_order=False, plan_for=lambda *_: plan)
    assert judged.status == "diverged"
    assert [v.threshold_key for v in judged.violations] == ["max_abs"]
    passing = OutputPlan({"max_abs": 2.0})
    judged = compare_run(reference, {"y": ACTUAL}, by_order=False, plan_for=lambda *_: passing)
    assert (judged.status, judged.violations) == ("passed", [])


def test_a_run_with_nan_outputs_fails_and_measures_nothing() -> None:
    reference = {"y": REFERENCE}
    actual = {"y": np.full(REFERENCE.shape, NAN, dtype=np.float32)}
    judged = compare_run(reference, actual, by_order=False, plan_for=lambda *_: OutputPlan())
    assert judged.status == "non-finite"
    [m] = judged.metrics
    assert (m.cosine, m.max_abs, m.compared, m.non_finite) == (None, None, 0, 6)


def test_a_run_whose_outputs_cannot_be_paired_is_a_mismatch() -> None:
    judged = compare_run(
        {"y": REFERENCE}, {"z": ACTUAL}, by_order=False, plan_for=lambda *_: OutputPlan()
    )
    assert judged.status == "mismatch"
    assert judged.metrics == [] and "missing" in (judged.message or "")


def test_the_plan_sees_both_names_when_pairing_by_order() -> None:
    seen: list[tuple[str, str]] = []

    def plan_for(name: str, converted: str) -> OutputPlan:
        seen.append((name, converted))
        return OutputPlan()

    compare_run({"probs": REFERENCE}, {"Identity:0": REFERENCE}, by_order=True, plan_for=plan_for)
    assert seen == [("probs", "Identity:0")]


def test_names_pair_whatever_the_order_each_side_gives() -> None:
    """A model without signatures may list its outputs in any order: names still win."""
    reference = {"output_mesh": REFERENCE, "conv_flag": REFERENCE[:, :1]}
    actual = {"conv_flag": REFERENCE[:, :1], "output_mesh": REFERENCE}
    pairs = match_outputs(reference, actual, by_order=True)
    assert [(name, other) for name, other, _, _ in pairs] == [
        ("conv_flag", "conv_flag"),
        ("output_mesh", "output_mesh"),
    ]


def test_pairing_by_order_keeps_each_side_s_own_order() -> None:
    reference = {"z": REFERENCE, "a": REFERENCE[:, :1]}
    actual = {"Identity": REFERENCE, "Identity_1": REFERENCE[:, :1]}
    pairs = match_outputs(reference, actual, by_order=True)
    assert [(name, other) for name, other, _, _ in pairs] == [
        ("z", "Identity"),
        ("a", "Identity_1"),
    ]


def test_no_tightest_thresholds_for_an_output_with_nan() -> None:
    actual = ACTUAL.copy()
    actual[0, 0] = NAN
    judged = compare_run(
        {"y": REFERENCE}, {"y": actual}, by_order=False, plan_for=lambda *_: OutputPlan()
    )
    assert judged.status == "non-finite"
    assert judged.tightest == {}  # no threshold can make a NaN pass

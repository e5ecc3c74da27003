"""What was measured and how far a threshold loosens it: the worst finite value of each
broken threshold over a variant's runtimes, and the value that lets its error grow by the
margin, written as the decimal it prints as."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.check_facts import loaded_policy, output_metrics
from tests.support.suggest_reports import (
    TWO_VARIANTS,
    break_max_abs_infinitely,
    noisy_run,
    report_of,
)
from tflite_gate.judge.compare import MAX_METRICS
from tflite_gate.judge.suggest import (
    broken_in,
    configured_models,
    loosened,
    measured_text,
    metric_value,
    worse,
)
from tflite_gate.support.run_options import parse_margin


def test_margin_spellings() -> None:
    assert parse_margin("50%") == 0.5
    assert parse_margin("0.5") == 0.5
    assert parse_margin(" 0 ") == 0.0
    for bad in ("-1", "abc", "nan", "inf", "1e9", "", "%"):
        with pytest.raises(ValueError, match="margin"):
            parse_margin(bad)


def test_loosened_values() -> None:
    assert loosened("max_abs", 0.0123, 1.0) == 0.025
    assert loosened("rel_rmse", 0.0123, 0.0) == 0.013  # no margin: still rounded looser
    assert loosened("min_cosine", 0.999, 1.0) == 0.996  # the gap grows with the error squared
    assert loosened("min_snr_db", 40.0, 1.0) == 33.9  # 20·log10(2) = 6.02 dB
    assert loosened("min_top1", 0.9, 1.0) == 0.8
    assert loosened("min_top1", 0.2, 9.0) == 0.0  # never below the range
    assert loosened("min_cosine", -0.5, 9.0) == -1.0


@pytest.mark.slow
@given(
    key=st.sampled_from(["max_abs", "rmse", "rel_rmse", "min_cosine", "min_snr_db", "min_top1"]),
    measured=st.floats(0.0, 1.0, allow_nan=False),
    margin=st.floats(0.0, 100.0, allow_nan=False),
)
def test_a_loosened_threshold_passes_what_was_measured_and_carries_no_noise(
    key: str, measured: float, margin: float
) -> None:
    value = loosened(key, measured, margin)  # type: ignore[arg-type]
    assert math.isfinite(value)
    assert value >= measured if key in MAX_METRICS else value <= measured
    assert float(f"{value:.12g}") == value, f"float noise: {value!r}"


def test_loosened_values_are_the_decimals_they_print_as() -> None:
    # 1 - 0.07 is 0.9299999999999999 in binary: the threshold written must read 0.93.
    assert repr(loosened("min_cosine", 0.9825, 1.0)) == "0.93"
    assert repr(loosened("min_top1", 0.965, 1.0)) == "0.93"
    assert repr(loosened("min_cosine", 0.99999, 1.0)) == "0.99996"  # the gap's digits stay


def test_a_measured_value_is_shown_with_the_digits_that_set_it_apart() -> None:
    assert measured_text(0.9999950862899506, 0.9999999, 0.99998) == "0.999995"
    # Six digits would print 1 for a cosine below the threshold.
    assert measured_text(0.99999995, 0.9999999, 0.9999998) == "0.99999995"
    assert measured_text(0.0123456789, 0.01, 0.025) == "0.0123457"


def test_an_unknown_threshold_is_never_loosened_silently() -> None:
    with pytest.raises(ValueError, match="unknown threshold 'max_ratio'"):
        loosened("max_ratio", 0.5, 1.0)  # type: ignore[arg-type]


def test_the_worse_of_two_measurements_depends_on_the_threshold() -> None:
    assert worse("max_abs", 0.1, 0.3) == 0.3  # the larger error
    assert worse("rel_rmse", 0.3, 0.1) == 0.3
    assert worse("min_cosine", 0.99, 0.9) == 0.9  # the lower agreement
    assert worse("min_snr_db", 20.0, 30.0) == 20.0


def test_a_threshold_reads_the_metric_it_is_compared_with() -> None:
    metrics = output_metrics(max_abs=0.5, rel_rmse=0.3, cosine=0.9, top1=0.75, snr_db=None)
    metrics.infinite = {"snr_db": "inf"}
    assert [metric_value(metrics, key) for key in ("max_abs", "rel_rmse")] == [0.5, 0.3]
    assert [metric_value(metrics, key) for key in ("min_cosine", "min_top1")] == [0.9, 0.75]
    assert metric_value(metrics, "min_snr_db") == math.inf  # infinite, not missing


def test_a_broken_threshold_keeps_the_worst_value_over_the_runtimes(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    runs = [
        noisy_run(loaded, "det", "int8", {"probs": 0.01}, "a"),
        noisy_run(loaded, "det", "int8", {"probs": 0.03}, "b"),
    ]
    model = report_of(loaded, {("det", "int8"): runs}).models[0]
    broken = broken_in(model, "int8")
    assert list(broken) == [("probs", "min_cosine")]
    item = broken[("probs", "min_cosine")]
    cosines = [m.cosine for run in runs for m in run.metrics if m.output == "probs"]
    assert (item.output, item.key, item.threshold) == ("probs", "min_cosine", 0.99999)
    assert item.measured == min(c for c in cosines if c is not None)


def test_an_infinite_error_is_no_broken_value_to_loosen(tmp_path: Path) -> None:
    """No threshold passes it: it stays a finding, never a suggestion."""
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    run = noisy_run(loaded, "det", "int8", {"probs": 0.01}, "a")
    break_max_abs_infinitely(run, "box")
    model = report_of(loaded, {("det", "int8"): [run]}).models[0]
    assert list(broken_in(model, "int8")) == [("probs", "min_cosine")]


def test_only_the_models_the_policy_has_are_configured(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    report = report_of(loaded, {})
    report.models.append(report.models[0].model_copy(update={"name": "gone"}))
    [(model, config)] = configured_models(report, loaded)
    assert (model.name, config.name, config.index) == ("det", "det", 0)

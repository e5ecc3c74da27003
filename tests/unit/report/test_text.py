"""Numbers and names as every reporter prints them (fast: pure functions)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tflite_gate.report.model import LayerDiagnosis, LayerStat, OutputMetrics
from tflite_gate.report.text import (
    diagnosis_line,
    format_metric,
    format_number,
    format_threshold,
    layer_name,
    metrics_line,
)


@pytest.mark.parametrize(
    ("value", "threshold", "shown"),
    [
        (0.999226, 0.99999, "0.99923"),  # the gap, 7.6e-4, in two digits
        (0.9999949, 0.999995, "0.9999949"),  # `.6g` printed 0.999995 < 0.999995
        (0.0116, 0.01, "0.0116"),
        (0.0100004, 0.01, "0.0100004"),
        (5.3, 0.01, "5.3"),
        (0.9299999999999999, 0.95, "0.93"),  # no float noise where the gap is large
        (0.0, 0.5, "0"),
    ],
)
def test_a_value_beside_its_threshold_carries_the_digits_of_the_gap(
    value: float, threshold: float, shown: str
) -> None:
    assert format_number(value, threshold=threshold) == shown


@given(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
)
def test_a_shown_value_is_on_the_same_side_of_its_shown_threshold(
    value: float, threshold: float
) -> None:
    shown = float(format_number(value, threshold=threshold).lstrip(">"))
    limit = float(format_threshold(threshold))
    assert limit == threshold
    assert (shown > limit, shown < limit) == (value > threshold, value < threshold)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.99999997, "0.99999997"),  # a real gap from 1, shown
        (0.9999999999999998, ">0.999999999"),  # float noise: below 1, never "1", no noise
        (1.0, "1"),
        (0.999815, "0.999815"),
    ],
)
def test_agreement_below_one_shows_its_gap_from_one_without_float_noise(
    value: float, shown: str
) -> None:
    assert format_number(value, 6, agreement=True) == shown


@pytest.mark.parametrize(
    ("value", "threshold", "shown"),
    [
        (0.9999999999999998, 0.99999, ">0.999999999"),
        (0.99999999995, 0.9999999999, "0.99999999995"),  # a fine threshold: a fine gap
    ],
)
def test_an_agreement_value_beside_its_threshold_never_reads_as_one(
    value: float, threshold: float, shown: str
) -> None:
    assert format_number(value, 6, threshold=threshold, agreement=True) == shown


@pytest.mark.parametrize(
    ("threshold", "shown"),
    [(0.99999, "0.99999"), (1e-5, "1e-5"), (0.01, "0.01"), (150.0, "150"), (2.5e-12, "2.5e-12")],
)
def test_a_threshold_is_shown_as_written(threshold: float, shown: str) -> None:
    assert format_threshold(threshold) == shown


def test_the_run_line_has_no_float_noise() -> None:
    metrics = OutputMetrics(
        output="probs",
        samples=16,
        compared=48,
        max_abs=3.73e-9,
        mean_abs=1e-9,
        rmse=1e-9,
        rel_rmse=1.03e-8,
        cosine=0.9999999999999998,
        snr_db=160.0,
        top1=1.0,
    )
    assert format_metric(metrics, "cosine", 6) == ">0.999999999"
    assert metrics_line(metrics) == (
        "probs: max_abs 3.73e-9 rel_rmse 1.03e-8 cosine >0.999999999 snr_db 160 top1 1"
    )


def test_not_measured_and_infinite_values_stay_words() -> None:
    assert format_number(None, threshold=0.5) == "n/a"
    assert format_number(math.inf, threshold=30.0) == "inf"
    assert format_number(math.nan) == "nan"


FUSED = (
    "mobilenetv2_1.00_224/block_16_project_BN/FusedBatchNormV3;"
    "mobilenetv2_1.00_224/block_16_project_BN/FusedBatchNormV3/ReadVariableOp;"
    "mobilenetv2_1.00_224/block_16_project/Conv2D;"
    "mobilenetv2_1.00_224/block_16_depthwise_relu/Relu6;"
    "mobilenetv2_1.00_224/block_16_depthwise_BN/FusedBatchNormV3;"
    "mobilenetv2_1.00_224/block_16_depthwise/depthwise;block_16_project/kernel"
)


@pytest.mark.parametrize(
    ("tensor", "shown"),
    [
        ("model/dense_1/MatMul;model/dense_1/BiasAdd;model/re_lu/Relu", "dense_1+re_lu"),
        ("model_1/act_1/Relu;model_1/conv_1/convolution", "act_1+conv_1"),
        ("model_1/flatten_1/Reshape", "flatten_1"),
        ("serving_default_x:0", "serving_default_x:0"),
        ("StatefulPartitionedCall_1:0", "StatefulPartitionedCall_1:0"),
        (FUSED, "block_16_project_BN+block_16_project+block_16_depthwise_relu (+2 more)"),
    ],
)
def test_a_fused_tensor_name_is_shown_as_its_layers(tensor: str, shown: str) -> None:
    assert layer_name(tensor) == shown


def test_the_diagnosis_line_names_layers_and_the_report_keeps_the_tensor() -> None:
    diagnosis = LayerDiagnosis(
        runtime="ai-edge-litert",
        before=[],
        layers=[LayerStat(tensor=FUSED, op="CONV_2D", rel_rmse=0.2, added=0.15, share=0.6)],
    )
    line = diagnosis_line(diagnosis)
    assert line == (
        "most error added at 'block_16_project_BN+block_16_project+block_16_depthwise_relu "
        "(+2 more)' (CONV_2D, 60%)"
    )
    assert FUSED in diagnosis.model_dump_json()

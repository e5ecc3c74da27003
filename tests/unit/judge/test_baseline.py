"""What changed since the baseline: only what a reader can see change, op counts included."""

from __future__ import annotations

from tflite_gate.judge.baseline import variant_change
from tflite_gate.report.model import (
    Inspection,
    OpInfo,
    OutputMetrics,
    RuntimeRun,
    VariantReport,
)
from tflite_gate.report.text import change_parts, format_number

# The examples' float classifier against the Keras model, as TF 2.21 converted it.
FLOAT_NOISE = OutputMetrics(
    output="probs",
    samples=16,
    compared=160,
    max_abs=7.450580596923828e-09,
    mean_abs=7.450580596923829e-10,
    rmse=2.356080457693621e-09,
    rel_rmse=2.2264219913133122e-08,
    cosine=0.9999999999999997,
    snr_db=153.0478503388445,
    top1=1.0,
)


# The examples' int8 classifier: an error well above float rounding.
QUANTIZED = OutputMetrics(
    output="probs",
    samples=16,
    compared=160,
    max_abs=0.011600017547607422,
    mean_abs=0.0017197,
    rmse=0.0039,
    rel_rmse=0.0393,
    cosine=0.999226,
    snr_db=28.1,
    top1=1.0,
)


def _variant(metrics: OutputMetrics, *ops: OpInfo) -> VariantReport:
    inspection = Inspection(
        size_bytes=1000,
        schema_version=3,
        subgraphs=1,
        ops=list(ops),
        inputs=[],
        outputs=[],
        signatures=[],
    )
    run = RuntimeRun(
        runtime="ai-edge-litert",
        runtime_version="2.3.0",
        status="passed",
        samples=metrics.samples,
        metrics=[metrics],
    )
    return VariantReport(
        name="float",
        quantization="none",
        io="float32",
        status="converted",
        inspection=inspection,
        runs=[run],
    )


def _conv(count: int) -> OpInfo:
    return OpInfo(name="CONV_2D", kind="builtin", version=1, count=count)


def test_a_change_is_listed_only_where_its_printed_values_differ() -> None:
    later = QUANTIZED.model_copy(update={"cosine": 0.9992261, "max_abs": 0.0125})
    change = variant_change("m", _variant(QUANTIZED), _variant(later))
    assert [item.metric for item in change.metrics] == ["max_abs"]
    for item in change.metrics:
        assert format_number(item.before, 6) != format_number(item.after, 6)
    [shown] = change_parts(change)
    assert "cosine" not in shown
    assert shown == "probs on ai-edge-litert: max_abs 0.0116 → 0.0125"


def test_float_rounding_on_both_sides_is_no_change() -> None:
    """3.7e-9 → 7.5e-9 doubles a rounding error: "100% worse", yet nothing was lost."""
    doubled = FLOAT_NOISE.model_copy(
        update={"max_abs": 1.5e-8, "rel_rmse": 4.4e-8, "rmse": 4.7e-9, "snr_db": 147.0}
    )
    change = variant_change("m", _variant(FLOAT_NOISE), _variant(doubled))
    assert change.metrics == []
    assert change_parts(change) == []
    lost = doubled.model_copy(update={"rel_rmse": 0.02, "max_abs": 0.004})
    listed = variant_change("m", _variant(FLOAT_NOISE), _variant(lost)).metrics
    assert {"max_abs", "rel_rmse"} <= {item.metric for item in listed}  # a real loss still is


def test_an_agreement_below_one_never_reads_as_one_in_a_change() -> None:
    worse = QUANTIZED.model_copy(update={"cosine": 0.99999})
    better = QUANTIZED.model_copy(update={"cosine": 0.9999999999999997})
    change = variant_change("m", _variant(worse), _variant(better))
    [shown] = change_parts(change)
    assert "cosine 0.99999 → >0.999999999" in shown


def test_op_counts_are_compared() -> None:
    change = variant_change("m", _variant(FLOAT_NOISE, _conv(2)), _variant(FLOAT_NOISE, _conv(3)))
    assert [count.model_dump() for count in change.counts] == [
        {"op": "CONV_2D", "before": 2, "after": 3}
    ]
    assert change.ops_added == [] and change.versions == []
    assert change_parts(change) == ["ops CONV_2D x2→x3"]

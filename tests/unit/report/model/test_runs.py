"""A variant's run on one runtime as the report holds it: metric values (infinities
included), run statuses, the runtime's label, and the keep_float fix a diagnosis offers."""

from __future__ import annotations

import math
from typing import get_args

import pytest

from tflite_gate.report.model import (
    EXECUTED_RUN_STATUSES,
    FAILING_RUN_STATUSES,
    KeepFloatTrial,
    LayerDiagnosis,
    OutputMetrics,
    RunStatus,
    RuntimeRun,
)


def _metrics(**fields: object) -> OutputMetrics:
    values: dict[str, object] = {
        "output": "probs",
        "samples": 4,
        "compared": 40,
        "max_abs": 0.5,
        "mean_abs": 0.1,
        "rmse": 0.2,
        "rel_rmse": 0.3,
        "cosine": 0.9,
        "snr_db": 12.0,
    }
    return OutputMetrics.model_validate(values | fields)


def test_a_measured_metric_is_its_number() -> None:
    metrics = _metrics()
    assert metrics.value("max_abs") == 0.5 and metrics.value("cosine") == 0.9


def test_an_infinite_metric_is_an_infinity_of_its_sign() -> None:
    metrics = _metrics(snr_db=None, rel_rmse=None, infinite={"snr_db": "inf", "rel_rmse": "-inf"})
    assert metrics.value("snr_db") == math.inf
    assert metrics.value("rel_rmse") == -math.inf


def test_a_metric_not_measured_has_no_value() -> None:
    assert _metrics().value("top1") is None  # only classification outputs get one


def test_infinities_travel_as_text_in_json() -> None:
    metrics = _metrics(snr_db=None, infinite={"snr_db": "inf"})
    text = metrics.model_dump_json()
    assert '"snr_db":null' in text and '"infinite":{"snr_db":"inf"}' in text
    assert OutputMetrics.model_validate_json(text).value("snr_db") == math.inf


def test_failing_and_executed_statuses_are_run_statuses() -> None:
    statuses = set(get_args(RunStatus))
    assert statuses >= FAILING_RUN_STATUSES | EXECUTED_RUN_STATUSES
    assert statuses - FAILING_RUN_STATUSES == {"passed", "ran", "unverifiable"}
    # A run that diverged finished every sample; a crash did not.
    assert {"diverged", "non-finite", "mismatch"} <= EXECUTED_RUN_STATUSES
    assert not {"crash", "timeout", "error", "unavailable"} & EXECUTED_RUN_STATUSES


@pytest.mark.parametrize(
    ("runtime", "version", "label"),
    [
        ("ai-edge-litert", "2.3.0", "ai-edge-litert 2.3.0"),
        ("tflite-runtime==2.14.0", "2.14.0", "tflite-runtime==2.14.0"),
        ("ai-edge-litert", None, "ai-edge-litert"),
    ],
)
def test_the_label_shows_a_version_the_name_does_not_pin(
    runtime: str, version: str | None, label: str
) -> None:
    assert RuntimeRun(runtime=runtime, runtime_version=version, status="passed").label == label


def test_custom_ops_say_who_resolved_them() -> None:
    itself = RuntimeRun(runtime="ai-edge-litert", status="passed")
    assert itself.custom_ops_resolver == "resolved by the runtime itself"
    registered = RuntimeRun(
        runtime="ai-edge-litert", status="passed", custom_op_registerers=["Reg1", "Reg2"]
    )
    assert registered.custom_ops_resolver == "with the policy's registerers Reg1, Reg2"


def _trial(nodes: list[str], ops: list[str], status: RunStatus) -> KeepFloatTrial:
    return KeepFloatTrial(nodes=nodes, ops=ops, runtime="ai-edge-litert", status=status)


def _diagnosis(**fields: object) -> LayerDiagnosis:
    trials = [
        _trial(["probs"], [], "diverged"),
        _trial(["probs"], ["SOFTMAX"], "diverged"),
        _trial(["probs", "logits"], [], "passed"),
    ]
    return LayerDiagnosis.model_validate(
        {"runtime": "ai-edge-litert", "before": [], "trials": trials} | fields
    )


def test_the_fix_is_the_trial_that_passed() -> None:
    fix = _diagnosis(keep_float=["probs", "logits"], keep_float_ops=[]).fix()
    assert fix is not None and fix.status == "passed"


def test_a_fix_without_op_types_is_the_trial_that_kept_none() -> None:
    fix = _diagnosis(keep_float=["probs"]).fix()  # keep_float_ops unset: no op types
    assert fix is not None and fix.ops == []


def test_the_fix_must_match_the_op_types_too() -> None:
    fix = _diagnosis(keep_float=["probs"], keep_float_ops=["SOFTMAX"]).fix()
    assert fix is not None and fix.ops == ["SOFTMAX"]
    assert _diagnosis(keep_float=["probs"], keep_float_ops=["TANH"]).fix() is None


def test_no_fix_when_no_trial_passed() -> None:
    assert _diagnosis().fix() is None

"""Which of a variant's policy thresholds apply to which of its outputs.

Every threshold applies to every output, except `min_top1`: agreement of the argmax
means something only for a classification. A `min_top1` written under `per_output`
applies to that output as written. A model-wide `min_top1` (in `defaults`, the model
or a variant) applies to the model's classification outputs, which are:

- the outputs the model's `classification:` list names, when the policy has one;
- otherwise the outputs the converted model computes with SOFTMAX (looking through
  (de)quantize and reshape ops) whose per-sample shape is (C,) or (1, C), C > 1.

A 10-value landmarks head and a 10-class classifier have the same shape; only the
softmax (or the user) tells them apart. Every output a model-wide `min_top1` skips is
recorded with the reason, so the report can say so.
"""

from __future__ import annotations

from tflite_gate.judge.compare import OutputPlan, has_classes
from tflite_gate.model.data import sample_shape
from tflite_gate.policy.resolve import ThresholdPlan
from tflite_gate.report.model import SkippedThreshold, TensorInfo

CLASSIFIER_OPS = frozenset({"SOFTMAX", "LOG_SOFTMAX"})


def _classes_per_call(tensor: TensorInfo) -> bool:
    """One row of class scores per interpreter call (a dynamic batch read as 1)?"""
    return has_classes(tuple(sample_shape(tensor.shape)))


def _classification_evidence(
    output: str, tensor: TensorInfo | None, declared: list[str] | None
) -> str | None:
    """Why `output` is a classification, or None with the reason kept by the caller."""
    if declared is not None:
        return "listed in classification" if output in declared else None
    if tensor is None or tensor.producer not in CLASSIFIER_OPS:
        return None
    return f"computed by {tensor.producer}" if _classes_per_call(tensor) else None


def _skip_reason(output: str, tensor: TensorInfo | None, declared: list[str] | None) -> str:
    if declared is not None:
        listed = ", ".join(declared) or "no output"
        return f"the model's classification list names {listed}, not {output!r}"
    producer = tensor.producer if tensor is not None else None
    if producer in CLASSIFIER_OPS and tensor is not None:
        return (
            f"{output!r} comes from {producer} but has shape {tensor.shape}; top1 needs "
            "one row of class scores per sample"
        )
    made_by = f"computed by {producer}" if producer else "not computed by SOFTMAX"
    return (
        f"{output!r} is {made_by}, so it is not taken for a classification; list it in the "
        "model's `classification:` to gate its top1"
    )


def plan_output(
    plan: ThresholdPlan | None,
    output: str,
    tensor: TensorInfo | None,
    declared: list[str] | None,
) -> tuple[OutputPlan, SkippedThreshold | None]:
    """The thresholds to check on `output`, and the model-wide min_top1 it skips, if any.

    top1 is measured on every classification output, gated or not: it is the metric
    people read for a classifier.

    `tensor` is the converted model's output as inspected (its producer op and shape);
    `declared` is the model's `classification:` list, None when the policy has none.
    """
    written = plan.for_output(output) if plan is not None else {}
    thresholds = {key: setting.value for key, setting in written.items()}
    per_output = plan.per_output.get(output, {}) if plan is not None else {}
    explicit = "min_top1" in per_output or (declared is not None and output in declared)
    classification = explicit or _classification_evidence(output, tensor, declared) is not None
    top1 = classification and (tensor is None or _classes_per_call(tensor))
    if top1 or "min_top1" not in thresholds:
        return OutputPlan(thresholds, top1=top1), None
    if classification and tensor is not None:
        reason = (
            f"top1 needs one row of class scores per sample, shape (C,) or (1, C); "
            f"{output!r} has shape {tensor.shape}"
        )
    else:
        reason = _skip_reason(output, tensor, declared)
    del thresholds["min_top1"]
    skipped = SkippedThreshold(
        output=output, threshold_key="min_top1", reason=reason, explicit=explicit
    )
    return OutputPlan(thresholds), skipped

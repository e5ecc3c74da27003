"""Which thresholds apply to which output: min_top1 gates classifications only."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tflite_gate.judge.thresholds import plan_output
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.resolve import ModelConfig, resolve_model
from tflite_gate.report.model import TensorInfo

SOFTMAX_HEAD = TensorInfo(name="probs", shape=[1, 10], dtype="float32", producer="SOFTMAX")
LINEAR_HEAD = TensorInfo(name="coords", shape=[1, 10], dtype="float32", producer="FULLY_CONNECTED")


def _config(
    tmp_path: Path, model_extra: str = "", defaults: str = "{min_top1: 0.9}"
) -> ModelConfig:
    policy = tmp_path / "tflite-gate.yml"
    policy.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            defaults:
              max_divergence: {defaults}
            models:
              - name: m
                source: m.keras
            """
        )
        + textwrap.indent(textwrap.dedent(model_extra), "    ")
    )
    return resolve_model(load_policy(policy, tmp_path), 0)


def test_a_softmax_output_is_gated_by_a_model_wide_min_top1(tmp_path: Path) -> None:
    config = _config(tmp_path)
    plan, skipped = plan_output(config.thresholds["float"], "probs", SOFTMAX_HEAD, None)
    assert (plan.thresholds, plan.top1, skipped) == ({"min_top1": 0.9}, True, None)


def test_a_regression_head_of_the_same_shape_is_not(tmp_path: Path) -> None:
    config = _config(tmp_path)
    plan, skipped = plan_output(config.thresholds["float"], "coords", LINEAR_HEAD, None)
    assert (plan.thresholds, plan.top1) == ({}, False)
    assert skipped is not None and not skipped.explicit
    assert "FULLY_CONNECTED" in skipped.reason and "classification:" in skipped.reason


def test_softmax_over_a_non_class_shape_is_not_a_classification(tmp_path: Path) -> None:
    segmentation = TensorInfo(name="mask", shape=[1, 8, 8, 3], dtype="float32", producer="SOFTMAX")
    plan, skipped = plan_output(_config(tmp_path).thresholds["float"], "mask", segmentation, None)
    assert plan.top1 is False
    assert skipped is not None and "shape [1, 8, 8, 3]" in skipped.reason


def test_the_classification_list_decides_instead_of_the_softmax(tmp_path: Path) -> None:
    config = _config(tmp_path, "classification: [coords]\n")
    thresholds = config.thresholds["float"]
    declared = config.classification.value
    assert declared == ["coords"]
    assert plan_output(thresholds, "coords", LINEAR_HEAD, declared)[0].top1 is True
    plan, skipped = plan_output(thresholds, "probs", SOFTMAX_HEAD, declared)
    assert plan.top1 is False and skipped is not None
    assert "classification list names coords" in skipped.reason


def test_per_output_min_top1_applies_as_written(tmp_path: Path) -> None:
    config = _config(tmp_path, defaults="{per_output: {coords: {min_top1: 0.5}}}")
    plan, skipped = plan_output(config.thresholds["float"], "coords", LINEAR_HEAD, None)
    assert (plan.thresholds, plan.top1, skipped) == ({"min_top1": 0.5}, True, None)


def test_an_explicit_min_top1_on_an_output_without_classes_is_a_policy_error(
    tmp_path: Path,
) -> None:
    image = TensorInfo(name="image", shape=[1, 8, 8, 3], dtype="float32", producer="CONV_2D")
    config = _config(tmp_path, defaults="{per_output: {image: {min_top1: 0.5}}}")
    plan, skipped = plan_output(config.thresholds["float"], "image", image, None)
    assert plan.top1 is False and "min_top1" not in plan.thresholds
    assert skipped is not None and skipped.explicit
    assert "(C,) or (1, C)" in skipped.reason


@pytest.mark.parametrize("defaults", ["{min_cosine: 0.99}", "{max_abs: 0.1}"])
def test_other_thresholds_apply_to_every_output(tmp_path: Path, defaults: str) -> None:
    plan, skipped = plan_output(
        _config(tmp_path, defaults=defaults).thresholds["float"], "coords", LINEAR_HEAD, None
    )
    assert skipped is None and len(plan.thresholds) == 1 and plan.top1 is False


def test_the_classification_key_is_validated_as_a_list_of_names(tmp_path: Path) -> None:
    from tflite_gate.policy.errors import PolicyError

    with pytest.raises(PolicyError, match="classification"):
        _config(tmp_path, "classification: coords\n")


def test_top1_is_measured_on_a_classification_without_a_min_top1(tmp_path: Path) -> None:
    config = _config(tmp_path, defaults="{min_cosine: 0.99}")
    plan, skipped = plan_output(config.thresholds["float"], "probs", SOFTMAX_HEAD, None)
    assert (plan.top1, skipped) == (True, None)
    assert plan_output(None, "probs", SOFTMAX_HEAD, None)[0].top1 is True
    assert plan_output(None, "coords", LINEAR_HEAD, None)[0].top1 is False


def test_a_min_top1_on_an_output_without_a_class_axis_is_reported_once_seen() -> None:
    """When inspection could not name the output, its values show it has no classes."""
    import numpy as np

    from tflite_gate.judge.compare import OutputPlan, compare_output
    from tflite_gate.pipeline.execution import _unmeasurable_top1

    image = np.zeros((2, 4, 4, 3), dtype=np.float32)
    metrics = [compare_output("image", image, image, top1=True)]
    [skipped] = _unmeasurable_top1(
        metrics, {"image": OutputPlan({"min_top1": 0.5}, top1=True)}, {"image": image}
    )
    assert skipped.explicit and "[4, 4, 3]" in skipped.reason
    assert _unmeasurable_top1(metrics, {"image": OutputPlan({}, top1=True)}, {"image": image}) == []

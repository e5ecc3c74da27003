"""Variants no threshold should pass: a collapsed output, or one whose passing threshold
would also pass an unrelated output (an orthogonal one, zeros, a guess). They are fixed
in the conversion, never loosened."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.support.check_facts import loaded_policy
from tests.support.suggest_reports import judged_run, report_of
from tflite_gate.judge.suggest import find_defects, metrics_by_output, output_defect
from tflite_gate.report.model import Inspection, OutputMetrics, Report, TensorInfo


def _metrics(**values: float | bool) -> OutputMetrics:
    """One output's metrics: a good conversion's, but for `values`."""
    good: dict[str, float | bool] = {
        "max_abs": 0.01,
        "mean_abs": 0.001,
        "rmse": 0.002,
        "rel_rmse": 0.05,
        "cosine": 0.999,
        "snr_db": 26.0,
    }
    return OutputMetrics(output="probs", samples=8, compared=80, **{**good, **values})  # type: ignore[arg-type]


def test_an_output_no_threshold_should_pass_is_a_defect() -> None:
    assert output_defect([_metrics(top1=0.9)], 1.0, classes=10) is None
    # textgenrnn's dynamic variant: unrelated to its source (cosine 5e-16, top1 0.17).
    textgenrnn = output_defect([_metrics(cosine=5e-16, top1=0.17)], 1.0, classes=None)
    assert textgenrnn is not None and textgenrnn.startswith("cosine 5e-16: ")
    assert "a min_cosine that passes it with the 100% margin is -1.0" in textgenrnn
    assert "at or below 0, where an unrelated output passes" in textgenrnn
    # The margin lets the error grow: an error that would reach the output's own size.
    assert output_defect([_metrics(cosine=0.7)], 1.0, classes=None) is not None
    assert output_defect([_metrics(cosine=0.7)], 0.0, classes=None) is None
    grown = output_defect([_metrics(rel_rmse=0.6)], 1.0, classes=None)
    assert grown is not None and "is 1.2, at or above 1, where an output of zeros passes" in grown
    # Top-1 agreement at or below chance: a model that guesses would pass.
    at_chance = output_defect([_metrics(top1=0.25)], 0.0, classes=4)
    assert at_chance is not None and "at or below chance (0.25, with 4 classes)" in at_chance
    assert output_defect([_metrics(top1=0.3)], 0.0, classes=4) is None
    assert output_defect([_metrics(top1=0.3)], 1.0, classes=4) is not None  # 1 - 2 * 0.7 < 0.25
    assert output_defect([_metrics(top1=0.3)], 1.0, classes=None) is not None  # min_top1 0
    collapsed = output_defect([_metrics(collapsed=True, collapsed_to=0.0)], 0.0, classes=None)
    assert collapsed is not None and "the same for every sample" in collapsed
    # The worst runtime decides.
    assert output_defect([_metrics(), _metrics(cosine=0.1)], 1.0, classes=None) is not None


GUESSING = """\
    version: 1
    models:
      - name: cls
        source: cls.keras
        max_divergence: {min_top1: 0.9}
        variants: [{name: int8, quantization: int8}]
    """


def _guessing_report(tmp_path: Path, classes: int | None) -> Report:
    """cls/int8 scores 4 classes close to its source but picks another class in 6 of 8."""
    loaded = loaded_policy(tmp_path, GUESSING)
    picked = np.arange(8) % 4
    reference = 0.25 + 0.01 * np.eye(4)[picked]
    actual = 0.25 + 0.01 * np.eye(4)[np.where(np.arange(8) < 2, picked, (picked + 1) % 4)]
    run = judged_run(loaded, "cls", "int8", {"probs": reference}, {"probs": actual}, "x", top1=True)
    report = report_of(loaded, {("cls", "int8"): [run]})
    if classes is not None:
        outputs = [TensorInfo(name="probs", shape=[1, classes], dtype="float32")]
        report.models[0].variants[0].inspection = Inspection(
            size_bytes=1,
            schema_version=3,
            subgraphs=1,
            ops=[],
            inputs=[],
            outputs=outputs,
            signatures=[],
        )
    return report


def test_a_variant_that_picks_classes_no_better_than_chance_is_a_defect(tmp_path: Path) -> None:
    report = _guessing_report(tmp_path, classes=4)
    [metrics] = report.models[0].variants[0].runs[0].metrics
    assert metrics.top1 == 0.25 and metrics.cosine is not None and metrics.cosine > 0.99
    loaded = loaded_policy(tmp_path, GUESSING)
    [defect] = find_defects(report, loaded, margin=0.0)
    assert (defect.model, defect.variant, defect.output) == ("cls", "int8", "probs")
    assert defect.text() == (
        "cls/int8: fix the variant, no threshold should pass it: output 'probs' top1 0.25: a "
        "min_top1 that passes it with the 0% margin is 0.25, at or below chance (0.25, with 4 "
        "classes), where a model that guesses passes"
    )


def test_chance_is_known_only_from_the_converted_models_class_count(tmp_path: Path) -> None:
    """Without the count, only a min_top1 of 0 passes a guess: 0.25 is not a defect then."""
    loaded = loaded_policy(tmp_path, GUESSING)
    assert find_defects(_guessing_report(tmp_path, classes=None), loaded, margin=0.0) == []
    assert find_defects(_guessing_report(tmp_path, classes=4), loaded, margin=0.0) != []


def test_metrics_are_gathered_by_output_over_the_runtimes(tmp_path: Path) -> None:
    report = _guessing_report(tmp_path, classes=None)
    variant = report.models[0].variants[0]
    variant.runs.append(variant.runs[0].model_copy(update={"runtime": "y"}))
    by_output = metrics_by_output(variant)
    assert list(by_output) == ["probs"]
    assert by_output["probs"] == [run.metrics[0] for run in variant.runs]

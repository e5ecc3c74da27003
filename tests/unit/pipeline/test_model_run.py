"""One model's check from its plan: what stops it before any worker starts.

Each test builds a real run plan and context and runs the model; a source the gate
cannot use is a finding at its policy line, and no process is started.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.pipeline_plans import POLICY, planned, run_context
from tflite_gate.findings import Finding, Location
from tflite_gate.pipeline.model_run import run_model
from tflite_gate.report.model import ModelReport
from tflite_gate.report.model.stamp import new_report


def check(workspace: Path, model: str) -> tuple[list[Finding], ModelReport]:
    plan = planned(workspace, model)
    model_report, report = ModelReport(name=plan.name, source=plan.source.written), new_report()
    run_model(plan, model_report, report, run_context(workspace, plan))
    return report.findings, model_report


def test_a_missing_source_is_not_found_at_its_line(tmp_path: Path) -> None:
    [finding], model_report = check(tmp_path, "{name: m, source: models/m.keras}")
    assert (finding.rule, finding.model) == ("model-not-found", "m")
    assert finding.message == "m: models/m.keras does not exist in the workspace"
    assert finding.location == Location(path=POLICY, line=3, column=23)
    assert model_report.source_kind is None


def test_a_file_of_no_known_kind_is_refused_before_any_worker(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"not a model the gate reads")
    [finding], _ = check(tmp_path, "{name: m, source: m.onnx}")
    assert finding.rule == "model-load-failed"
    assert finding.message.startswith("m: m.onnx is not a supported model file; expected .keras")


def test_a_fifo_where_the_model_belongs_is_refused_unread(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "m.keras")
    [finding], _ = check(tmp_path, "{name: m, source: m.keras}")
    assert finding.rule == "model-load-failed"
    assert finding.location == Location(path=POLICY, line=3, column=23)


def test_a_data_generator_module_that_is_a_fifo_is_data_invalid(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_bytes(b"")
    os.mkfifo(tmp_path / "gen.py")
    [finding], model_report = check(
        tmp_path, "{name: m, source: m.keras, data: {evaluation: 'gen:samples'}}"
    )
    assert finding.rule == "data-invalid"
    assert model_report.source_kind is None  # not checked further


@pytest.mark.parametrize(
    ("reference", "rule"),
    [("float.tflite", "model-not-found"), ("float.onnx", "model-load-failed")],
)
def test_an_unusable_reference_is_reported_at_its_line(
    tmp_path: Path, reference: str, rule: str
) -> None:
    (tmp_path / "m.tflite").write_bytes(b"")
    (tmp_path / "float.onnx").write_bytes(b"")
    [finding], model_report = check(
        tmp_path, f"{{name: m, source: m.tflite, reference: {reference}}}"
    )
    assert finding.rule == rule
    assert finding.location == Location(path=POLICY, line=3, column=44)
    assert model_report.variants == []  # the .tflite is not run without its reference

"""A quantized variant that broke a threshold: the layers behind it, and keep_float fixes
tried where it broke.

The fast tests show when no diagnosis runs (nothing to start). The slow one converts the
outlier model (`tests/support/outlier_model.py`) in a real worker, runs its int8 variant
and the diagnosis' candidates on LiteRT in the test process, and finds the verified fix.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.support.litert_in_process import LiteRTInProcess
from tests.support.outlier_model import OUTLIER_MODEL
from tests.support.pipeline_plans import planned, run_context
from tflite_gate.pipeline.context import RunContext
from tflite_gate.pipeline.conversion import convert, load_evaluation
from tflite_gate.pipeline.diagnosis import diagnose_variant
from tflite_gate.pipeline.execution import execute_variant
from tflite_gate.pipeline.requests import conversion_request
from tflite_gate.policy.plan import ModelPlan
from tflite_gate.report.model import ModelReport, RuntimeRun, VariantReport
from tflite_gate.report.model.stamp import new_report
from tflite_gate.run.protocol import ConversionRequest
from tflite_gate.run.runner import RuntimeUnavailable
from tflite_gate.tflite.facts import inspect_model

MODEL = (
    "{name: outlier, source: 'outlier:build', variants: "
    "[{name: int8, quantization: int8, max_divergence: {min_cosine: 0.999}}]}"
)
SAMPLES = {"x": np.zeros((4, 1, 8), np.float32)}


def _planned(workspace: Path) -> ModelPlan:
    (workspace / "outlier.py").write_text(textwrap.dedent(OUTLIER_MODEL))
    return planned(workspace, MODEL)


def _context(workspace: Path, plan: ModelPlan, said: list[str]) -> RunContext:
    """Scratch outside the workspace, as the gate keeps it; the runtime prepared in-process."""
    context = run_context(
        workspace, plan, progress=said.append, scratch=workspace.parent / "scratch"
    )
    [spec] = context.requests[plan.name].runtimes
    context.runtimes[spec] = LiteRTInProcess(name=spec.name)
    return context


def _request(plan: ModelPlan, context: RunContext) -> ConversionRequest:
    scratch = context.places(plan.config).conversion
    requests = context.requests_for(plan.config)
    return conversion_request(plan, requests, ("factory", None), context.workspace, scratch)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir()
    return tmp_path / "repo"


def _variant(quantization: str, status: str) -> VariantReport:
    run = RuntimeRun(runtime="ai-edge-litert", status=status)
    return VariantReport(
        name="int8", quantization=quantization, io="float32", status="converted", runs=[run]
    )


@pytest.mark.parametrize(
    ("quantization", "status"), [("int8", "passed"), ("int8", "crash"), ("none", "diverged")]
)
def test_only_a_quantized_variant_that_diverged_is_diagnosed(
    workspace: Path, quantization: str, status: str
) -> None:
    said: list[str] = []
    plan = _planned(workspace)
    context = _context(workspace, plan, said)
    variant = _variant(quantization, status)
    model = workspace / "int8.tflite"
    request = _request(plan, context)
    diagnose_variant(plan.config, 0, variant, model, request, SAMPLES, SAMPLES, context)
    assert variant.diagnosis is None and said == []
    assert not context.places(plan.config).diagnosis(0).exists()


def test_no_diagnosis_where_the_runtime_that_broke_is_unavailable(workspace: Path) -> None:
    said: list[str] = []
    plan = _planned(workspace)
    context = _context(workspace, plan, said)
    [spec] = context.requests_for(plan.config).runtimes
    context.runtimes[spec] = RuntimeUnavailable("no wheel for this Python")
    variant = _variant("int8", "diverged")
    request = _request(plan, context)
    model = workspace / "int8.tflite"
    diagnose_variant(plan.config, 0, variant, model, request, SAMPLES, SAMPLES, context)
    assert variant.diagnosis is None and said == []


@pytest.mark.slow
def test_the_layers_behind_a_broken_threshold_and_a_verified_fix(workspace: Path) -> None:
    said: list[str] = []
    plan = _planned(workspace)
    context = _context(workspace, plan, said)
    config, request = plan.config, _request(plan, context)
    model_report, report = ModelReport(name="outlier", source="outlier:build"), new_report()
    result = convert(config, request, "1 variant(s)", model_report, context)
    inputs, reference = load_evaluation(result.evaluation)
    assert inputs is not None and reference is not None, result
    tflite = Path(result.variants["int8"].tflite_path or "")
    variant = VariantReport(
        name="int8",
        quantization="int8",
        io="float32",
        status="converted",
        inspection=inspect_model(tflite.read_bytes()),
    )
    execute_variant(config, 0, variant, tflite, inputs, reference, report, context)
    assert variant.runs[0].status == "diverged"

    diagnose_variant(config, 0, variant, tflite, request, inputs, reference, context)

    diagnosis = variant.diagnosis
    assert diagnosis is not None and diagnosis.error is None
    assert diagnosis.runtime == "ai-edge-litert" and diagnosis.before == variant.runs[0].metrics
    assert "wide" in diagnosis.layers[0].tensor
    fix = diagnosis.fix()
    assert fix is not None and fix.status == "passed"
    assert fix.metrics[0].cosine is not None and fix.metrics[0].cosine >= 0.999
    scratch = context.places(config).diagnosis(0)
    assert (scratch / "inputs.npz").is_file()
    runner = context.runtimes[context.requests_for(config).runtimes[0]]
    assert isinstance(runner, LiteRTInProcess)
    assert all(path.is_relative_to(scratch) for path in runner.models[1:])  # the candidates
    assert "[outlier/int8] finding the layers behind the divergence" in said
    assert said[-1].startswith("[outlier/int8] ")

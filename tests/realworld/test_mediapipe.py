"""MediaPipe .tflite models with custom ops, from the `mediapipe` wheel.

`face_landmark_with_attention.tflite` uses Landmarks2TransformMatrix,
TransformLandmarks and TransformTensorBilinear, which the plain interpreter does not
implement. With all three listed in `ops.custom`, the run cannot execute only
because of declared custom ops: unverifiable (a notice, like Flex), never an
interpreter error with a hint about old runtimes. `selfie_segmentation.tflite` uses
Convolution2DTransposeBias, which the XNNPACK delegate implements: that run really
executes, and the report says so.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import GateRun, run_gate

from .conftest import Extract, policy_line
from .packages import MEDIAPIPE

pytestmark = [pytest.mark.realworld, pytest.mark.slow]

FACE = "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite"
SELFIE = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
FACE_CUSTOM_OPS = ["Landmarks2TransformMatrix", "TransformLandmarks", "TransformTensorBilinear"]

POLICY = textwrap.dedent(
    f"""\
    version: 1
    models:
      - name: face-landmark
        source: models/face_landmark_with_attention.tflite
        ops:
          custom: [{", ".join(FACE_CUSTOM_OPS)}]
      - name: selfie-segmentation
        source: models/selfie_segmentation.tflite
        ops:
          custom: [Convolution2DTransposeBias]
    """
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    ws: Path = tmp_path_factory.mktemp("mediapipe")
    wheel_members(
        MEDIAPIPE,
        {
            FACE: "models/face_landmark_with_attention.tflite",
            SELFIE: "models/selfie_segmentation.tflite",
        },
        ws,
    )
    (ws / "tflite-gate.yml").write_text(POLICY)
    return run_gate(ws)


def _run_of(run: GateRun, model: str) -> dict[str, Any]:
    [variant] = run.model(model)["variants"]
    [runtime_run] = variant["runs"]
    return runtime_run


def test_declared_custom_ops_pass_the_gate(run: GateRun) -> None:
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.report is not None
    assert run.report["verdict"] == "pass"
    assert [f for f in run.report["findings"] if f["severity"] == "error"] == []


def test_declared_custom_ops_are_no_interpreter_error(run: GateRun) -> None:
    assert run.findings(rule="interpreter-error") == []
    assert "runtime is older than the converter" not in run.stdout


def test_unrunnable_custom_ops_make_the_run_unverifiable(run: GateRun) -> None:
    assert _run_of(run, "face-landmark")["status"] == "unverifiable"
    notices = [
        f
        for f in run.findings(rule="custom-op", model="face-landmark")
        if f["runtime"] == "ai-edge-litert"
    ]
    assert len(notices) == 1, run.findings(model="face-landmark")
    [notice] = notices
    assert notice["severity"] == "notice"
    assert "Landmarks2TransformMatrix" in notice["message"]
    assert notice["location"]["path"] == "tflite-gate.yml"
    assert notice["location"]["line"] in {
        policy_line(POLICY, "face-landmark", "custom"),
        policy_line(POLICY, "face-landmark", "source"),
    }


def test_custom_ops_all_findings_are_notices(run: GateRun) -> None:
    assert {f["severity"] for f in run.findings(model="face-landmark")} <= {"notice"}


def test_custom_op_the_delegate_implements_really_runs(run: GateRun) -> None:
    findings = run.findings(model="selfie-segmentation")
    assert [f for f in findings if f["severity"] != "notice" or f["rule"] == "custom-op"] == []
    runtime_run = _run_of(run, "selfie-segmentation")
    assert (
        runtime_run["status"] == "ran"
    )  # executed; a .tflite without reference has nothing to compare
    assert runtime_run["samples"] == 16
    # XNNPACK implements this MediaPipe op: the report says it ran, resolved by the runtime.
    assert runtime_run["custom_ops_executed"] == ["Convolution2DTransposeBias"]
    assert runtime_run["custom_op_registerers"] == []
    ops = {
        op["name"]: op["kind"]
        for op in run.model("selfie-segmentation")["variants"][0]["inspection"]["ops"]
    }
    assert ops["Convolution2DTransposeBias"] == "custom"

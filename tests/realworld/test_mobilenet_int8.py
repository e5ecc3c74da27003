"""keras.applications MobileNetV2 (alpha 0.35, 96x96) quantized to int8.

Built in `mobilenet_factory.py` with BatchNorm statistics from a batch, so its outputs
depend on the input. Full-integer quantization with calibration must run and report
metrics that are measured, finite and plausible for int8: not perfect, not collapsed.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from tests.support.harness import GateRun, run_gate

from .conftest import copy_helper

pytestmark = [pytest.mark.realworld, pytest.mark.slow]

POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: mobilenet-v2
        source: mobilenet_factory:mobilenet_v2
        data: {samples: 8}
        variants:
          - {name: int8, quantization: int8, max_divergence: {min_cosine: 0.9}}
    """
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    ws: Path = tmp_path_factory.mktemp("mobilenet")
    copy_helper("mobilenet_factory.py", ws)
    (ws / "tflite-gate.yml").write_text(POLICY)
    return run_gate(ws)


def test_int8_mobilenet_passes(run: GateRun) -> None:
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.report is not None and run.report["verdict"] == "pass"
    assert run.findings() == []


def test_int8_mobilenet_is_fully_integer(run: GateRun) -> None:
    [variant] = run.model("mobilenet-v2")["variants"]
    assert variant["status"] == "converted"
    ops = {op["name"] for op in variant["inspection"]["ops"]}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "QUANTIZE", "DEQUANTIZE"} <= ops


def test_int8_mobilenet_metrics_are_measured_and_plausible(run: GateRun) -> None:
    [variant] = run.model("mobilenet-v2")["variants"]
    [runtime_run] = variant["runs"]
    assert runtime_run["status"] == "passed"
    assert runtime_run["samples"] == 8
    [metrics] = runtime_run["metrics"]
    assert metrics["output"] == "predictions"
    assert metrics["non_finite"] == 0
    values = [metrics[k] for k in ("max_abs", "mean_abs", "rmse", "rel_rmse", "cosine", "snr_db")]
    assert all(math.isfinite(v) for v in values), metrics
    assert 0 < metrics["max_abs"] < 0.5  # quantized: not bit-exact, not garbage
    assert 0.9 <= metrics["cosine"] < 1.0
    assert 0 < metrics["snr_db"] < 100
    assert metrics["top1"] is not None and metrics["top1"] >= 0.5

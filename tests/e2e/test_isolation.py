"""A converter that blows its memory limit or hangs becomes a finding, not a dead gate."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.harness import GateRun, run_gate

pytestmark = pytest.mark.slow

FACTORIES = textwrap.dedent(
    """\
    import time

    import keras


    def big_image():
        image = keras.Input((256, 256, 3), name="image")
        pooled = keras.layers.GlobalAveragePooling2D()(image)
        return keras.Model(image, keras.layers.Dense(2)(pooled))


    def hangs():
        time.sleep(600)
    """
)

POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: huge-calibration
        source: facts:big_image
        limits: {memory_mb: 1500}
        data: {calibration: {generate: {count: 3000}}}
        variants:
          - {name: int8, quantization: int8}
          - {name: float, quantization: none}
      - name: hangs
        source: facts:hangs
        limits: {timeout_s: 8}
    """
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    workspace: Path = tmp_path_factory.mktemp("isolation")
    (workspace / "facts.py").write_text(FACTORIES)
    (workspace / "tflite-gate.yml").write_text(POLICY)
    return run_gate(workspace)


def test_gate_survives(run: GateRun) -> None:
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr


def test_memory_blowup_fails_only_its_variant(run: GateRun) -> None:
    [finding] = run.findings(model="huge-calibration", rule="conversion-failed")
    assert finding["variant"] == "int8"
    assert finding["message"].startswith(
        "huge-calibration/int8: raise limits.memory_mb (1500 MB, at tflite-gate.yml:5:25) if "
        "the machine has the memory: the converter exceeded the memory limit"
    )
    assert finding["location"] == {"path": "tflite-gate.yml", "line": 5, "column": 25}
    statuses = [v["status"] for v in run.model("huge-calibration")["variants"]]
    assert statuses == ["conversion-failed", "converted"]


def test_memory_blowup_while_preparing_evaluation_data(run: GateRun) -> None:
    [finding] = run.findings(model="huge-calibration", rule="data-invalid")
    assert finding["message"].startswith(
        "huge-calibration: raise limits.memory_mb (1500 MB, at tflite-gate.yml:5:25) if the "
        "machine has the memory: evaluation data: the conversion worker exceeded the memory limit"
    ), finding["message"]
    assert "while preparing evaluation data and reference outputs" in finding["message"]
    assert finding["location"] == {"path": "tflite-gate.yml", "line": 5, "column": 25}
    assert len(run.findings(model="huge-calibration")) == 2


def test_hang_is_stopped_at_the_timeout(run: GateRun) -> None:
    [finding] = run.findings(model="hangs")
    assert finding["rule"] == "model-load-failed"
    assert finding["message"].startswith(
        "hangs: raise limits.timeout_s (8 s, at tflite-gate.yml:12:25) if loading the model "
        "just takes longer: the conversion worker did not finish within the time limit (8 s) "
        "while loading the model"
    ), finding["message"]
    assert finding["location"] == {"path": "tflite-gate.yml", "line": 12, "column": 25}
    assert run.model("hangs")["timings"]["load+convert"] < 60

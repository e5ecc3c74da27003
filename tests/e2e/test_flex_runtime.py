"""Flex numerics verified for real: TensorFlow 2.18's interpreter links the Flex delegate.

The gate installs `tensorflow==2.18.1` into a cached virtual environment and runs a
Select-TF-ops model (FlexErf) there, next to the installed ai-edge-litert, which has
no Flex delegate. The environment lives in the gate's own cache (`TFLITE_GATE_CACHE`,
else `~/.cache/tflite-gate`), so the ~600 MB wheel is fetched once per machine.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import GateRun, run_gate
from tflite_gate.run.runtimes import default_cache_dir

pytestmark = pytest.mark.slow

MODELS = textwrap.dedent(
    """\
    import tensorflow as tf


    def erf():
        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32, name="x")])
        def serve(x):
            return {"y": tf.math.erf(x * 2.0)}

        return serve
    """
)

POLICY = textwrap.dedent(
    """\
    version: 1
    defaults:
      ops: {select_tf_ops: true}
      max_divergence: {max_abs: 1.0e-5}
    models:
      - name: verified
        source: models:erf
        runtimes:
          - ai-edge-litert
          - {requirement: "tensorflow==2.18.1"}
      - name: unverified
        source: models:erf
    """
)


@pytest.fixture(scope="session")
def machine_cache() -> Path:
    """The gate's default runtime cache: tensorflow 2.18.1 is installed there once."""
    return default_cache_dir()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, machine_cache: Path) -> GateRun:
    workspace = tmp_path_factory.mktemp("flex")
    (workspace / "models.py").write_text(MODELS)
    (workspace / "tflite-gate.yml").write_text(POLICY)
    return run_gate(workspace, "--cache-dir", str(machine_cache))


def _runs(run: GateRun, model: str) -> dict[str, dict[str, Any]]:
    [variant] = run.model(model)["variants"]
    assert "FlexErf" in [op["name"] for op in variant["inspection"]["ops"]]
    return {r["runtime"]: r for r in variant["runs"]}


def _line(needle: str) -> int:
    return next(i for i, line in enumerate(POLICY.splitlines(), 1) if needle in line)


def test_flex_model_passes_on_tensorflow_2_18(run: GateRun) -> None:
    assert run.returncode == 0, run.stdout[-3000:]
    runs = _runs(run, "verified")
    assert runs["ai-edge-litert"]["status"] == "unverifiable"
    tensorflow = runs["tensorflow==2.18.1"]
    assert (tensorflow["status"], tensorflow["runtime_version"]) == ("passed", "2.18.1")
    [metrics] = tensorflow["metrics"]
    assert metrics["samples"] == 16
    assert metrics["max_abs"] < 1e-5
    assert metrics["cosine"] > 0.99999


def test_flex_notice_names_the_runtime_that_verified_the_numerics(run: GateRun) -> None:
    [notice] = run.findings(model="verified")  # one flex notice, not one per run
    assert (notice["rule"], notice["severity"]) == ("flex-op", "notice")
    assert run.report is not None
    litert = run.report["environment"]["packages"]["ai-edge-litert"]
    assert notice["message"] == (
        "verified/float: uses Select TF ops FlexErf; the app must link the Flex delegate; "
        f"numerics verified on tensorflow==2.18.1; not executable on ai-edge-litert {litert} "
        "(no Flex delegate)"
    )
    assert notice["location"]["line"] == _line("select_tf_ops")
    assert notice["details"]["verified_on"] == ["tensorflow==2.18.1"]
    assert "cannot be verified" not in run.stdout


def test_without_a_flex_runtime_the_notice_suggests_one(run: GateRun) -> None:
    assert _runs(run, "unverified")["ai-edge-litert"]["status"] == "unverifiable"
    [notice] = run.findings(model="unverified")
    assert (notice["rule"], notice["severity"]) == ("flex-op", "notice")
    assert "numerics not verified" in notice["message"]
    assert notice["message"].endswith(
        'runtimes: [ai-edge-litert, {requirement: "tensorflow==2.18.1"}]'
    )

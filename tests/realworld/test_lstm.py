"""An LSTM text classifier, dynamic batch vs fixed batch (built in `lstm_factory.py`).

With a dynamic batch the converter fails on TensorList ops ("requires element_shape to
be static"). The user must see one `conversion-failed` per cause, not one per converter
line per variant, leading with what to do (a fixed batch through `input_shapes`),
naming the variants it affects. With batch 1 the same model converts and passes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.harness import GateRun, run_gate

from .conftest import copy_helper, policy_line, source_line

pytestmark = [pytest.mark.realworld, pytest.mark.slow]

POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: lstm-dynamic
        source: lstm_factory:dynamic_batch
        variants:
          - {name: float, quantization: none}
          - {name: dynamic, quantization: dynamic}
      - name: lstm-fixed
        source: lstm_factory:fixed_batch
        max_divergence: {max_abs: 1.0e-5, min_top1: 1.0}
    """
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws: Path = tmp_path_factory.mktemp("lstm")
    copy_helper("lstm_factory.py", ws)
    (ws / "tflite-gate.yml").write_text(POLICY)
    return ws


@pytest.fixture(scope="module")
def run(workspace: Path) -> GateRun:
    return run_gate(workspace)


def test_dynamic_batch_fails_the_gate(run: GateRun) -> None:
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.report is not None and run.report["verdict"] == "fail"
    assert {f["rule"] for f in run.findings(model="lstm-dynamic")} == {"conversion-failed"}


def test_dynamic_batch_failure_is_one_finding_for_all_variants(run: GateRun) -> None:
    findings = run.findings(rule="conversion-failed", model="lstm-dynamic")
    assert len(findings) == 1, [f["message"] for f in findings]
    [finding] = findings
    assert "float" in finding["message"]
    assert "dynamic" in finding["message"]


def test_dynamic_batch_failure_leads_with_the_input_shapes_fix(run: GateRun) -> None:
    [finding] = run.findings(rule="conversion-failed", model="lstm-dynamic")
    message = finding["message"]
    assert "input_shapes" in message
    assert "tokens" in message
    converter_words = [message.find(w) for w in ("tf.Const", "TensorList") if w in message]
    assert all(message.index("input_shapes") < at for at in converter_words), message


def test_dynamic_batch_failure_points_at_the_model(run: GateRun, workspace: Path) -> None:
    [finding] = run.findings(rule="conversion-failed", model="lstm-dynamic")
    where = (finding["location"]["path"], finding["location"]["line"])
    assert where in {
        ("tflite-gate.yml", policy_line(POLICY, "lstm-dynamic")),
        ("lstm_factory.py", source_line(workspace / "lstm_factory.py", "keras.layers.LSTM(")),
    }


def test_fixed_batch_converts_and_passes(run: GateRun) -> None:
    assert run.findings(model="lstm-fixed") == []
    [variant] = run.model("lstm-fixed")["variants"]
    assert variant["status"] == "converted"
    [runtime_run] = variant["runs"]
    assert runtime_run["status"] == "passed"
    [metrics] = runtime_run["metrics"]
    assert metrics["output"] == "intent"
    assert metrics["top1"] == 1.0


FLEX_POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: lstm-flex
        source: lstm_factory:dynamic_batch
        ops: {select_tf_ops: true}
        max_divergence: {max_abs: 1.0e-4, min_top1: 1.0}
        runtimes: [ai-edge-litert, {requirement: "tensorflow==2.18.1"}]
    """
)


def test_flex_tensor_list_lstm_is_verified_on_a_runtime_with_the_flex_delegate(
    tmp_path: Path,
) -> None:
    """The other fix the gate names for a dynamic batch: Select TF ops, verified for real.

    TensorFlow 2.18's interpreter links the Flex delegate (ai-edge-litert does not): the
    gate installs it into its cached runtime environments (shared with the other Flex
    test) and compares the Flex LSTM's outputs there.
    """
    copy_helper("lstm_factory.py", tmp_path)
    (tmp_path / "tflite-gate.yml").write_text(FLEX_POLICY)
    run = run_gate(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    [notice] = run.findings(model="lstm-flex")
    assert (notice["rule"], notice["severity"]) == ("flex-op", "notice")
    assert "FlexTensorListReserve" in notice["message"]
    assert "numerics verified on tensorflow==2.18.1" in notice["message"]
    assert "not executable on ai-edge-litert" in notice["message"]
    [variant] = run.model("lstm-flex")["variants"]
    runs = {r["runtime"]: r for r in variant["runs"]}
    assert runs["ai-edge-litert"]["status"] == "unverifiable"
    verified = runs["tensorflow==2.18.1"]
    assert verified["status"] == "passed"
    [metrics] = verified["metrics"]
    assert metrics["max_abs"] < 1e-4 and metrics["top1"] == 1.0

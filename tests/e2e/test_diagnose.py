"""An int8 variant that breaks a threshold: the layers behind it and a verified keep_float fix.

The outlier model (`tests/outlier_model.py`) has one hidden channel a thousand times
wider than the others; its int8 conversion collapses, and two layers kept in float
recover it. The small CNN's error is mostly its softmax output's own requantization
(int8 probabilities come in steps of 1/256); the offset classifier's is made upstream
of its softmax, by logits that a large common offset leaves with coarse int8 steps.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.harness import run_gate
from tests.support.outlier_model import OUTLIER_MODEL
from tflite_gate.judge.suggest import merge
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import load_policy


def _outlier(workspace: Path, variant: str) -> None:
    """The outlier model and a policy with one variant, written in flow style."""
    (workspace / "outlier.py").write_text(textwrap.dedent(OUTLIER_MODEL))
    policy = "version: 1\nmodels:\n  - name: outlier\n    source: outlier:build\n"
    (workspace / "tflite-gate.yml").write_text(f"{policy}    variants:\n      - {variant}\n")


SMALL_CNN = """\
    import keras


    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((12, 12, 1), batch_size=1, name="image")
        x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
        x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_b")(x)
        x = keras.layers.Flatten(name="flat")(x)
        outputs = keras.layers.Dense(10, activation="softmax", name="probs")(x)
        return keras.Model(inputs, outputs)
    """

OFFSET_CLASSIFIER = """\
    import keras


    def build():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8,), batch_size=1, name="x")
        hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
        outputs = keras.layers.Dense(4, activation="softmax", name="probs")(hidden)
        model = keras.Model(inputs, outputs)
        weights, bias = model.get_layer("probs").get_weights()
        model.get_layer("probs").set_weights([weights, bias + 100.0])  # softmax ignores it
        return model
    """


def _classifier(workspace: Path, source: str, min_cosine: float) -> Path:
    """A model module and a policy with one int8 variant held to `min_cosine`."""
    (workspace / "classifier.py").write_text(textwrap.dedent(source))
    policy = workspace / "tflite-gate.yml"
    policy.write_text(
        "version: 1\nmodels:\n  - name: classifier\n    source: classifier:build\n"
        "    ops: {allow: [CONV_2D, RESHAPE, FULLY_CONNECTED, SOFTMAX, QUANTIZE, DEQUANTIZE]}\n"
        "    versions: {target_runtime: '2.17'}\n    variants:\n"
        f"      - {{name: int8, quantization: int8, max_divergence: {{min_cosine: {min_cosine}}}}}\n"
    )
    return policy


def _paste(policy: Path, snippet: str) -> None:
    merged = merge(yaml.safe_load(policy.read_text()), yaml.safe_load(snippet))
    policy.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")


@pytest.mark.slow
def test_init_then_a_tight_int8_variant_then_its_verified_fix(tmp_path: Path) -> None:
    (tmp_path / "outlier.py").write_text(textwrap.dedent(OUTLIER_MODEL))
    init = ["init", "--workspace", str(tmp_path), "--source", "outlier:build", "--quiet"]
    made = subprocess.run(
        [sys.executable, "-m", "tflite_gate", *init],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert run_gate(tmp_path).returncode == 0

    policy_path = tmp_path / "tflite-gate.yml"
    policy = yaml.safe_load(policy_path.read_text())
    policy["models"][0]["variants"].append(
        {"name": "int8", "quantization": "int8", "max_divergence": {"min_cosine": 0.999}}
    )
    policy["models"][0]["ops"]["allow"] += ["QUANTIZE", "DEQUANTIZE"]
    policy["models"][0]["versions"]["target_runtime"] = "2.17"  # int8 ops need a newer one
    policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    failing = run_gate(tmp_path, "--format", "github", env=env)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert [f["rule"] for f in failing.findings()] == ["divergence"]
    int8 = failing.model("outlier")["variants"][1]
    diagnosis = int8["diagnosis"]
    top = diagnosis["layers"][0]
    assert "wide" in top["tensor"] and top["op"] == "FULLY_CONNECTED"  # its output rounds away
    assert top["share"] > 0.9
    before = diagnosis["before"][0]["cosine"]
    assert before < 0.5
    assert len(diagnosis["keep_float"]) == 2
    assert any("wide" in node for node in diagnosis["keep_float"])
    trial = diagnosis["trials"][-1]
    assert trial["status"] == "passed" and trial["nodes"] == diagnosis["keep_float"]
    after = trial["metrics"][0]["cosine"]
    assert after >= 0.999
    assert "most error added at" in failing.stdout

    shown = summary.read_text()
    assert "outlier/int8: where the quantization error comes from" in shown
    assert "```mermaid\nxychart-beta\n" in shown
    assert '"1. FULLY_CONNECTED"' in shown
    assert "**Verified fix:**" in shown

    _paste(policy_path, diagnosis["snippet"])
    fixed = run_gate(tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    [run] = fixed.model("outlier")["variants"][1]["runs"]
    assert run["metrics"][0]["cosine"] == after  # the model that was verified, converted again
    assert fixed.model("outlier")["variants"][1]["diagnosis"] is None


@pytest.mark.slow
def test_a_keep_float_name_the_model_lacks_is_a_conversion_error(tmp_path: Path) -> None:
    nodes = "[functional_1/mid_1/MatMul;functional_1/mid_1/Relux]"
    _outlier(tmp_path, f"{{name: int8, quantization: int8, keep_float: {{nodes: {nodes}}}}}")
    run = run_gate(tmp_path)
    assert run.returncode == 1
    [finding] = run.findings(rule="conversion-failed")
    assert (
        "keep_float.nodes: 'functional_1/mid_1/MatMul;functional_1/mid_1/Relux' is not a "
        in (finding["message"])
    )
    assert "closest: functional_1/mid_1/MatMul;functional_1/mid_1/Relu" in finding["message"]


def test_keep_float_needs_a_full_integer_variant(tmp_path: Path) -> None:
    (tmp_path / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: m\n    source: m.keras\n    variants:\n"
        "      - {name: d, quantization: dynamic, keep_float: {nodes: [a]}}\n"
    )
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path / "tflite-gate.yml", tmp_path)
    [issue] = raised.value.issues
    assert issue.line == 6
    assert "keep_float needs quantization int8" in issue.message


@pytest.mark.slow
def test_an_int16x8_variant_gets_its_layers_and_no_keep_float(tmp_path: Path) -> None:
    _outlier(
        tmp_path, "{name: wide, quantization: int16x8, max_divergence: {min_cosine: 0.99999999}}"
    )
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    run = run_gate(tmp_path, "--format", "github", env=env)
    assert run.returncode == 1, run.stdout + run.stderr
    diagnosis = run.model("outlier")["variants"][0]["diagnosis"]
    assert diagnosis["error"] is None
    assert "mid" in diagnosis["layers"][0]["tensor"]
    assert diagnosis["trials"] == [] and diagnosis["keep_float"] is None
    assert diagnosis["snippet"] is None
    assert "`keep_float` applies to int8 variants; for int16x8" in summary.read_text()
    assert "no keep_float set tried" not in run.stdout


@pytest.mark.slow
def test_a_softmax_output_requantization_is_found_and_kept_float(tmp_path: Path) -> None:
    policy = _classifier(tmp_path, SMALL_CNN, 0.99995)
    failing = run_gate(tmp_path)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    diagnosis = failing.model("classifier")["variants"][0]["diagnosis"]
    assert diagnosis["keep_float"] is not None, failing.stdout
    assert diagnosis["layers"][0]["op"] == "SOFTMAX"
    assert diagnosis["keep_float_ops"] == ["SOFTMAX"] and diagnosis["keep_float"] == []
    trial = diagnosis["trials"][0]  # the output activation is tried first
    assert trial["status"] == "passed" and trial["ops"] == ["SOFTMAX"]
    assert diagnosis["before"][0]["cosine"] < 0.99995 <= trial["metrics"][0]["cosine"]
    assert yaml.safe_load(diagnosis["snippet"]) == {
        "models": [
            {
                "name": "classifier",
                "variants": [{"name": "int8", "keep_float": {"ops": ["SOFTMAX"]}}],
            }
        ]
    }
    assert textwrap.indent(diagnosis["snippet"], "    ") in failing.stdout  # not only in the report

    _paste(policy, diagnosis["snippet"])
    fixed = run_gate(tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    [run] = fixed.model("classifier")["variants"][0]["runs"]
    assert run["metrics"][0]["cosine"] == trial["metrics"][0]["cosine"]


@pytest.mark.slow
def test_an_error_made_upstream_of_the_softmax_is_blamed_there(tmp_path: Path) -> None:
    _classifier(tmp_path, OFFSET_CLASSIFIER, 0.999)
    failing = run_gate(tmp_path)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    diagnosis = failing.model("classifier")["variants"][0]["diagnosis"]
    top = diagnosis["layers"][0]
    assert top["op"] == "FULLY_CONNECTED" and "probs" in top["tensor"], diagnosis["layers"]
    assert top["share"] > 0.5
    softmax = [layer for layer in diagnosis["layers"] if layer["op"] == "SOFTMAX"]
    assert all(layer["share"] < 0.05 for layer in softmax)

""".tflite sources through real gate runs: declared shapes, the dynamic-dimension check,
keys that cannot apply, and `reference:` (another .tflite or the Keras model).

The test converts one small Keras model to a float and an int8 (int8 I/O) .tflite
with the installed TensorFlow, plus a model with dynamic input dims [-1, -1] that
only runs when fed 16 values per sample. One policy passes as a whole (exit 0);
the other holds every failure, each checked at its policy line.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.harness import GateRun, run_gate

pytestmark = pytest.mark.slow

PASSING = textwrap.dedent(
    """\
    version: 1
    models:
      - name: int8-vs-float-tflite
        source: models/int8.tflite
        reference: models/float.tflite
        max_divergence: {min_cosine: 0.9}
      - name: int8-vs-keras
        source: models/int8.tflite
        reference: models/float.keras
        variants: [{name: quantized, max_divergence: {min_cosine: 0.9}}]
      - name: dynamic-shaped
        source: models/dynamic.tflite
        input_shapes: {x: [1, 16]}
    """
)

FAILING = textwrap.dedent(
    """\
    version: 1
    models:
      - name: strict-vs-float-tflite
        source: models/int8.tflite
        reference: models/float.tflite
        max_divergence: {max_abs: 1.0e-9}
      - name: strict-vs-keras
        source: models/int8.tflite
        reference: models/float.keras
        max_divergence: {min_cosine: 0.9, max_abs: 1.0e-9}
      - name: dynamic-unshaped
        source: models/dynamic.tflite
      - name: dynamic-unknown-name
        source: models/dynamic.tflite
        input_shapes: {y: [1, 16]}
      - name: quantize-a-tflite
        source: models/float.tflite
        variants: [{name: int8, quantization: int8}]
        max_divergence: {max_abs: 0.1}
      - name: reference-missing
        source: models/int8.tflite
        reference: models/nothing.tflite
      - name: reference-other-inputs
        source: models/int8.tflite
        reference: models/other.keras
      - name: reference-fails
        source: models/int8.tflite
        reference: models/dynamic.tflite
    """
)


def _write_models(models: Path) -> None:
    import keras
    import tensorflow as tf

    models.mkdir()
    keras.utils.set_random_seed(0)
    x = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(16, activation="relu")(x)
    model = keras.Model(x, keras.layers.Dense(4, name="y")(hidden))
    model.save(models / "float.keras")
    z1, z2 = keras.Input((8,), name="z1"), keras.Input((8,), name="z2")
    keras.Model([z1, z2], keras.layers.Dense(4)(z1 + z2)).save(models / "other.keras")
    (models / "float.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())

    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.uniform(-1, 1, (1, 8)).astype(np.float32)] for _ in range(32)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    (models / "int8.tflite").write_bytes(converter.convert())

    class Frames(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
        def __call__(self, x: Any) -> Any:
            return {"total": tf.reduce_sum(tf.reshape(x, [-1, 4, 4]), axis=[1, 2])}

    frames = Frames()
    function = frames.__call__.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], frames)
    (models / "dynamic.tflite").write_bytes(converter.convert())


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("tflite-sources")
    _write_models(ws / "models")
    (ws / "passing.yml").write_text(PASSING)
    (ws / "failing.yml").write_text(FAILING)
    return ws


@pytest.fixture(scope="module")
def passing(workspace: Path) -> GateRun:
    return run_gate(workspace, "--policy", str(workspace / "passing.yml"))


@pytest.fixture(scope="module")
def failing(workspace: Path) -> GateRun:
    return run_gate(workspace, "--policy", str(workspace / "failing.yml"))


def _line(policy: str, model: str, key: str) -> int:
    lines = policy.splitlines()
    start = lines.index(f"  - name: {model}")
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith(key)) + 1


def _run(gate: GateRun, model: str) -> dict[str, Any]:
    (variant,) = gate.model(model)["variants"]
    (run,) = variant["runs"]
    return dict(run)


def test_passing_policy_passes_with_metrics(passing: GateRun) -> None:
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert passing.findings() == []
    for model in ("int8-vs-float-tflite", "int8-vs-keras"):
        run = _run(passing, model)
        assert run["status"] == "passed"
        (metrics,) = run["metrics"]
        assert metrics["output"] == "output_0"
        assert metrics["samples"] == 16
        # int8 against its float model: close, but not identical.
        assert 0.9 < metrics["cosine"] < 1.0
        assert 0 < metrics["max_abs"] < 0.5
    assert passing.model("int8-vs-keras")["timings"]["reference"] > 0


def test_single_as_is_variant_names_the_run(passing: GateRun) -> None:
    (variant,) = passing.model("int8-vs-keras")["variants"]
    assert (variant["name"], variant["status"]) == ("quantized", "not-converted")
    assert passing.model("int8-vs-float-tflite")["variants"][0]["name"] == "tflite"


def test_input_shapes_resize_a_dynamic_tflite(passing: GateRun) -> None:
    model = passing.model("dynamic-shaped")
    assert model["inputs"][0]["shape"] == [-1, -1]
    assert _run(passing, "dynamic-shaped")["status"] == "ran"  # executed; no reference


def test_inherited_thresholds_without_a_reference_are_reported_once(workspace: Path) -> None:
    """A default max_divergence cannot judge a .tflite that has nothing to compare with."""
    policy = workspace / "inherited.yml"
    policy.write_text(
        textwrap.dedent(
            """\
            version: 1
            defaults:
              max_divergence: {min_cosine: 0.99}
            models:
              - name: dynamic-shaped
                source: models/dynamic.tflite
                input_shapes: {x: [1, 16]}
            """
        )
    )
    gate = run_gate(workspace, "--policy", str(policy))
    assert gate.returncode == 0, gate.stdout + gate.stderr
    (notice,) = gate.findings()
    assert (notice["rule"], notice["severity"]) == ("threshold-not-applied", "notice")
    assert notice["message"].startswith("dynamic-shaped: add `reference:`")
    assert notice["location"]["line"] == 3
    assert _run(gate, "dynamic-shaped")["status"] == "ran"


def test_summary_shows_a_tflite_source_neutrally(passing: GateRun) -> None:
    assert "as-is (not converted)" in passing.stdout
    assert "not-converted" not in passing.stdout


def test_thresholds_fail_at_their_policy_line(failing: GateRun) -> None:
    assert failing.returncode == 1
    for model in ("strict-vs-float-tflite", "strict-vs-keras"):
        (finding,) = failing.findings(model=model)
        assert finding["rule"] == "divergence"
        assert finding["threshold_key"] == "max_abs"
        assert finding["location"]["path"] == "failing.yml"
        assert finding["location"]["line"] == _line(FAILING, model, "max_divergence")
        assert _run(failing, model)["status"] == "diverged"


def test_dynamic_dims_without_input_shapes_point_at_the_policy(failing: GateRun) -> None:
    (finding,) = failing.findings(model="dynamic-unshaped")
    assert finding["rule"] == "policy-invalid"
    assert "input 'x' has dynamic dimensions" in finding["message"]
    assert "input_shapes: {x: [" in finding["message"]
    assert finding["location"]["line"] == _line(FAILING, "dynamic-unshaped", "source")
    assert failing.model("dynamic-unshaped")["variants"][0]["runs"] == []


def test_unknown_input_shapes_name(failing: GateRun) -> None:
    (finding,) = failing.findings(model="dynamic-unknown-name")
    assert finding["rule"] == "policy-invalid"
    assert "input_shapes names 'y', but the model's inputs are: x" in finding["message"]
    assert finding["location"]["line"] == _line(FAILING, "dynamic-unknown-name", "input_shapes")


def test_keys_that_cannot_apply_are_refused(failing: GateRun) -> None:
    findings = failing.findings(model="quantize-a-tflite")
    assert [(f["rule"], f["key"], f["location"]["line"]) for f in findings] == [
        ("policy-invalid", "variants[0].quantization", _line(FAILING, "quantize-a-tflite", "var")),
        ("policy-invalid", "max_divergence", _line(FAILING, "quantize-a-tflite", "max_div")),
    ]
    assert failing.model("quantize-a-tflite")["variants"] == []


def test_missing_reference_points_at_it(failing: GateRun) -> None:
    (finding,) = failing.findings(model="reference-missing")
    assert finding["rule"] == "model-not-found"
    assert finding["message"] == (
        "reference-missing: reference models/nothing.tflite: does not exist in the "
        "workspace; outputs not compared"
    )
    assert finding["location"]["line"] == _line(FAILING, "reference-missing", "reference")


def test_reference_with_other_inputs_is_refused(failing: GateRun) -> None:
    (finding,) = failing.findings(model="reference-other-inputs")
    assert finding["rule"] == "policy-invalid"
    assert finding["message"] == (
        "reference-other-inputs: use a reference that takes the .tflite's inputs: it takes "
        "2 (z1, z2), the .tflite 1 (x); outputs not compared"
    )
    assert finding["location"]["line"] == _line(FAILING, "reference-other-inputs", "reference")


def test_reference_that_fails_to_run_points_at_it(failing: GateRun) -> None:
    (finding,) = failing.findings(model="reference-fails")
    assert finding["rule"] == "model-load-failed"
    assert finding["message"].startswith(
        "reference-fails: reference models/dynamic.tflite: the reference run on "
        "ai-edge-litert failed in allocate"
    )
    assert finding["message"].endswith("; outputs not compared")
    assert finding["location"]["line"] == _line(FAILING, "reference-fails", "reference")
    # The model under test still runs: a crash in it must not hide behind its reference.
    (run,) = failing.model("reference-fails")["variants"][0]["runs"]
    assert (run["status"], run["metrics"]) == ("ran", [])

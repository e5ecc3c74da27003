"""Every kind of model source, good and bad, through one real gate run.

One workspace holds a .keras, an .h5, a SavedModel, a .tflite and factories,
plus each broken source the issue lists. The gate runs once (one worker per
model) and each test reads its model's findings from the report.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.harness import GateRun, run_gate
from tests.support.tflite_builder import OpSpec, build_model

pytestmark = pytest.mark.slow

FACTORIES = textwrap.dedent(
    """\
    import keras
    import tensorflow as tf


    def raises():
        raise ValueError("weights file is missing")


    def wrong_type():
        return {"not": "a model"}


    def dynamic_image():
        image = keras.Input((None, None, 3), name="image")
        pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(image))
        return keras.Model(image, pooled)


    class Scale(tf.Module):
        def __init__(self):
            self.factor = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def __call__(self, x):
            return x * self.factor


    def module():
        return Scale()


    @tf.function
    def no_signature(x):
        return x + 1


    def untraced():
        return no_signature
    """
)


def _dense(keras: Any) -> Any:
    inputs = keras.Input((8,), name="x")
    return keras.Model(inputs, keras.layers.Dense(4, name="y")(inputs))


def _write_models(ws: Path) -> None:
    """Real model files, written once with the installed TensorFlow/Keras."""
    import keras
    import tensorflow as tf

    models = ws / "models"
    models.mkdir()
    keras.utils.set_random_seed(0)
    _dense(keras).save(models / "dense.keras")
    _dense(keras).save(models / "dense.h5")

    lambda_in = keras.Input((4,), name="x")
    lambda_model = keras.Model(lambda_in, keras.layers.Lambda(lambda t: t * 2.0)(lambda_in))
    lambda_model.save(models / "lambda.keras")

    class Double(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x: Any) -> Any:
            return {"y": x * 2.0}

    double = Double()
    tf.saved_model.save(double, str(models / "saved"), signatures=double.__call__)
    shutil.copytree(models / "saved", models / "broken_saved")
    for shard in (models / "broken_saved" / "variables").iterdir():
        shard.write_bytes(b"not a checkpoint")
    (models / "empty_saved").mkdir()
    (models / "empty_saved" / "variables").mkdir()

    _future_keras(models / "dense.keras", models / "future.keras")
    good = build_model([OpSpec("RELU", version=1)])
    (models / "good.tflite").write_bytes(good)
    (models / "truncated.tflite").write_bytes(good[: len(good) // 2])
    (models / "notes.tflite").write_bytes(b"these are not the weights you are looking for")
    (models / "readme.txt").write_text("not a model")
    np.savez(ws / "calib.npz", wrong_name=np.zeros((4, 8), np.float32))
    (ws / "factories.py").write_text(FACTORIES)


def _future_keras(source: Path, target: Path) -> None:
    """A .keras file 'written by' a future Keras with a layer class this one lacks."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as future:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "metadata.json":
                meta = json.loads(data)
                meta["keras_version"] = "9.9.9"
                data = json.dumps(meta).encode()
            if item.filename == "config.json":
                data = data.replace(b'"Dense"', b'"HyperDense"')
            future.writestr(item, data)


POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: keras-file
        source: models/dense.keras
        variants:
          - {name: float, quantization: none}
          - {name: f16, quantization: float16}
      - name: h5-file
        source: models/dense.h5
      - name: saved-model
        source: models/saved
      - name: saved-model-shaped
        source: models/saved
        input_shapes: {x: [2, 3]}
      - name: saved-model-tensor-name
        source: models/saved
        input_shapes: {"serving_default_x:0": [4, 3]}
      - name: broken-saved-model
        source: models/broken_saved
      - name: tflite-file
        source: models/good.tflite
      - name: module-factory
        source: factories:module
      - name: missing
        source: models/nothing.keras
      - name: no-pb
        source: models/empty_saved
      - name: truncated
        source: models/truncated.tflite
      - name: not-flatbuffer
        source: models/notes.tflite
      - name: unsupported-file
        source: models/readme.txt
      - name: factory-raises
        source: factories:raises
      - name: factory-wrong-type
        source: factories:wrong_type
      - name: factory-no-signature
        source: factories:untraced
      - name: factory-missing-function
        source: factories:nope
      - name: dynamic-no-shapes
        source: factories:dynamic_image
      - name: dynamic-with-shapes
        source: factories:dynamic_image
        input_shapes: {image: [1, 8, 8, 3]}
      - name: wrong-input-name
        source: factories:dynamic_image
        input_shapes: {picture: [1, 8, 8, 3]}
      - name: npz-missing-input
        source: models/dense.keras
        variants: [{name: int8, quantization: int8}]
        data: {calibration: calib.npz}
      - name: lambda-safe
        source: models/lambda.keras
      - name: lambda-unsafe
        source: models/lambda.keras
        safe_mode: false
      - name: future-keras
        source: models/future.keras
    """
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("sources")
    _write_models(ws)
    (ws / "tflite-gate.yml").write_text(POLICY)
    return ws


@pytest.fixture(scope="module")
def run(workspace: Path) -> GateRun:
    return run_gate(workspace)


def _policy_line(name: str, key: str = "source") -> int:
    lines = POLICY.splitlines()
    start = lines.index(f"  - name: {name}")
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"{key}:")) + 1


def _only(run: GateRun, model: str) -> dict[str, Any]:
    findings = run.findings(model=model)
    assert len(findings) == 1, findings
    return findings[0]


def test_gate_fails_without_traceback(run: GateRun) -> None:
    assert run.returncode == 1
    assert "Traceback" not in run.stderr + run.stdout


@pytest.mark.parametrize(
    ("model", "kind", "variants"),
    [
        ("keras-file", "keras", ["float", "f16"]),
        ("h5-file", "h5", ["float"]),
        ("saved-model", "saved_model", ["float"]),
        ("saved-model-shaped", "saved_model", ["float"]),
        ("tflite-file", "tflite", ["tflite"]),
        ("module-factory", "factory", ["float"]),
        ("dynamic-with-shapes", "factory", ["float"]),
        ("lambda-unsafe", "keras", ["float"]),
    ],
)
def test_good_sources_convert_cleanly(
    run: GateRun, model: str, kind: str, variants: list[str]
) -> None:
    assert run.findings(model=model) == []
    report = run.model(model)
    assert report["source_kind"] == kind
    assert [v["name"] for v in report["variants"]] == variants
    assert all(v["inspection"]["ops"] for v in report["variants"])


def test_keras_file_records_who_wrote_it(run: GateRun) -> None:
    import keras

    assert run.model("keras-file")["written_by"]["keras"] == keras.__version__
    f16 = run.model("keras-file")["variants"][1]["inspection"]
    assert f16["conversion"]["optimization_modes"] == ["PTQ_FLOAT16"]


def test_saved_model_input_shapes_are_applied(run: GateRun) -> None:
    assert run.model("saved-model")["inputs"][0]["shape"] == [-1, 3]
    assert run.model("saved-model-shaped")["inputs"][0]["shape"] == [2, 3]
    assert run.model("saved-model")["written_by"]["tensorflow"]


def test_input_shapes_accept_the_tensor_name(run: GateRun) -> None:
    assert run.findings(model="saved-model-tensor-name") == []
    assert run.model("saved-model-tensor-name")["inputs"][0]["shape"] == [4, 3]


def test_broken_saved_model_names_the_tensorflow_that_wrote_it(run: GateRun) -> None:
    import tensorflow as tf

    finding = _only(run, "broken-saved-model")
    assert finding["rule"] == "model-load-failed"
    assert f"(written by TensorFlow {tf.__version__}; installed: TensorFlow" in finding["message"]
    assert finding["details"]["written_by"]["tensorflow"] == tf.__version__


def test_missing_path(run: GateRun) -> None:
    finding = _only(run, "missing")
    assert finding["rule"] == "model-not-found"
    assert finding["message"] == "missing: models/nothing.keras does not exist in the workspace"
    assert finding["location"]["line"] == _policy_line("missing")


def test_saved_model_dir_without_pb(run: GateRun) -> None:
    finding = _only(run, "no-pb")
    assert finding["rule"] == "model-load-failed"
    assert "empty_saved/ is a directory without saved_model.pb" in finding["message"]
    assert finding["location"]["line"] == _policy_line("no-pb")


@pytest.mark.parametrize(
    ("model", "text"),
    [
        ("truncated", "not a valid flatbuffer (truncated or corrupted)"),
        ("not-flatbuffer", "not a TFLite flatbuffer (file identifier 'TFL3' missing"),
        ("unsupported-file", "is not a supported model file"),
    ],
)
def test_unreadable_files(run: GateRun, model: str, text: str) -> None:
    finding = _only(run, model)
    assert finding["rule"] == "model-load-failed"
    assert text in finding["message"]
    assert finding["location"] == {
        "path": "tflite-gate.yml",
        "line": _policy_line(model),
        "column": 13,
    }


def test_factory_that_raises_points_at_the_raise(run: GateRun) -> None:
    finding = _only(run, "factory-raises")
    assert finding["rule"] == "model-load-failed"
    assert "raised ValueError: weights file is missing" in finding["message"]
    raise_line = FACTORIES.splitlines().index('    raise ValueError("weights file is missing")') + 1
    assert finding["location"] == {"path": "factories.py", "line": raise_line, "column": None}


def test_factory_returning_the_wrong_type(run: GateRun) -> None:
    finding = _only(run, "factory-wrong-type")
    assert finding["rule"] == "model-load-failed"
    assert "returned builtins.dict; expected a keras.Model" in finding["message"]


def test_factory_function_without_signature(run: GateRun) -> None:
    finding = _only(run, "factory-no-signature")
    assert "tf.function without input_signature" in finding["message"]


def test_factory_function_that_does_not_exist(run: GateRun) -> None:
    finding = _only(run, "factory-missing-function")
    assert "module 'factories' has no function 'nope'" in finding["message"]


def test_dynamic_dims_without_input_shapes(run: GateRun) -> None:
    finding = _only(run, "dynamic-no-shapes")
    assert finding["rule"] == "policy-invalid"
    assert "input 'image' has dynamic dimensions [None, None, None, 3]" in finding["message"]
    assert "input_shapes: {image: [1, H, W, 3]}" in finding["message"]
    assert "replacing H and W with the sizes your app feeds" in finding["message"]
    assert finding["location"]["line"] == _policy_line("dynamic-no-shapes")


def test_input_shapes_naming_an_unknown_input(run: GateRun) -> None:
    finding = _only(run, "wrong-input-name")
    assert finding["rule"] == "policy-invalid"
    assert finding["location"]["line"] == _policy_line("wrong-input-name", "input_shapes")
    assert "input_shapes names 'picture', but the model's inputs are: image" in finding["message"]


def test_npz_missing_an_input(run: GateRun) -> None:
    finding = _only(run, "npz-missing-input")
    assert finding["rule"] == "data-invalid"
    assert "calib.npz has no array for input(s) x; it has: wrong_name" in finding["message"]
    assert finding["location"]["line"] == _policy_line("npz-missing-input", "data")


def test_safe_mode_refuses_lambda_layers(run: GateRun) -> None:
    finding = _only(run, "lambda-safe")
    assert finding["rule"] == "model-load-failed"
    assert "safe_mode" in finding["message"]


def test_load_failure_names_the_writing_and_installed_versions(run: GateRun) -> None:
    import keras

    finding = _only(run, "future-keras")
    assert finding["rule"] == "model-load-failed"
    assert "written by Keras 9.9.9" in finding["message"]
    assert f"Keras {keras.__version__}" in finding["message"]

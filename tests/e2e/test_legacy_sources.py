"""The models people have: Keras 2 files and SavedModels, subclassed models, weights.

The Keras 2 fixtures are written with tf-keras (a dependency of the gate), so they
carry the same Keras 2 object graph as a model saved by TF <= 2.15: a SavedModel
with a Keras 2 optimizer fails to load in TensorFlow 2.16+ unless tf-keras is
importable ("'_UserObject' object has no attribute 'add_slot'"). One gate run
checks every source; a second run, in a Python where tf-keras cannot be imported,
checks that the load failures name the fix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from packaging.requirements import Requirement

from tests.support.harness import GateRun, run_gate

pytestmark = pytest.mark.slow

SUBCLASSED = textwrap.dedent(
    """\
    import keras
    import numpy as np


    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)
            self.pool = keras.layers.GlobalAveragePooling2D()

        def call(self, image):
            return self.pool(self.conv(image))


    class Pair(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(keras.ops.concatenate(inputs, axis=-1))


    class Fixed(keras.Model):
        # Built by `model.build()` from its default, as MTCNN's networks are.

        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)
            self.flat = keras.layers.Flatten()

        def build(self, input_shape=(None, 12, 12, 3)):
            self.conv.build(input_shape)
            super().build(input_shape)

        def call(self, inputs):
            features = self.conv(inputs)
            return [self.flat(features), features]


    class TwoArgs(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, a, b):
            return self.dense(keras.ops.concatenate([a, b], axis=-1))


    def two_args():
        model = TwoArgs()
        model(np.zeros((1, 4), np.float32), np.zeros((1, 3), np.float32))
        return model


    def called():
        net = Net()
        net(np.zeros((1, 12, 12, 3), np.float32))
        return net


    def built_dynamic():
        net = Net()
        net.build((None, None, None, 3))
        return net


    def unbuilt():
        return Net()


    def built_by_default():
        model = Fixed()
        model.build()
        return model


    def pair():
        model = Pair()
        model([np.zeros((1, 4), np.float32), np.zeros((1, 3), np.float32)])
        return model
    """
)

KERAS2_FACTORIES = textwrap.dedent(
    """\
    import numpy as np
    import tf_keras


    class Net(tf_keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = tf_keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)


    def functional():
        x = tf_keras.Input((4,), name="x")
        return tf_keras.Model(x, tf_keras.layers.Dense(2)(x))


    def subclassed():
        net = Net()
        net(np.zeros((1, 4), np.float32))
        return net
    """
)

POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: keras2-saved-model
        source: models/keras2_saved
      - name: keras2-saved-model-shaped
        source: models/keras2_saved
        input_shapes: {x: [1, 4]}
      - name: keras2-h5
        source: models/keras2_tf_ops.h5
      - name: keras2-keras-file
        source: models/keras2_tf_ops.keras
      - name: keras2-weights
        source: models/keras2.h5
      - name: keras3-weights
        source: models/keras3.weights.h5
      - name: subclassed
        source: subclassed:called
      - name: subclassed-shaped
        source: subclassed:called
        input_shapes: {image: [1, 16, 16, 3]}
      - name: subclassed-dynamic
        source: subclassed:built_dynamic
      - name: subclassed-dynamic-shaped
        source: subclassed:built_dynamic
        input_shapes: {image: [1, 16, 16, 3]}
      - name: subclassed-unbuilt
        source: subclassed:unbuilt
      - name: subclassed-unbuilt-shaped
        source: subclassed:unbuilt
        input_shapes: {image: [1, 8, 8, 3]}
      - name: subclassed-pair
        source: subclassed:pair
      - name: subclassed-built-by-default
        source: subclassed:built_by_default
      - name: keras2-factory
        source: keras2_factories:functional
      - name: keras2-subclassed-factory
        source: keras2_factories:subclassed
      - name: subclassed-two-args
        source: subclassed:two_args
      - name: subclassed-two-args-shaped
        source: subclassed:two_args
        input_shapes: {a: [1, 4], b: [1, 3]}
    """
)

CONVERTING = [
    ("keras2-saved-model", "saved_model", [("x", [-1, 4])]),
    ("keras2-saved-model-shaped", "saved_model", [("x", [1, 4])]),
    ("keras2-h5", "h5", [("x", [-1, 4])]),
    ("keras2-keras-file", "keras", [("x", [-1, 4])]),
    ("subclassed", "factory", [("image", [-1, 12, 12, 3])]),
    ("subclassed-shaped", "factory", [("image", [1, 16, 16, 3])]),
    ("subclassed-dynamic-shaped", "factory", [("image", [1, 16, 16, 3])]),
    ("subclassed-unbuilt-shaped", "factory", [("image", [1, 8, 8, 3])]),
    ("subclassed-pair", "factory", [("inputs_0", [-1, 4]), ("inputs_1", [-1, 3])]),
    ("subclassed-built-by-default", "factory", [("inputs", [-1, 12, 12, 3])]),
    ("subclassed-two-args-shaped", "factory", [("a", [1, 4]), ("b", [1, 3])]),
    ("keras2-factory", "factory", [("x", [-1, 4])]),
    ("keras2-subclassed-factory", "factory", [("x", [-1, 4])]),
]


def _write_models(ws: Path) -> None:
    """Keras 2 models as TF <= 2.15 wrote them, via tf-keras; Keras 3 weights."""
    import keras
    import tensorflow as tf
    import tf_keras

    models = ws / "models"
    models.mkdir()
    tf_keras.utils.set_random_seed(0)
    dense = tf_keras.Sequential(
        [tf_keras.layers.Input((4,), name="x"), tf_keras.layers.Dense(3, activation="relu")]
    )
    # The Keras 2 optimizer (OptimizerV2) with slot variables, as TF 2.4-era models have.
    dense.compile(optimizer=tf_keras.optimizers.legacy.Adam(), loss="mse")
    dense.fit(np.ones((2, 4), np.float32), np.ones((2, 3), np.float32), verbose=0)
    dense.save(models / "keras2_saved", save_format="tf")
    dense.save_weights(models / "keras2.h5")

    # A TF op on a Keras 2 tensor becomes a TFOpLambda layer, which Keras 3 cannot read.
    x = tf_keras.Input((4,), name="x")
    tf_ops = tf_keras.Model(x, tf.math.multiply(tf.nn.relu(tf_keras.layers.Dense(3)(x)), 2.0))
    tf_ops.save(models / "keras2_tf_ops.h5")
    tf_ops.save(models / "keras2_tf_ops.keras")

    keras3 = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    keras3.save_weights(models / "keras3.weights.h5")
    (ws / "subclassed.py").write_text(SUBCLASSED)
    (ws / "keras2_factories.py").write_text(KERAS2_FACTORIES)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("legacy")
    _write_models(ws)
    (ws / "tflite-gate.yml").write_text(POLICY)
    return ws


@pytest.fixture(scope="module")
def run(workspace: Path) -> GateRun:
    return run_gate(workspace)


@pytest.fixture(scope="module")
def without_tf_keras(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    """The gate in a Python where `import tf_keras` fails, as where it is not installed."""
    blocker = tmp_path_factory.mktemp("no_tf_keras")
    (blocker / "sitecustomize.py").write_text('import sys\nsys.modules["tf_keras"] = None\n')
    report = workspace / "without-tf-keras.json"
    env = dict(os.environ, PYTHONPATH=str(blocker))
    args = ["--workspace", str(workspace), "--report", str(report)]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tflite_gate",
            "check",
            *args,
            "--only",
            "keras2-saved-model,keras2-h5",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return GateRun(completed.returncode, completed.stdout, completed.stderr, data)


def _policy_line(name: str, key: str = "source") -> int:
    lines = POLICY.splitlines()
    start = lines.index(f"  - name: {name}")
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"{key}:")) + 1


def _only(run: GateRun, model: str) -> dict[str, Any]:
    findings = run.findings(model=model)
    assert len(findings) == 1, findings
    return findings[0]


def _tf_minor() -> str:
    return ".".join(metadata.version("tensorflow").split(".")[:2])


def test_tf_keras_is_a_dependency_matching_tensorflow() -> None:
    requirements = [Requirement(r) for r in metadata.requires("tflite-gate") or []]
    assert "tf-keras" in {r.name for r in requirements if r.marker is None}
    assert metadata.version("tf-keras").startswith(_tf_minor() + ".")


@pytest.mark.parametrize(("model", "kind", "inputs"), CONVERTING)
def test_models_people_have_convert_and_run(
    run: GateRun, model: str, kind: str, inputs: list[tuple[str, list[int]]]
) -> None:
    assert run.findings(model=model) == []
    report = run.model(model)
    assert report["source_kind"] == kind
    assert [(i["name"], i["shape"]) for i in report["inputs"]] == inputs
    (variant,) = report["variants"]
    assert variant["inspection"]["ops"]
    assert [r["status"] for r in variant["runs"]] == ["passed"]


def test_keras2_files_record_who_wrote_them(run: GateRun) -> None:
    assert run.model("keras2-h5")["written_by"]["keras"].startswith("2.")
    assert run.model("keras2-keras-file")["written_by"]["keras"].startswith("2.")


@pytest.mark.parametrize(
    ("model", "path"),
    [("keras2-weights", "models/keras2.h5"), ("keras3-weights", "models/keras3.weights.h5")],
)
def test_weights_only_h5_asks_for_a_factory(run: GateRun, model: str, path: str) -> None:
    finding = _only(run, model)
    assert finding["rule"] == "model-load-failed"
    assert f"{path} holds only weights (written by save_weights)" in finding["message"]
    assert f'`model.load_weights("{path}")`' in finding["message"]
    assert "module:function factory" in finding["message"]
    assert finding["location"]["line"] == _policy_line(model)


def test_subclassed_model_with_a_dynamic_image_size_asks_for_input_shapes(run: GateRun) -> None:
    finding = _only(run, "subclassed-dynamic")
    assert finding["rule"] == "policy-invalid"
    assert (
        "input_shapes: {image: [1, H, W, 3]}, replacing H and W with the sizes"
        in (finding["message"])
    )
    assert finding["location"]["line"] == _policy_line("subclassed-dynamic")


def test_unbuilt_subclassed_model_asks_for_input_shapes(run: GateRun) -> None:
    finding = _only(run, "subclassed-unbuilt")
    assert finding["rule"] == "policy-invalid"
    assert "Net is a subclassed model that was never called or built" in finding["message"]
    assert "input_shapes: {image: [1, ...]}" in finding["message"]


def test_keras2_saved_model_without_tf_keras_names_the_fix(without_tf_keras: GateRun) -> None:
    finding = _only(without_tf_keras, "keras2-saved-model")
    assert finding["rule"] == "model-load-failed"
    message = finding["message"]
    assert "holds a Keras 2 optimizer that TensorFlow restores only through tf-keras" in message
    assert f"pip install 'tf-keras=={_tf_minor()}.*'" in message
    assert "include_optimizer=False" in message
    assert "add_slot" not in message
    assert "Traceback" not in without_tf_keras.stderr


def test_keras2_h5_without_tf_keras_names_the_fix(without_tf_keras: GateRun) -> None:
    finding = _only(without_tf_keras, "keras2-h5")
    assert finding["rule"] == "model-load-failed"
    assert (
        "was written by Keras 2, which this TensorFlow reads only through tf-keras"
        in (finding["message"])
    )
    assert f"pip install 'tf-keras=={_tf_minor()}.*'" in finding["message"]


def test_subclassed_model_with_several_call_tensors_asks_for_all_shapes(run: GateRun) -> None:
    finding = _only(run, "subclassed-two-args")
    assert finding["rule"] == "policy-invalid"
    assert "TwoArgs.call takes 2 tensors (a, b)" in finding["message"]
    assert "input_shapes: {a: [1, ...], b: [1, ...]}" in finding["message"]

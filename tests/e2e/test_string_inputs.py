"""String inputs through real gate runs: fed from generators and .npz, compared end to end.

Measured on TensorFlow 2.21 / ai-edge-litert 2.3: a Keras `StringLookup` (or a
`TextVectorization` with `standardize=None, split=None`) converts to builtin ops only
(HASHTABLE, HASHTABLE_FIND, ...) and runs in ai-edge-litert with the Keras model's
numbers. A default `TextVectorization` standardizes and splits with TensorFlow string
ops (StringLower, StaticRegexReplace, StringSplitV2, RaggedTensorToTensor) that have
no TFLite builtin: such a model cannot be converted to a builtin-only model, and the
finding must say so and what to do. With Select TF ops it converts, and runs on
`tensorflow==2.18.1` (which links the Flex delegate) with the Keras model's numbers.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.harness import GateRun, run_gate
from tflite_gate.run.runtimes import default_cache_dir

pytestmark = pytest.mark.slow

TEXT_MODELS = textwrap.dedent(
    """\
    import numpy as np

    WORDS = np.array([b"a", b"b", b"c", b"zz"])


    def lookup():
        import keras

        keras.utils.set_random_seed(0)
        tokens = keras.Input((3,), dtype="string", name="tokens")
        ids = keras.layers.StringLookup(vocabulary=["a", "b", "c"])(tokens)
        return keras.Model(tokens, keras.layers.Embedding(5, 2)(ids))


    def vectorizer():
        import keras

        text = keras.Input((1,), dtype="string", name="text")
        vectorize = keras.layers.TextVectorization(
            output_sequence_length=4, vocabulary=["hello", "world"]
        )
        return keras.Model(text, keras.layers.Embedding(5, 2)(vectorize(text)))


    def samples():
        rng = np.random.default_rng(0)
        for _ in range(40):
            yield {"tokens": WORDS[rng.integers(0, 4, (3,))]}


    def objects():
        # what tf.data's .numpy() gives for a string tensor: an object array
        rng = np.random.default_rng(1)
        for _ in range(40):
            yield {"tokens": np.array(list(WORDS[rng.integers(0, 4, (1, 3))][0]), dtype=object)}


    def sentences():
        for _ in range(8):
            yield {"text": np.array([["Hello, World!"]], dtype=object)}
    """
)

POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: lookup-from-generator
        source: text_models:lookup
        data: {evaluation: text_models:samples}
        max_divergence: {max_abs: 1.0e-6}
      - name: lookup-from-npz
        source: text_models:lookup
        data: {evaluation: data/tokens.npz}
        max_divergence: {max_abs: 1.0e-6}
      - name: tflite-vs-keras
        source: models/lookup.tflite
        reference: models/lookup.keras
        data: {evaluation: text_models:objects}
        max_divergence: {max_abs: 1.0e-6}
      - name: tflite-alone
        source: models/lookup.tflite
        data: {evaluation: data/tokens.npz}
      - name: no-data
        source: text_models:lookup
      - name: vectorizer
        source: text_models:vectorizer
        data: {evaluation: text_models:sentences}
      - name: vectorizer-flex
        source: text_models:vectorizer
        data: {evaluation: text_models:sentences}
        ops: {select_tf_ops: true}
        max_divergence: {max_abs: 1.0e-6}
        runtimes: [ai-edge-litert, "tensorflow==2.18.1"]
    """
)


def _write_workspace(ws: Path) -> None:
    import sys

    import tensorflow as tf

    (ws / "text_models.py").write_text(TEXT_MODELS)
    (ws / "data").mkdir()
    rng = np.random.default_rng(2)
    words = np.array(["a", "b", "c", "ünknown"])  # str (dtype U), one of them not ASCII
    np.savez(ws / "data" / "tokens.npz", tokens=words[rng.integers(0, 4, (20, 3))])
    sys.path.insert(0, str(ws))
    try:
        import text_models

        model = text_models.lookup()
    finally:
        sys.path.remove(str(ws))
    (ws / "models").mkdir()
    model.save(ws / "models" / "lookup.keras")
    converted = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    (ws / "models" / "lookup.tflite").write_bytes(converted)


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    ws = tmp_path_factory.mktemp("string-inputs")
    _write_workspace(ws)
    (ws / "tflite-gate.yml").write_text(POLICY)
    # tensorflow 2.18.1 links the Flex delegate; installed once per machine into the
    # gate's default cache, which tests/test_flex_runtime_e2e.py shares.
    return run_gate(ws, "--no-cache", "--cache-dir", str(default_cache_dir()))


def _runs(gate: GateRun, model: str) -> list[dict[str, Any]]:
    return [run for variant in gate.model(model)["variants"] for run in variant["runs"]]


@pytest.mark.parametrize(
    ("model", "samples"),
    [("lookup-from-generator", 16), ("lookup-from-npz", 10), ("tflite-vs-keras", 16)],
)
def test_string_inputs_are_fed_and_compared(gate: GateRun, model: str, samples: int) -> None:
    assert gate.findings(model=model) == []
    (run,) = _runs(gate, model)
    assert (run["status"], run["samples"]) == ("passed", samples), run
    assert run["metrics"][0]["compared"] > 0 and run["metrics"][0]["max_abs"] <= 1.0e-6


def test_a_string_input_tflite_runs_on_npz_data(gate: GateRun) -> None:
    (run,) = _runs(gate, "tflite-alone")
    assert (run["status"], run["samples"]) == ("ran", 10)
    assert gate.model("tflite-alone")["inputs"][0]["dtype"] == "string"


def test_string_inputs_without_data_say_what_to_give(gate: GateRun) -> None:
    (finding,) = gate.findings(model="no-data")
    assert finding["rule"] == "data-invalid"
    assert (
        "give a .npz of bytes or str arrays, or a module:function generator yielding "
        in (finding["message"])
    )


def test_text_ops_without_builtins_are_one_finding_saying_so(gate: GateRun) -> None:
    (finding,) = [f for f in gate.findings(model="vectorizer") if f["rule"] == "flex-op"]
    assert finding["message"].startswith(
        "vectorizer/float: standardize and split the text in the app and feed the tokens "
        "(StringLookup, or TextVectorization with standardize=None and split=None, convert "
        "to builtins), or set ops.select_tf_ops: true if the app links the Flex delegate: "
        "this string-input model cannot be converted to a builtin-only TFLite model: "
    )
    for op in ("tf.StringLower", "tf.StaticRegexReplace", "tf.StringSplitV2"):
        assert op in finding["message"]


def test_text_ops_run_where_the_flex_delegate_is_linked(gate: GateRun) -> None:
    runs = {run["runtime"]: run for run in _runs(gate, "vectorizer-flex")}
    assert runs["ai-edge-litert"]["status"] == "unverifiable"
    flex = runs["tensorflow==2.18.1"]
    assert (flex["status"], flex["samples"]) == ("passed", 4), flex
    assert flex["metrics"][0]["max_abs"] <= 1.0e-6

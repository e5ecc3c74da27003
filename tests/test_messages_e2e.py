"""Converter messages lead with what to do, once per problem, through one real gate run.

A tiny LSTM with a dynamic batch fails to convert in every variant with three
converter errors each (TensorList ops); a Reshape model with a dynamic batch gains
SHAPE/PACK/STRIDED_SLICE; an erf needs a Select TF op; a .tflite with resource
variables and no initializer reads uninitialised memory. Each must come out as one
finding per problem, its message led by the fix, at the line to change.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from conftest import GateRun, run_gate
from tflite_builder import build_model, builtin

pytestmark = pytest.mark.slow

FACTORIES = textwrap.dedent(
    """\
    import keras
    import tensorflow as tf


    def lstm():
        x = keras.Input((5, 3), name="x")
        return keras.Model(x, keras.layers.LSTM(4)(x))


    def reshape():
        x = keras.Input((6,), name="x")
        return keras.Model(x, keras.layers.Reshape((2, 3))(keras.layers.Dense(6)(x)))


    class Erf(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def __call__(self, x):
            return tf.math.erf(x)  # ERF LINE


    def erf():
        return Erf()


    class Growing(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None], tf.float32, name="x")])
        def __call__(self, x):
            parts = tf.TensorArray(tf.float32, size=3, infer_shape=False)  # GROWING LINE
            for i in tf.range(3):
                parts = parts.write(i, x[:, : i + 1] * 2.0)
            return parts.read(2)


    def growing():
        return Growing()


    class Counter(tf.Module):
        def __init__(self):
            self.total = tf.Variable(tf.zeros([1, 4]))

        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def __call__(self, x):
            self.total.assign_add(x)
            return self.total.read_value()


    def counter():
        return Counter()
    """
)

POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: lstm
        source: factories:lstm
        variants:
          - {name: float, quantization: none}
          - {name: dynamic, quantization: dynamic}
          - {name: int8, quantization: int8}
      - name: lstm-fixed
        source: factories:lstm
        input_shapes: {x: [1, 5, 3]}
      - name: reshape
        source: factories:reshape
        variants:
          - {name: float, quantization: none}
          - {name: dynamic, quantization: dynamic}
        ops:
          allow: [FULLY_CONNECTED, RESHAPE]
      - name: erf
        source: factories:erf
      - name: growing
        source: factories:growing
        input_shapes: {x: [1, 4]}
      - name: growing-flex
        source: factories:growing
        input_shapes: {x: [1, 4]}
        ops: {select_tf_ops: true}
      - name: counter
        source: factories:counter
      - name: unfrozen
        source: models/unfrozen.tflite
    """
)


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    ws = tmp_path_factory.mktemp("messages")
    (ws / "factories.py").write_text(FACTORIES)
    (ws / "tflite-gate.yml").write_text(POLICY)
    (ws / "models").mkdir()
    unfrozen = build_model([builtin("VAR_HANDLE"), builtin("READ_VARIABLE", count=2)])
    (ws / "models" / "unfrozen.tflite").write_bytes(unfrozen)
    return run_gate(ws)


def _only(findings: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(findings) == 1, [f["message"] for f in findings]
    return findings[0]


def test_dynamic_batch_lstm_is_one_finding_led_by_the_fixed_batch(run: GateRun) -> None:
    finding = _only(run.findings(model="lstm"))
    assert finding["rule"] == "conversion-failed"
    assert finding["message"].startswith(
        "lstm: set a fixed batch: input_shapes: {x: [1, 5, 3]}, or set ops.select_tf_ops: true"
    )
    assert "requires element_shape to be static" in finding["message"]
    assert finding["message"].endswith("(in variants float, dynamic, int8)")
    assert finding["variant"] is None
    assert finding["details"]["variants"] == ["float", "dynamic", "int8"]
    assert finding["location"] == {
        "path": "tflite-gate.yml",
        "line": _line(POLICY, "factories:lstm"),
        "column": 13,
    }
    errors = run.model("lstm")["variants"][0]["converter"]["errors"]
    assert any(
        "_experimental_lower_tensor_list_ops" in line for e in errors for line in e["advice"]
    )


def test_fixed_batch_converts_the_lstm(run: GateRun) -> None:
    [variant] = run.model("lstm-fixed")["variants"]
    assert variant["status"] == "converted"
    assert run.findings(model="lstm-fixed") == []


def test_dynamic_batch_ops_outside_the_allow_list_say_to_fix_the_batch(run: GateRun) -> None:
    findings = run.findings(model="reshape")
    assert sorted(f["details"]["op"] for f in findings) == ["PACK", "SHAPE", "STRIDED_SLICE"]
    for finding in findings:
        assert finding["rule"] == "op-not-allowed"
        assert finding["message"].startswith(
            "reshape: set a fixed batch: input_shapes: {x: [1, 6]}"
        )
        assert finding["message"].endswith("(in variants float, dynamic)")
        assert finding["location"]["line"] == _line(POLICY, "allow: [FULLY_CONNECTED")


def test_flex_able_op_says_select_tf_ops_or_replace_it_at_its_line(run: GateRun) -> None:
    finding = _only(run.findings(model="erf"))
    where = f"factories.py:{_line(FACTORIES, 'ERF LINE')}"
    assert finding["rule"] == "flex-op"
    assert finding["message"].startswith(
        "erf/float: set ops.select_tf_ops: true if the app links the Flex delegate, "
        f"or replace tf.Erf at {where}"
    )
    assert finding["location"]["path"] == "factories.py"


def test_stateful_variables_initialised_once_are_not_unfrozen(run: GateRun) -> None:
    ops = {op["name"] for op in run.model("counter")["variants"][0]["inspection"]["ops"]}
    assert {"VAR_HANDLE", "CALL_ONCE"} <= ops
    assert run.findings(rule="unfrozen-variables", model="counter") == []


def test_variables_without_initializer_are_unfrozen(run: GateRun) -> None:
    finding = _only(run.findings(rule="unfrozen-variables", model="unfrozen"))
    assert finding["message"].startswith("unfrozen/tflite: convert from the Keras model")
    assert (
        "the variables were not frozen: outputs come from uninitialised memory"
        in (finding["message"])
    )
    assert finding["location"]["line"] == _line(POLICY, "unfrozen.tflite")


def test_tensor_list_with_a_fixed_batch_says_select_tf_ops_works(run: GateRun) -> None:
    finding = _only(run.findings(model="growing"))
    assert finding["rule"] == "conversion-failed"
    assert finding["message"].startswith(
        "growing/float: set ops.select_tf_ops: true if the app links the Flex delegate"
    )
    assert "give every element of the tensor list one static shape" in finding["message"]
    assert finding["details"]["cause"] == "tensor-list"
    assert finding["location"] == {
        "path": "factories.py",
        "line": _line(FACTORIES, "GROWING LINE"),
        "column": None,
    }
    [variant] = run.model("growing-flex")["variants"]
    assert variant["status"] == "converted"

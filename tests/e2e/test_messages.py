"""Converter messages lead with what to do, once per problem, through one real gate run.

A tiny LSTM with a dynamic batch fails to convert in every variant with three
converter errors each (TensorList ops); a Reshape model with a dynamic batch gains
SHAPE/PACK/STRIDED_SLICE; an erf needs a Select TF op; a .tflite with resource
variables and no initializer reads uninitialised memory. Each must come out as one
finding per problem, its message led by the fix, at the line to change.

Bad days too: workers that run out of time or memory, crash or exit while loading, a
converter that segfaults (TensorFlow 2.21 quantizing a fixed-batch LSTM to int8), an
op 16x8 quantization does not support, a module the factory imports that is not
installed, an error raised inside a library vendored into the workspace, and three
declared custom ops without kernels. Their messages name the cause (never TensorFlow's
start-up log), and neither they nor the rule's hint point at an unrelated fix.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from tests.support.harness import GateRun, run_gate
from tests.support.tflite_builder import build_model, builtin, custom
from tflite_gate.rules import RULES

pytestmark = pytest.mark.slow

FACTORIES = textwrap.dedent(
    """\
    import os
    import signal
    import time

    import keras
    import tensorflow as tf


    def lstm():
        x = keras.Input((5, 3), name="x")
        return keras.Model(x, keras.layers.LSTM(4)(x))  # LSTM LINE


    def gru():
        x = keras.Input((5, 3), name="x")
        y = keras.layers.Dense(3)(x)
        return keras.Model(x, keras.layers.GRU(4)(y))  # GRU LINE


    def lstm_fixed():
        x = keras.Input((6, 4), batch_size=1, name="x")
        return keras.Model(x, keras.layers.LSTM(8)(x))


    def prelu():
        x = keras.Input((8,), batch_size=1, name="x")
        return keras.Model(x, keras.layers.PReLU()(keras.layers.Dense(4)(x)))


    def slow():
        time.sleep(5)
        return prelu()


    def segfault():
        os.kill(os.getpid(), signal.SIGSEGV)


    def exits():
        os._exit(3)


    def vendored():
        from vendor.textlib import build

        return build()  # VENDORED CALL LINE


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
      - name: gru
        source: factories:gru
      - name: lstm-int8
        source: factories:lstm_fixed
        variants:
          - {name: int8, quantization: int8}
      - name: prelu
        source: factories:prelu
        variants:
          - {name: int16x8, quantization: int16x8}
      - name: slow
        source: factories:slow
        limits: {timeout_s: 1}
      - name: oom
        source: factories:prelu
        limits: {memory_mb: 256}
      - name: segfault
        source: factories:segfault
      - name: exits
        source: factories:exits
      - name: needs-module
        source: needs_module:build
      - name: typo
        source: factoriez:gru
      - name: vendored
        source: factories:vendored
      - name: custom-ops
        source: models/custom.tflite
        ops: {custom: [GateOpA, GateOpB, GateOpC]}
    """
)
NEEDS_MODULE = textwrap.dedent(
    """\
    import keras

    import absent_helper_module  # IMPORT LINE


    def build():
        x = keras.Input((2,), name="x")
        return keras.Model(x, keras.layers.Dense(1)(x))
    """
)
TEXTLIB = textwrap.dedent(
    """\
    def build():
        raise FileNotFoundError("textlib_weights.hdf5 is missing")  # RAISED LINE
    """
)


def _line(text: str, needle: str, *, after: str = "") -> int:
    """The first line holding `needle` (below the first one holding `after`)."""
    start = _line(text, after) if after else 0
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line and i > start)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    ws = tmp_path_factory.mktemp("messages")
    (ws / "factories.py").write_text(FACTORIES)
    (ws / "needs_module.py").write_text(NEEDS_MODULE)
    (ws / "vendor").mkdir()
    (ws / "vendor" / "__init__.py").write_text("")
    (ws / "vendor" / "textlib.py").write_text(TEXTLIB)
    (ws / "tflite-gate.yml").write_text(POLICY)
    (ws / "models").mkdir()
    unfrozen = build_model([builtin("VAR_HANDLE"), builtin("READ_VARIABLE", count=2)])
    (ws / "models" / "unfrozen.tflite").write_bytes(unfrozen)
    three = build_model([custom("GateOpA"), custom("GateOpB"), custom("GateOpC")])
    (ws / "models" / "custom.tflite").write_bytes(three)
    return run_gate(ws, "--no-cache")


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
    assert finding["variants"] == ["float", "dynamic", "int8"]
    assert finding["location"] == {
        "path": "factories.py",
        "line": _line(FACTORIES, "LSTM LINE"),
        "column": None,
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
    assert sorted(f["op"] for f in findings) == ["PACK", "SHAPE", "STRIDED_SLICE"]
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


# --------------------------------------------------------------------------- bad days

TENSORFLOW_LOG = ("I0000", "W0000", "cudart", "cuda drivers", "oneDNN", "absl")


def _says_no_tensorflow_log(message: str) -> None:
    for chatter in TENSORFLOW_LOG:
        assert chatter not in message, message


def test_a_gru_tensor_list_error_is_at_the_gru_line(run: GateRun) -> None:
    finding = _only(run.findings(model="gru"))
    assert finding["message"].startswith("gru/float: set a fixed batch: input_shapes:")
    assert finding["location"] == {
        "path": "factories.py",
        "line": _line(FACTORIES, "GRU LINE"),
        "column": None,
    }


def test_a_load_past_the_time_limit_says_it_timed_out_at_the_limit(run: GateRun) -> None:
    finding = _only(run.findings(model="slow"))
    line = _line(POLICY, "timeout_s: 1")
    assert finding["message"].startswith(
        f"slow: raise limits.timeout_s (1 s, at tflite-gate.yml:{line}:"
    ), finding["message"]
    assert "did not finish within the time limit" in finding["message"]
    assert "while loading the model" in finding["message"]
    assert "cannot load" not in finding["message"]
    _says_no_tensorflow_log(finding["message"])
    assert finding["location"]["line"] == line


def test_a_worker_over_the_memory_limit_names_the_limit(run: GateRun) -> None:
    finding = _only(run.findings(model="oom"))
    line = _line(POLICY, "memory_mb: 256")
    assert finding["message"].startswith(
        f"oom: raise limits.memory_mb (256 MB, at tflite-gate.yml:{line}:"
    ), finding["message"]
    assert "exceeded the memory limit" in finding["message"]
    _says_no_tensorflow_log(finding["message"])
    assert finding["location"]["line"] == line


@pytest.mark.parametrize(
    ("model", "cause"), [("segfault", "crashed with SIGSEGV"), ("exits", "exited with code 3")]
)
def test_a_worker_that_dies_loading_is_named_by_its_signal_or_exit_code(
    run: GateRun, model: str, cause: str
) -> None:
    finding = _only(run.findings(model=model))
    assert finding["rule"] == "model-load-failed"
    assert finding["message"] == (
        f"{model}: cannot load factories:{model}: the conversion worker {cause} while "
        "loading the model"
    )


def test_a_converter_crash_says_another_quantization_not_select_tf_ops(run: GateRun) -> None:
    finding = _only(run.findings(model="lstm-int8"))
    assert finding["rule"] == "conversion-failed"
    assert finding["message"].startswith(
        "lstm-int8/int8: use another quantization for this variant (dynamic, float16) or "
        "another TensorFlow version: the converter crashed with SIGSEGV"
    ), finding["message"]
    assert finding["location"]["line"] == _line(
        POLICY, "{name: int8, quantization: int8}", after="name: lstm-int8"
    )
    for text in (finding["message"], RULES["conversion-failed"].hint):
        assert "Select TF" not in text and "select_tf_ops" not in text
    _says_no_tensorflow_log(finding["message"])


def test_an_op_16x8_cannot_quantize_says_another_quantization(run: GateRun) -> None:
    finding = _only(run.findings(model="prelu"))
    assert finding["rule"] == "conversion-failed"
    assert finding["message"].startswith(
        "prelu/int16x8: use another quantization for this variant (int8, dynamic, float16) "
        "or replace PRELU in the model: the converter cannot quantize PRELU to 16x8"
    ), finding["message"]
    assert finding["location"]["line"] == _line(POLICY, "{name: int16x8, quantization: int16x8}")
    for text in (finding["message"], RULES["conversion-failed"].hint):
        assert "Select TF" not in text and "select_tf_ops" not in text


def test_a_missing_module_says_to_install_it_not_tf_keras(run: GateRun) -> None:
    finding = _only(run.findings(model="needs-module"))
    assert finding["rule"] == "model-load-failed"
    assert finding["message"].startswith(
        "needs-module: install the package that provides the module "
        "'absent_helper_module' where the gate runs"
    ), finding["message"]
    assert (
        "(cannot import 'needs_module': ModuleNotFoundError: No module named"
        in (finding["message"])
    )
    assert finding["location"] == {
        "path": "needs_module.py",
        "line": _line(NEEDS_MODULE, "IMPORT LINE"),
        "column": None,
    }
    for text in (finding["message"], RULES["model-load-failed"].hint):
        assert "tf-keras" not in text and "Keras 2" not in text


def test_a_factory_module_that_is_not_there_is_no_package_to_install(run: GateRun) -> None:
    finding = _only(run.findings(model="typo"))
    assert finding["message"] == (
        "typo: cannot load factoriez:gru: cannot import 'factoriez': ModuleNotFoundError: No "
        "module named 'factoriez'"
    )
    assert finding["location"]["line"] == _line(POLICY, "factoriez:gru")


def test_an_error_inside_a_vendored_library_is_at_the_factorys_line(run: GateRun) -> None:
    finding = _only(run.findings(model="vendored"))
    assert finding["location"] == {
        "path": "factories.py",
        "line": _line(FACTORIES, "VENDORED CALL LINE"),
        "column": None,
    }
    raised = f"vendor/textlib.py:{_line(TEXTLIB, 'RAISED LINE')}"
    assert f"(raised at {raised})" in finding["message"], finding["message"]


def test_the_custom_op_notice_names_every_declared_op(run: GateRun) -> None:
    finding = _only(run.findings(model="custom-ops"))
    assert finding["rule"] == "custom-op"
    assert "GateOpA, GateOpB, GateOpC" in finding["message"], finding["message"]

"""Converter failures and warnings, each led by what to do, at the user's line of model
code where the converter leads back to one, else at the policy setting to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.check_facts import line_of, resolved_model, variant
from tflite_gate.findings import Location
from tflite_gate.judge import checks
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import ConverterError, TensorInfo, VariantReport
from tflite_gate.run.protocol import VariantResult

MODEL_CODE = Location(path="model.py", line=12)


def _failed(*errors: ConverterError) -> VariantResult:
    return VariantResult(name="v", ok=False, errors=list(errors))


def _quantized(mode: str) -> VariantReport:
    return variant().model_copy(
        update={"name": "q", "quantization": mode, "status": "conversion-failed"}
    )


def test_converter_crash_is_a_conversion_failure(configs: list[ModelConfig]) -> None:
    result = VariantResult(name="v", ok=False, crash="the converter crashed with SIGSEGV")
    [finding] = checks.check_conversion(configs[0], variant(), result)
    assert finding.rule == "conversion-failed"
    assert finding.message == "m/v: the converter crashed with SIGSEGV"
    assert checks.check_converter_warnings(configs[0], variant(), result) == []


def test_an_op_int8_cannot_quantize_leads_with_another_quantization(
    configs: list[ModelConfig],
) -> None:
    error = ConverterError(message="Quantization not yet supported for op: 'FOO'.")
    result = VariantResult(name="v", ok=False, errors=[error])
    int8 = variant().model_copy(update={"quantization": "int8", "status": "conversion-failed"})
    [finding] = checks.check_conversion(configs[0], int8, result)
    assert finding.message == (
        "m/v: use another quantization for this variant (dynamic, float16) or replace FOO in "
        "the model: the converter cannot quantize FOO to int8 (converter: Quantization not yet "
        "supported for op: 'FOO'.)"
    )
    assert "select_tf_ops" not in finding.message


def test_a_converter_past_the_default_time_limit_names_the_key(
    configs: list[ModelConfig],
) -> None:
    crash = "the converter did not finish within the time limit (900 s)"
    result = VariantResult(name="v", ok=False, crash=crash, crash_cause="timeout")
    [finding] = checks.check_conversion(configs[0], variant(), result)
    assert finding.message == (
        "m/v: raise limits.timeout_s (900 s, the default) if converting the model just takes "
        f"longer: {crash}"
    )


def test_converter_warnings_of_a_successful_conversion(configs: list[ModelConfig]) -> None:
    result = VariantResult(name="v", ok=True, log_lines=["x.cc:1: op falls back to float\nmore"])
    [finding] = checks.check_converter_warnings(configs[0], variant(), result)
    assert (finding.rule, finding.severity.value) == ("converter-warning", "warning")
    assert finding.message == "m/v: x.cc:1: op falls back to float"


VARIANTS = """\
    version: 1
    models:
      - name: m
        source: m.keras
        input_shapes: {x: [1, 5]}
        limits: {memory_mb: 2048}
        data: {calibration: calib.npz}
        variants:
          - {name: float}
          - name: q
            quantization: int16x8
    """


@pytest.fixture
def written(tmp_path: Path) -> ModelConfig:
    """A model whose limits, data, input shapes and variants are all written."""
    return resolved_model(tmp_path, VARIANTS)


def test_a_converter_killed_at_the_memory_limit_points_at_it(written: ModelConfig) -> None:
    crash = "the converter was killed at the memory limit"
    result = VariantResult(name="v", ok=False, crash=crash, crash_cause="memory")
    [finding] = checks.check_conversion(written, variant(), result)
    at = f"tflite-gate.yml:{line_of('memory_mb', VARIANTS)}:25"
    assert finding.message == (
        f"m/v: raise limits.memory_mb (2048 MB, at {at}) if the machine has the memory: {crash}"
    )
    assert str(finding.location) == at


def test_a_quantizing_converter_that_crashed_leads_with_another_quantization(
    written: ModelConfig,
) -> None:
    """A converter bug: the way around it is the mode, at the variant's quantization line."""
    result = VariantResult(name="q", ok=False, crash="SIGSEGV", crash_cause="signal")
    [finding] = checks.check_conversion(written, _quantized("int16x8"), result)
    assert finding.message == (
        "m/q: use another quantization for this variant (int8, dynamic, float16) or another "
        "TensorFlow version: SIGSEGV (a bug in the converter, not in the model)"
    )
    assert finding.location is not None
    assert finding.location.line == line_of("quantization: int16x8", VARIANTS)
    float_crash = VariantResult(name="float", ok=False, crash="SIGSEGV", crash_cause="signal")
    [finding] = checks.check_conversion(written, variant(), float_crash)
    assert (
        finding.message == "m/v: try another TensorFlow version: SIGSEGV (a bug in the converter)"
    )
    assert finding.location == written.source_location


def test_an_unquantizable_op_in_16x8_says_16x8(written: ModelConfig) -> None:
    error = ConverterError(message="Quantization to 16x8-bit not yet supported for op: 'PRELU'.")
    [finding] = checks.check_conversion(written, _quantized("int16x8"), _failed(error))
    assert "the converter cannot quantize PRELU to 16x8 " in finding.message
    assert finding.op == "PRELU"


def test_calibration_data_that_failed_is_a_data_finding(written: ModelConfig) -> None:
    result = VariantResult(name="q", ok=False, data_error="calib.npz has no array 'x'")
    [finding] = checks.check_conversion(written, _quantized("int16x8"), result)
    assert (finding.rule, finding.message) == (
        "data-invalid",
        "m/q: calibration data: calib.npz has no array 'x'",
    )
    assert finding.location is not None
    assert finding.location.line == line_of("calibration", VARIANTS)
    raised = result.model_copy(update={"data_location": ("gen.py", 7)})
    [finding] = checks.check_conversion(written, _quantized("int16x8"), raised)
    assert finding.location == Location(path="gen.py", line=7)  # the generator's own line


def test_an_op_with_only_a_select_tf_version_leads_with_select_tf_ops(
    configs: list[ModelConfig],
) -> None:
    error = ConverterError(
        code="ERROR_NEEDS_FLEX_OPS",
        op="tf.Svd",
        message="'tf.Svd' op is neither a custom op nor a flex op",
        location=MODEL_CODE,
    )
    [finding] = checks.check_conversion(configs[0], variant(), _failed(error))
    assert finding.rule == "flex-op"
    assert finding.message == (
        "m/v: set ops.select_tf_ops: true if the app links the Flex delegate, or replace "
        "tf.Svd at model.py:12: it has no TFLite builtin, only a Select TF op (FlexSvd); "
        "conversion failed"
    )
    assert (finding.location, finding.flex_op, finding.op) == (MODEL_CODE, "FlexSvd", "tf.Svd")


def test_an_op_neither_builtin_nor_select_tf_leads_with_a_custom_op(
    configs: list[ModelConfig],
) -> None:
    error = ConverterError(code="ERROR_NEEDS_CUSTOM_OPS", op="MyOp", message="custom op MyOp")
    [finding] = checks.check_conversion(configs[0], variant(), _failed(error))
    assert (finding.rule, finding.message) == (
        "conversion-failed",
        "m/v: implement MyOp as a custom op and list it in ops.custom, or replace it: it is "
        "neither a TFLite builtin nor a Select TF op",
    )
    assert finding.location == configs[0].source_location  # no frame in the workspace


def test_other_converter_errors_lead_with_replacing_the_op_and_keep_its_advice(
    configs: list[ModelConfig],
) -> None:
    named = ConverterError(op="tf.Foo", message="failed to legalize", location=MODEL_CODE)
    named.advice = ["Try ops.select_tf_ops."]
    bare = ConverterError(message="the model has no outputs")
    findings = checks.check_conversion(configs[0], variant(), _failed(named, bare))
    assert [f.message for f in findings] == [
        "m/v: replace tf.Foo at model.py:12: failed to legalize (converter: Try "
        "ops.select_tf_ops.)",
        "m/v: the model has no outputs",
    ]
    assert findings[0].details == {
        "error_code": None,
        "converter": "failed to legalize",
        "advice": ["Try ops.select_tf_ops."],
    }


TENSOR_LIST = ConverterError(
    op="tf.TensorListReserve",
    message="'tf.TensorListReserve' op requires element_shape to be static during TF Lite "
    "transformation pass",
)


def test_tensor_list_ops_of_a_dynamic_batch_lead_with_a_fixed_batch(
    written: ModelConfig,
) -> None:
    dynamic = [TensorInfo(name="x", shape=[-1, 5], dtype="float32")]
    other = ConverterError(op="tf.Const", message="Lowering tensor list ops is failed.")
    [finding] = checks.check_conversion(written, variant(), _failed(TENSOR_LIST, other), dynamic)
    assert finding.message == (
        "m/v: set a fixed batch: input_shapes: {x: [1, 5]}, or set ops.select_tf_ops: true if "
        "the app links the Flex delegate: the batch is dynamic, so the TensorList ops "
        f"tf.TensorListReserve have no static element shape (converter: {TENSOR_LIST.message})"
    )
    assert finding.hint == "set a fixed batch: input_shapes: {x: [1, 5]}"
    assert finding.details["cause"] == "dynamic-batch"
    assert len(finding.details["errors"]) == 2  # one finding for the errors of one cause
    assert finding.location is not None
    assert finding.location.line == line_of("input_shapes", VARIANTS)


def test_tensor_list_ops_of_a_fixed_batch_lead_with_select_tf_ops(
    configs: list[ModelConfig],
) -> None:
    fixed = [TensorInfo(name="x", shape=[1, 5], dtype="float32")]
    at_code = TENSOR_LIST.model_copy(update={"location": MODEL_CODE})
    [finding] = checks.check_conversion(configs[0], variant(), _failed(at_code), fixed)
    assert finding.message.startswith(
        "m/v: set ops.select_tf_ops: true if the app links the Flex delegate (the TensorList "
        "ops then run as Flex ops;"
    )
    assert "the TensorList ops tf.TensorListReserve have no static element shape" in (
        finding.message
    )
    assert (finding.hint, finding.details["cause"]) == (None, "tensor-list")
    assert finding.location == MODEL_CODE  # the RNN layer's line


def test_text_ops_of_a_string_input_model_lead_with_tokenizing_in_the_app(
    configs: list[ModelConfig],
) -> None:
    text = [TensorInfo(name="sentence", shape=[1], dtype="string")]
    errors = [
        ConverterError(code="ERROR_NEEDS_FLEX_OPS", op="tf.StringLower", message="lower"),
        ConverterError(code="ERROR_NEEDS_FLEX_OPS", op="tf.RaggedTensorToTensor", message="ragged"),
    ]
    [finding] = checks.check_conversion(configs[0], variant(), _failed(*errors), text)
    assert finding.rule == "flex-op"
    assert finding.message.startswith(
        "m/v: standardize and split the text in the app and feed the tokens"
    )
    assert finding.message.endswith(
        "this string-input model cannot be converted to a builtin-only TFLite model: "
        "tf.StringLower, tf.RaggedTensorToTensor have no TFLite builtin, only Select TF ops "
        "(FlexStringLower, FlexRaggedTensorToTensor); conversion failed"
    )
    assert finding.details["flex_ops"] == ["FlexStringLower", "FlexRaggedTensorToTensor"]
    # The same op in a model that takes numbers is a single Select TF op, not text handling.
    numbers = [TensorInfo(name="x", shape=[1], dtype="float32")]
    [flex] = checks.check_conversion(configs[0], variant(), _failed(errors[0]), numbers)
    assert flex.message.startswith("m/v: set ops.select_tf_ops: true")


def test_warnings_the_policy_already_accepted_are_not_repeated(
    configs: list[ModelConfig],
) -> None:
    lines = [
        "Flex ops: FlexErf\nDetails:\n\ttf.Erf(tensor<1x4xf32>) -> (tensor<1x4xf32>)",
        "The following operation(s) need TFLite custom op implementation(s):\nCustom ops: MyNms",
        "The following operation(s) need TFLite custom op implementation(s):\nCustom ops: "
        "MyNms, Other",
    ]
    result = VariantResult(name="v", ok=True, log_lines=lines)
    strict = checks.check_converter_warnings(configs[0], variant(), result)
    assert [f.details["log"] for f in strict] == [lines[0], lines[2]]  # MyNms alone is declared
    accepting = checks.check_converter_warnings(configs[1], variant(), result)
    assert [f.details["log"] for f in accepting] == [lines[2]]  # flexible accepts Flex

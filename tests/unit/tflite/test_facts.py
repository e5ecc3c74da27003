"""Tests for `tflite_gate.tflite.facts` on hand-built flatbuffers (no TensorFlow import)."""

from __future__ import annotations

import random
import re

import pytest
from ai_edge_litert import schema_py_generated as schema

from tests.support.tflite_builder import (
    INPUT_TENSOR_NAME,
    IO_SCALE,
    IO_ZERO_POINT,
    OUTPUT_TENSOR_NAME,
    SIGNATURE_INPUT_NAME,
    SIGNATURE_KEY,
    SIGNATURE_OUTPUT_NAME,
    OpSpec,
    build_broken_model,
    build_model,
    build_model_object,
    builtin,
    custom,
    min_runtime_metadata,
    pack,
)
from tflite_gate.report.model import OpInfo, OpKind, Quantization, TensorInfo
from tflite_gate.tflite.facts import InvalidModelError, inspect_model

# --- ops ----------------------------------------------------------------------


def test_builtin_ops_have_kind_version_count_and_min_runtime() -> None:
    data = build_model([builtin("FULLY_CONNECTED", version=12, count=2), builtin("ADD")])

    result = inspect_model(data)

    # Sorted by name, one entry per (name, kind, version).
    assert result.ops == [
        OpInfo(name="ADD", kind="builtin", version=1, count=1, min_runtime="1.5.0"),
        OpInfo(name="FULLY_CONNECTED", kind="builtin", version=12, count=2, min_runtime="2.17.0"),
    ]
    assert result.required_runtime == "2.17.0"
    assert result.size_bytes == len(data)
    assert result.schema_version == 3
    assert result.subgraphs == 1


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        pytest.param([builtin("ADD")], "1.5.0", id="single-op"),
        # Numeric, not string, maximum: "2.9.0" > "2.14.4" as strings.
        pytest.param(
            [builtin("GELU"), builtin("TRANSPOSE", version=7), builtin("ADD")],
            "2.14.4",
            id="numeric-max",
        ),
        # Ops the table does not know are skipped, not guessed.
        pytest.param([builtin("ADD", version=99), builtin("MUL", 2)], "1.14.0", id="unknown"),
        pytest.param(
            [custom("FlexMatrixDeterminant"), custom("MyCustomOp")], None, id="no-builtin"
        ),
        pytest.param([], None, id="no-ops"),
    ],
)
def test_required_runtime_is_the_highest_over_builtin_ops(
    ops: list[OpSpec], expected: str | None
) -> None:
    assert inspect_model(build_model(ops)).required_runtime == expected


def test_the_same_op_code_listed_twice_is_merged() -> None:
    data = build_model([builtin("ADD", count=1), builtin("ADD", count=2), builtin("ADD", 2)])

    assert inspect_model(data).ops == [
        OpInfo(name="ADD", kind="builtin", version=1, count=3, min_runtime="1.5.0"),
        OpInfo(name="ADD", kind="builtin", version=2, count=1, min_runtime="1.14.0"),
    ]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("FlexMatrixDeterminant", "flex"),
        ("FlexConv2D", "flex"),
        ("MyCustomOp", "custom"),
        ("flexLowerCase", "custom"),  # the Flex prefix is case-sensitive
        ("RELU", "custom"),  # a custom op named like a builtin is still custom
    ],
)
def test_custom_codes_are_flex_or_custom_without_min_runtime(code: str, kind: OpKind) -> None:
    result = inspect_model(build_model([custom(code, version=1, count=2)]))

    assert result.ops == [OpInfo(name=code, kind=kind, version=1, count=2, min_runtime=None)]
    assert result.required_runtime is None


def test_flex_custom_and_builtin_ops_together() -> None:
    data = build_model([builtin("ADD"), custom("FlexMatrixDeterminant"), custom("MyCustomOp")])

    kinds = {op.name: op.kind for op in inspect_model(data).ops}

    assert kinds == {"ADD": "builtin", "FlexMatrixDeterminant": "flex", "MyCustomOp": "custom"}


@pytest.mark.parametrize(
    ("name", "min_runtime"),
    [("CUMSUM", "2.4.0"), ("STABLEHLO_ADD", "2.16.0"), ("STABLEHLO_CASE", "2.17.0")],
)
def test_op_codes_above_127_are_read_from_builtin_code(name: str, min_runtime: str) -> None:
    model = build_model_object([builtin(name)])
    code = model.operatorCodes[0]
    # What the converter writes, and what this test is about.
    assert code.builtinCode == getattr(schema.BuiltinOperator, name) > 127
    assert code.deprecatedBuiltinCode == 127

    result = inspect_model(pack(model))

    assert result.ops == [
        OpInfo(name=name, kind="builtin", version=1, count=1, min_runtime=min_runtime)
    ]
    assert result.required_runtime == min_runtime


def test_old_models_with_only_deprecated_builtin_code_are_named() -> None:
    # Models written before `builtinCode` existed read it as its default, 0 (ADD).
    model = build_model_object([builtin("CONV_2D")])
    model.operatorCodes[0].builtinCode = 0
    assert model.operatorCodes[0].deprecatedBuiltinCode == schema.BuiltinOperator.CONV_2D

    assert [op.name for op in inspect_model(pack(model)).ops] == ["CONV_2D"]


# --- metadata -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.16.0", "1.14.0", "2.3.0"])
def test_min_runtime_metadata_is_read_without_its_padding(version: str) -> None:
    assert len(min_runtime_metadata(version)) == 16
    data = build_model([builtin("ADD")], min_runtime_version=version)

    result = inspect_model(data)

    assert result.metadata_min_runtime == version
    assert result.metadata_names == ["min_runtime_version"]


def test_min_runtime_metadata_without_padding() -> None:
    data = build_model([builtin("ADD")], metadata={"min_runtime_version": b"2.11.0"})

    assert inspect_model(data).metadata_min_runtime == "2.11.0"


def test_metadata_names_are_listed_sorted() -> None:
    data = build_model(
        [builtin("ADD")],
        metadata={"zeta": b"z", "alpha": b""},
        min_runtime_version="2.3.0",
    )

    assert inspect_model(data).metadata_names == ["alpha", "min_runtime_version", "zeta"]


def test_no_metadata() -> None:
    result = inspect_model(build_model([builtin("ADD")]))

    assert result.metadata_min_runtime is None
    assert result.metadata_names == []
    assert result.conversion is None


def test_malformed_conversion_metadata_does_not_fail_inspection() -> None:
    data = build_model([builtin("ADD")], metadata={"CONVERSION_METADATA": b"\xff" * 7})

    result = inspect_model(data)

    assert result.conversion is None
    assert result.metadata_names == ["CONVERSION_METADATA"]


# --- inputs and outputs ---------------------------------------------------------


def test_io_is_named_by_the_signature() -> None:
    result = inspect_model(build_model([builtin("RELU"), builtin("TANH")], signature=True))

    assert result.signatures == [SIGNATURE_KEY]
    assert result.inputs == [TensorInfo(name=SIGNATURE_INPUT_NAME, shape=[1, 4], dtype="float32")]
    assert result.outputs == [
        TensorInfo(name=SIGNATURE_OUTPUT_NAME, shape=[1, 4], dtype="float32", producer="TANH")
    ]


def test_io_without_a_signature_is_named_by_tensor_names() -> None:
    result = inspect_model(build_model([builtin("RELU"), builtin("TANH")], signature=False))

    assert result.signatures == []
    assert [t.name for t in result.inputs] == [INPUT_TENSOR_NAME]
    assert [t.name for t in result.outputs] == [OUTPUT_TENSOR_NAME]


def test_subgraph_without_an_inputs_vector_has_no_inputs() -> None:
    model = build_model_object([builtin("RELU")], signature=False)
    model.subgraphs[0].inputs = None  # the vector is left out of the flatbuffer

    result = inspect_model(pack(model))

    assert result.inputs == []
    assert [t.name for t in result.outputs] == [OUTPUT_TENSOR_NAME]


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("FLOAT32", "float32"),
        ("FLOAT16", "float16"),
        ("INT8", "int8"),
        ("UINT8", "uint8"),
        ("INT64", "int64"),
        ("BOOL", "bool"),
    ],
)
def test_dtype_is_lower_case(dtype: str, expected: str) -> None:
    result = inspect_model(build_model([builtin("RELU")], dtype=dtype))

    assert [t.dtype for t in result.inputs + result.outputs] == [expected, expected]


def test_quantized_io_reports_scale_and_zero_point() -> None:
    result = inspect_model(build_model([builtin("QUANTIZE")], quantized_io=True))

    quantization = Quantization(scale=[IO_SCALE], zero_point=[IO_ZERO_POINT])
    assert result.inputs == [
        TensorInfo(name=SIGNATURE_INPUT_NAME, shape=[1, 4], dtype="int8", quantization=quantization)
    ]
    assert result.outputs[0].dtype == "int8"
    assert result.outputs[0].quantization == quantization


def test_float_io_has_no_quantization() -> None:
    result = inspect_model(build_model([builtin("RELU")]))

    assert result.inputs[0].quantization is None
    assert result.outputs[0].quantization is None


@pytest.mark.parametrize("n_ops", [0, 1, 5])
def test_size_bytes_is_the_file_size(n_ops: int) -> None:
    data = build_model([builtin("RELU", count=n_ops)], min_runtime_version="1.5.0")

    assert inspect_model(data).size_bytes == len(data)


# --- invalid input ----------------------------------------------------------------

_VALID = build_model(
    [builtin("FULLY_CONNECTED", 12), custom("FlexMatrixDeterminant")],
    min_runtime_version="2.17.0",
)
_LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 1048576\n"
)
_NOT_VALID_FLATBUFFER = "^" + re.escape(
    "the model is not a valid flatbuffer (truncated or corrupted): "
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "the file is 0 bytes, too short for a TFLite model", id="empty"),
        pytest.param(b"TFL3", "the file is 4 bytes, too short for a TFLite model", id="4-bytes"),
        pytest.param(
            random.Random(0).randbytes(512),
            "not a TFLite flatbuffer (file identifier 'TFL3' missing at byte 4)",
            id="random-bytes",
        ),
        pytest.param(
            _LFS_POINTER,
            "the file is a Git LFS pointer, not the model (run git lfs pull)",
            id="git-lfs-pointer",
        ),
    ],
)
def test_unusable_files_are_rejected_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidModelError, match=f"^{re.escape(message)}$"):
        inspect_model(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_VALID[: len(_VALID) // 2], id="truncated-to-half"),
        pytest.param(_VALID[:-4], id="truncated-by-4-bytes"),
        # The identifier is right but the root offset points far past the end.
        pytest.param(b"\xff\xff\xff\x7fTFL3" + bytes(64), id="bad-root-offset"),
    ],
)
def test_truncated_or_corrupted_flatbuffers_are_rejected(data: bytes) -> None:
    assert data[4:8] == b"TFL3"  # past the identifier check

    with pytest.raises(InvalidModelError, match=_NOT_VALID_FLATBUFFER):
        inspect_model(data)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            "tensor_buffer_out_of_range",
            "subgraph 0: tensor 1 specifies out of range buffer 99 (the model has 5)",
        ),
        (
            "opcode_index_out_of_range",
            "subgraph 0: operator 0 uses op code 99, but the model defines 2",
        ),
        (
            "operator_tensor_out_of_range",
            "subgraph 0: operator 0 refers to tensor 99, but the subgraph has 3",
        ),
        ("subgraph_output_out_of_range", "subgraph 0: input/output tensor 99 does not exist"),
        ("metadata_buffer_out_of_range", "metadata 'note' points to a missing buffer"),
        ("buffer_past_end_of_file", "buffer 1 points past the end of the file"),
        (
            "signature_tensor_out_of_range",
            "signature 'serving_default': 'output_0' refers to tensor 99, but subgraph 0 has 3",
        ),
        (
            "signature_subgraph_out_of_range",
            "signature 'serving_default' refers to subgraph 99, but the model has 1",
        ),
    ],
)
def test_broken_references_are_rejected_with_a_reason(breakage: str, message: str) -> None:
    with pytest.raises(InvalidModelError, match=f"^{re.escape(message)}$"):
        inspect_model(build_broken_model(breakage))


def test_every_truncation_is_an_invalid_model() -> None:
    for length in range(len(_VALID)):
        with pytest.raises(InvalidModelError):
            inspect_model(_VALID[:length])


def test_corrupted_bytes_never_escape_as_other_exceptions() -> None:
    # Each byte inverted in turn: the result may still parse, but anything
    # else than an Inspection or InvalidModelError would crash the gate.
    for index in range(len(_VALID)):
        data = bytearray(_VALID)
        data[index] ^= 0xFF
        try:
            inspect_model(bytes(data))
        except InvalidModelError:
            pass
        except Exception as exc:
            pytest.fail(f"byte {index} inverted: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize("signature", [True, False])
def test_an_output_producer_looks_through_dequantize_and_reshape(signature: bool) -> None:
    """int8 classifiers end SOFTMAX → DEQUANTIZE: the softmax is what marks a classification."""
    chain = [
        builtin("FULLY_CONNECTED"),
        builtin("SOFTMAX"),
        builtin("DEQUANTIZE"),
        builtin("RESHAPE"),
    ]
    [output] = inspect_model(build_model(chain, signature=signature)).outputs
    assert output.producer == "SOFTMAX"


def test_an_output_with_only_pass_through_ops_has_no_producer() -> None:
    [output] = inspect_model(build_model([builtin("DEQUANTIZE")], signature=True)).outputs
    assert output.producer is None


def test_io_comes_from_the_signature_the_interpreter_runs() -> None:
    """serving_default, even when another signature comes first, as in the worker."""
    import copy

    model = build_model_object([builtin("RELU")], signature=True)
    other = copy.deepcopy(model.signatureDefs[0])
    other.signatureKey = "aaa_first"
    other.outputs[0].name = "not_this_one"
    model.signatureDefs.insert(0, other)
    result = inspect_model(pack(model))
    assert result.signatures == ["aaa_first", SIGNATURE_KEY]
    assert [t.name for t in result.outputs] == [SIGNATURE_OUTPUT_NAME]

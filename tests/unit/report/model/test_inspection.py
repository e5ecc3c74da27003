"""What the flatbuffer and the converter say about a variant, as the report holds it."""

from __future__ import annotations

import pydantic
import pytest

from tests.support.tflite_builder import IO_SCALE, IO_ZERO_POINT, build_model, builtin, custom
from tflite_gate.findings import Location
from tflite_gate.report.model import (
    ConversionMetadata,
    ConverterDiagnostics,
    ConverterError,
    Inspection,
    OpInfo,
)
from tflite_gate.tflite.facts import inspect_model


def test_an_inspected_flatbuffer_reads_back_from_its_json() -> None:
    blob = build_model(
        [builtin("FULLY_CONNECTED", 12), custom("FlexErf"), custom("MyOp")],
        min_runtime_version="2.17.0",
        quantized_io=True,
        dtype="INT8",
    )
    inspection = inspect_model(blob)
    assert Inspection.model_validate_json(inspection.model_dump_json()) == inspection
    assert [op.kind for op in inspection.ops] == ["builtin", "flex", "custom"]
    [tensor] = inspection.inputs
    assert tensor.quantization is not None
    assert (tensor.quantization.scale, tensor.quantization.zero_point) == (
        [IO_SCALE],
        [IO_ZERO_POINT],
    )


def test_an_op_is_builtin_flex_or_custom() -> None:
    with pytest.raises(pydantic.ValidationError, match="kind"):
        OpInfo(name="X", kind="select", version=1, count=1)
    assert OpInfo(name="ADD", kind="builtin", version=1, count=1).min_runtime is None


def test_conversion_metadata_of_an_old_converter_is_all_off() -> None:
    """Unless the converter said otherwise: no optimization, builtin ops only."""
    metadata = ConversionMetadata()
    assert metadata.optimization_modes == []
    assert not (
        metadata.allow_custom_ops or metadata.enable_select_tf_ops or metadata.force_select_tf_ops
    )


def test_converter_diagnostics_start_empty_and_keep_the_users_line() -> None:
    diagnostics = ConverterDiagnostics()
    assert (diagnostics.errors, diagnostics.log_lines) == ([], [])
    error = ConverterError(
        code="ERROR_NEEDS_FLEX_OPS",
        op="tf.Svd",
        message="'tf.Svd' op is neither a custom op nor a flex op",
        location=Location(path="models/net.py", line=16),
    )
    diagnostics.errors.append(error)
    again = ConverterDiagnostics.model_validate_json(diagnostics.model_dump_json())
    assert again.errors[0].location == Location(path="models/net.py", line=16)
    assert again.errors[0].advice == []

"""What the flatbuffer and the converter say about a variant: ops, tensors,
metadata, converter errors and log lines.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tflite_gate.findings import Location
from tflite_gate.report.model.base import StrictModel

OpKind = Literal["builtin", "flex", "custom"]


class OpInfo(StrictModel):
    name: str = Field(description="Builtin op name, Flex op name (FlexXxx) or custom op name.")
    kind: OpKind
    version: int
    count: int
    min_runtime: str | None = Field(
        default=None, description="Oldest runtime that has this op version (TF's table)."
    )


class Quantization(StrictModel):
    scale: list[float]
    zero_point: list[int]


class TensorInfo(StrictModel):
    name: str
    shape: list[int]
    dtype: str
    quantization: Quantization | None = None
    producer: str | None = Field(
        default=None,
        description="For a converted model's output: the op that computes it, looking "
        "through (de)quantize and reshape ops (SOFTMAX marks a classification).",
    )


class ConversionMetadata(StrictModel):
    converter_version: str | None = None
    model_type: str | None = None
    optimization_modes: list[str] = Field(default_factory=list)
    allow_custom_ops: bool = False
    enable_select_tf_ops: bool = False
    force_select_tf_ops: bool = False


class Inspection(StrictModel):
    size_bytes: int
    schema_version: int
    subgraphs: int
    ops: list[OpInfo]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    signatures: list[str]
    metadata_min_runtime: str | None = Field(
        default=None, description="The `min_runtime_version` metadata the converter wrote."
    )
    required_runtime: str | None = Field(
        default=None, description="Highest min runtime over the model's ops (TF's table)."
    )
    conversion: ConversionMetadata | None = None
    metadata_names: list[str] = Field(default_factory=list)


class ConverterError(StrictModel):
    code: str | None = None
    op: str | None = None
    message: str
    advice: list[str] = Field(
        default_factory=list,
        description="The converter's own suggestions and further lines of its message.",
    )
    location: Location | None = Field(
        default=None, description="First frame of the op's creation stack inside the workspace."
    )


class ConverterDiagnostics(StrictModel):
    errors: list[ConverterError] = Field(default_factory=list)
    log_lines: list[str] = Field(
        default_factory=list, description="Converter log lines worth a look, noise removed."
    )

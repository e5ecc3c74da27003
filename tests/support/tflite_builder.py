"""Build tiny .tflite flatbuffers for tests, without TensorFlow.

Models are made with the object API of the TFLite schema that ships in
``ai_edge_litert`` and packed with ``flatbuffers``, so a test can say exactly
which op codes, versions, metadata and signatures a model has, and can break
one reference on purpose, in well under a millisecond.

The graph is always a chain: one input tensor, each operator reads the
previous tensor and writes a new one, and the last tensor is the output.
The models are structurally valid flatbuffers; the ops have no options or
weights, so they are for inspection, not for running.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
SIGNATURE_KEY = "serving_default"
# Tensor names as the converter writes them, and the (different) names the
# signature gives the same tensors, so tests can tell which one was used.
INPUT_TENSOR_NAME = "serving_default_x:0"
OUTPUT_TENSOR_NAME = "StatefulPartitionedCall:0"
SIGNATURE_INPUT_NAME = "x"
SIGNATURE_OUTPUT_NAME = "output_0"
SHAPE = (1, 4)
# Quantization of the I/O tensors when ``quantized_io=True``.
IO_SCALE = 0.5
IO_ZERO_POINT = -3
# The converter stores `min_runtime_version` NUL-padded to this many bytes.
MIN_RUNTIME_BUFFER_SIZE = 16
# Op codes above this value live only in `OperatorCode.builtinCode`.
PLACEHOLDER_FOR_GREATER_OP_CODES = schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES


@dataclass(frozen=True)
class OpSpec:
    """One operator code of the model and how many operators use it.

    ``name`` is a ``schema.BuiltinOperator`` member name (``"ADD"``) or, with
    ``custom=True``, the custom code (``"FlexMatrixDeterminant"``, ``"MyOp"``).
    ``count`` may be 0 for an op code that no operator uses.
    """

    name: str
    version: int = 1
    count: int = 1
    custom: bool = False

    def operator_code(self) -> schema.OperatorCodeT:
        """The `OperatorCode` entry, encoded the way the converter does it."""
        code = schema.OperatorCodeT()
        code.version = self.version
        if self.custom:
            code.builtinCode = schema.BuiltinOperator.CUSTOM
            code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
            code.customCode = self.name
            return code
        value = getattr(schema.BuiltinOperator, self.name)
        code.builtinCode = value
        code.deprecatedBuiltinCode = min(value, PLACEHOLDER_FOR_GREATER_OP_CODES)
        return code


def builtin(name: str, version: int = 1, count: int = 1) -> OpSpec:
    """An `OpSpec` for builtin op ``name`` (a `schema.BuiltinOperator` member)."""
    return OpSpec(name, version, count)


def custom(code: str, version: int = 1, count: int = 1) -> OpSpec:
    """An `OpSpec` for a custom op; a ``Flex`` prefix makes it a Select TF op."""
    return OpSpec(code, version, count, custom=True)


def min_runtime_metadata(version: str) -> bytes:
    """``version`` as the converter stores it: a NUL-padded 16-byte string."""
    raw = version.encode("ascii")
    assert len(raw) <= MIN_RUNTIME_BUFFER_SIZE, version
    return raw.ljust(MIN_RUNTIME_BUFFER_SIZE, b"\0")


def _tensor(name: str, buffer: int, dtype: int) -> schema.TensorT:
    tensor = schema.TensorT()
    tensor.name = name
    tensor.shape = list(SHAPE)
    tensor.type = dtype
    tensor.buffer = buffer
    return tensor


def _quantize(tensor: schema.TensorT) -> None:
    tensor.type = schema.TensorType.INT8
    tensor.quantization = schema.QuantizationParametersT()
    tensor.quantization.scale = [IO_SCALE]
    tensor.quantization.zeroPoint = [IO_ZERO_POINT]


def _tensor_map(name: str, index: int) -> schema.TensorMapT:
    entry = schema.TensorMapT()
    entry.name = name
    entry.tensorIndex = index
    return entry


def build_model_object(
    ops: Sequence[OpSpec],
    *,
    metadata: dict[str, bytes] | None = None,
    min_runtime_version: str | None = None,
    signature: bool = True,
    dtype: str = "FLOAT32",
    quantized_io: bool = False,
    dynamic_batch: bool = False,
) -> schema.ModelT:
    """The model as an unpacked `schema.ModelT`, for tests that edit it before packing.

    Args:
        ops: op codes in order; operators are emitted op code by op code,
            ``count`` operators each, chained input to output.
        metadata: extra metadata entries, name to buffer contents.
        min_runtime_version: if given, a ``min_runtime_version`` metadata
            entry holding it as the converter does (see `min_runtime_metadata`).
        signature: add a ``serving_default`` signature naming the input
            `SIGNATURE_INPUT_NAME` and the output `SIGNATURE_OUTPUT_NAME`.
        dtype: `schema.TensorType` member name for every tensor.
        quantized_io: make the input and output tensors INT8 with scale
            `IO_SCALE` and zero point `IO_ZERO_POINT`.
        dynamic_batch: every tensor's shape signature says any batch (-1), as a
            converter writes for a Keras model whose batch is None.
    """
    tensor_type = getattr(schema.TensorType, dtype)
    n_operators = sum(spec.count for spec in ops)
    # Tensor i is written by operator i - 1; tensor 0 is the model input.
    names = [INPUT_TENSOR_NAME] + [f"t{i}" for i in range(1, n_operators)]
    if n_operators:
        names.append(OUTPUT_TENSOR_NAME)
    output_index = len(names) - 1  # the input itself when there are no operators

    buffers = [schema.BufferT()]  # buffer 0: the empty buffer TFLite requires
    tensors: list[schema.TensorT] = []
    for name in names:
        buffers.append(schema.BufferT())
        tensors.append(_tensor(name, len(buffers) - 1, tensor_type))
        if dynamic_batch:
            tensors[-1].shapeSignature = [-1, *SHAPE[1:]]
    if quantized_io:
        _quantize(tensors[0])
        _quantize(tensors[output_index])

    operators: list[schema.OperatorT] = []
    for code_index, spec in enumerate(ops):
        for _ in range(spec.count):
            operator = schema.OperatorT()
            operator.opcodeIndex = code_index
            operator.inputs = [len(operators)]
            operator.outputs = [len(operators) + 1]
            operators.append(operator)

    subgraph = schema.SubGraphT()
    subgraph.name = "main"
    subgraph.tensors = tensors
    subgraph.inputs = [0]
    subgraph.outputs = [output_index]
    subgraph.operators = operators

    model = schema.ModelT()
    model.version = SCHEMA_VERSION
    model.description = "tflite_builder test model"
    model.operatorCodes = [spec.operator_code() for spec in ops]
    model.subgraphs = [subgraph]
    model.buffers = buffers

    entries = dict(metadata or {})
    if min_runtime_version is not None:
        entries["min_runtime_version"] = min_runtime_metadata(min_runtime_version)
    model.metadata = []
    for name, blob in entries.items():
        buffer = schema.BufferT()
        buffer.data = blob
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)

    if signature:
        signature_def = schema.SignatureDefT()
        signature_def.signatureKey = SIGNATURE_KEY
        signature_def.subgraphIndex = 0
        signature_def.inputs = [_tensor_map(SIGNATURE_INPUT_NAME, 0)]
        signature_def.outputs = [_tensor_map(SIGNATURE_OUTPUT_NAME, output_index)]
        model.signatureDefs = [signature_def]
    return model


def pack(model: schema.ModelT) -> bytes:
    """Serialize ``model`` with the ``TFL3`` file identifier."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def build_model(
    ops: Sequence[OpSpec],
    *,
    metadata: dict[str, bytes] | None = None,
    min_runtime_version: str | None = None,
    signature: bool = True,
    dtype: str = "FLOAT32",
    quantized_io: bool = False,
    dynamic_batch: bool = False,
) -> bytes:
    """A packed chain model; see `build_model_object` for the arguments."""
    return pack(
        build_model_object(
            ops,
            metadata=metadata,
            min_runtime_version=min_runtime_version,
            signature=signature,
            dtype=dtype,
            quantized_io=quantized_io,
            dynamic_batch=dynamic_batch,
        )
    )


# --- Deliberately broken models ---------------------------------------------

_OUT_OF_RANGE = 99


def _tensor_buffer_out_of_range(model: schema.ModelT) -> None:
    model.subgraphs[0].tensors[1].buffer = _OUT_OF_RANGE


def _opcode_index_out_of_range(model: schema.ModelT) -> None:
    model.subgraphs[0].operators[0].opcodeIndex = _OUT_OF_RANGE


def _operator_tensor_out_of_range(model: schema.ModelT) -> None:
    model.subgraphs[0].operators[0].outputs = [_OUT_OF_RANGE]


def _subgraph_output_out_of_range(model: schema.ModelT) -> None:
    model.subgraphs[0].outputs = [_OUT_OF_RANGE]


def _metadata_buffer_out_of_range(model: schema.ModelT) -> None:
    model.metadata[0].buffer = _OUT_OF_RANGE


def _buffer_past_end_of_file(model: schema.ModelT) -> None:
    # Large models keep tensor data after the flatbuffer, addressed by offset.
    model.buffers[1].offset = 1 << 20
    model.buffers[1].size = 16


def _signature_tensor_out_of_range(model: schema.ModelT) -> None:
    model.signatureDefs[0].outputs[0].tensorIndex = _OUT_OF_RANGE


def _signature_subgraph_out_of_range(model: schema.ModelT) -> None:
    model.signatureDefs[0].subgraphIndex = _OUT_OF_RANGE


BREAKAGES: dict[str, Callable[[schema.ModelT], None]] = {
    "tensor_buffer_out_of_range": _tensor_buffer_out_of_range,
    "opcode_index_out_of_range": _opcode_index_out_of_range,
    "operator_tensor_out_of_range": _operator_tensor_out_of_range,
    "subgraph_output_out_of_range": _subgraph_output_out_of_range,
    "metadata_buffer_out_of_range": _metadata_buffer_out_of_range,
    "buffer_past_end_of_file": _buffer_past_end_of_file,
    "signature_tensor_out_of_range": _signature_tensor_out_of_range,
    "signature_subgraph_out_of_range": _signature_subgraph_out_of_range,
}


def build_broken_model(breakage: str) -> bytes:
    """A two-op model (ADD, MUL) with one metadata entry and one bad reference.

    ``breakage`` is a key of `BREAKAGES`; every reference that is broken
    points at index 99, which the model does not have.
    """
    model = build_model_object(
        [builtin("ADD"), builtin("MUL")], metadata={"note": b"hello"}, signature=True
    )
    BREAKAGES[breakage](model)
    return pack(model)

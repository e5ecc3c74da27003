"""Read a .tflite flatbuffer: ops with kinds and versions, I/O, metadata, size.

Runs in the gate's own process and imports only the flatbuffer schema module
that ships with `ai_edge_litert` (fast, no TensorFlow). A file that is not a
valid TFLite model raises `InvalidModelError` with a message a user can act on,
because `.tflite` files in a repo are sometimes truncated LFS pointers or
corrupted uploads.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from tflite_gate.report.model import (
    ConversionMetadata,
    Inspection,
    OpInfo,
    OpKind,
    Quantization,
    TensorInfo,
)
from tflite_gate.tflite.runtime_versions import min_runtime_for_op, required_runtime

FLEX_PREFIX = "Flex"
SERVING_KEY = "serving_default"
"""The signature the interpreter worker runs when a model has it."""
_CUSTOM_CODE = schema.BuiltinOperator.CUSTOM


class InvalidModelError(Exception):
    """The bytes are not a usable TFLite model."""


def _enum_names(enum_class: type) -> dict[int, str]:
    return {
        value: name
        for name, value in vars(enum_class).items()
        if not name.startswith("_") and isinstance(value, int)
    }


BUILTIN_OP_NAMES = _enum_names(schema.BuiltinOperator)
TENSOR_TYPE_NAMES = _enum_names(schema.TensorType)

# Values of the CONVERSION_METADATA flatbuffer's enums
# (tensorflow/compiler/mlir/lite/schema/conversion_metadata.fbs).
_MODEL_TYPES = {
    0: "NONE",
    1: "TF_SAVED_MODEL",
    2: "KERAS_MODEL",
    3: "TF_CONCRETE_FUNCTIONS",
    4: "TF_GRAPH_DEF",
    5: "TF_SESSION",
    6: "JAX",
    7: "PYTORCH",
}
_OPTIMIZATION_MODES = {
    1001: "PTQ_FLOAT16",
    1002: "PTQ_DYNAMIC_RANGE",
    1003: "PTQ_FULL_INTEGER",
    1004: "PTQ_INT16",
    2000: "QUANTIZATION_AWARE_TRAINING",
    3001: "RANDOM_SPARSITY",
    3002: "BLOCK_SPARSITY",
    3003: "STRUCTURED_SPARSITY",
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _unpack(data: bytes) -> Any:
    if len(data) < 8:
        raise InvalidModelError(f"the file is {len(data)} bytes, too short for a TFLite model")
    if not schema.Model.ModelBufferHasIdentifier(data, 0):
        head = data[:40]
        if head.startswith(b"version https://git-lfs"):
            raise InvalidModelError(
                "the file is a Git LFS pointer, not the model (run git lfs pull)"
            )
        raise InvalidModelError(
            "not a TFLite flatbuffer (file identifier 'TFL3' missing at byte 4)"
        )
    try:
        return schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # the generated reader raises whatever a bad offset triggers
        raise InvalidModelError(
            f"the model is not a valid flatbuffer (truncated or corrupted): {exc}"
        ) from None


def _verify_references(model: Any, size: int) -> None:
    """The checks the runtime's verifier would fail on, so we fail first and say why."""
    buffers = model.buffers or []
    codes = model.operatorCodes or []
    for b_index, buffer in enumerate(buffers):
        if buffer.offset > 1 and buffer.offset + buffer.size > size:
            raise InvalidModelError(f"buffer {b_index} points past the end of the file")
    for s_index, subgraph in enumerate(model.subgraphs or []):
        tensors = subgraph.tensors or []
        for t_index, tensor in enumerate(tensors):
            if tensor.buffer >= len(buffers):
                raise InvalidModelError(
                    f"subgraph {s_index}: tensor {t_index} specifies out of range buffer "
                    f"{tensor.buffer} (the model has {len(buffers)})"
                )
        for o_index, op in enumerate(subgraph.operators or []):
            if op.opcodeIndex >= len(codes):
                raise InvalidModelError(
                    f"subgraph {s_index}: operator {o_index} uses op code {op.opcodeIndex}, "
                    f"but the model defines {len(codes)}"
                )
            for t_index in [
                *(op.inputs if op.inputs is not None else []),
                *(op.outputs if op.outputs is not None else []),
            ]:
                if t_index >= len(tensors):
                    raise InvalidModelError(
                        f"subgraph {s_index}: operator {o_index} refers to tensor {t_index}, "
                        f"but the subgraph has {len(tensors)}"
                    )
        for t_index in [
            *(subgraph.inputs if subgraph.inputs is not None else []),
            *(subgraph.outputs if subgraph.outputs is not None else []),
        ]:
            if not 0 <= t_index < len(tensors):
                raise InvalidModelError(
                    f"subgraph {s_index}: input/output tensor {t_index} does not exist"
                )
    for entry in model.metadata or []:
        if entry.buffer >= len(buffers):
            raise InvalidModelError(f"metadata {_text(entry.name)!r} points to a missing buffer")
    subgraphs = model.subgraphs or []
    for signature in model.signatureDefs or []:
        key = _text(signature.signatureKey)
        if signature.subgraphIndex >= len(subgraphs):
            raise InvalidModelError(
                f"signature {key!r} refers to subgraph {signature.subgraphIndex}, "
                f"but the model has {len(subgraphs)}"
            )
        tensors = subgraphs[signature.subgraphIndex].tensors or []
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            if entry.tensorIndex >= len(tensors):
                raise InvalidModelError(
                    f"signature {key!r}: {_text(entry.name)!r} refers to tensor "
                    f"{entry.tensorIndex}, but subgraph {signature.subgraphIndex} "
                    f"has {len(tensors)}"
                )


def _op_identity(code: Any) -> tuple[str, OpKind]:
    # The schema's rule: op codes past 127 live only in `builtinCode`.
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == _CUSTOM_CODE:
        name = _text(code.customCode)
        return name, "flex" if name.startswith(FLEX_PREFIX) else "custom"
    return BUILTIN_OP_NAMES.get(builtin, f"BUILTIN_{builtin}"), "builtin"


def _ops(model: Any) -> list[OpInfo]:
    counts: Counter[int] = Counter()
    for subgraph in model.subgraphs or []:
        counts.update(op.opcodeIndex for op in subgraph.operators or [])
    merged: dict[tuple[str, OpKind, int], int] = {}
    for index, code in enumerate(model.operatorCodes or []):
        name, kind = _op_identity(code)
        key = (name, kind, int(code.version))
        merged[key] = merged.get(key, 0) + counts[index]
    return [
        OpInfo(
            name=name,
            kind=kind,
            version=version,
            count=count,
            min_runtime=min_runtime_for_op(name, version) if kind == "builtin" else None,
        )
        for (name, kind, version), count in sorted(merged.items())
    ]


def tensor_and_op_names(data: bytes) -> tuple[set[str], set[str]]:
    """Every tensor name and op name of a model, over all subgraphs, read without running it."""
    model = _unpack(data)
    tensors = {
        _text(tensor.name)
        for subgraph in model.subgraphs or []
        for tensor in subgraph.tensors or []
    }
    ops = {_op_identity(code)[0] for code in model.operatorCodes or []}
    return tensors, ops


def _tensor_info(tensor: Any) -> TensorInfo:
    quant = tensor.quantization
    quantization = None
    if quant is not None and quant.scale is not None and len(quant.scale) > 0:
        quantization = Quantization(
            scale=[float(s) for s in quant.scale],
            zero_point=[int(z) for z in (quant.zeroPoint if quant.zeroPoint is not None else [])],
        )
    shape = tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape
    return TensorInfo(
        name=_text(tensor.name),
        shape=[int(d) for d in (shape if shape is not None else [])],
        dtype=TENSOR_TYPE_NAMES.get(tensor.type, str(tensor.type)).lower(),
        quantization=quantization,
    )


PASS_THROUGH_OPS = frozenset({"DEQUANTIZE", "QUANTIZE", "RESHAPE", "SQUEEZE", "CAST"})
"""Ops that carry a value along unchanged in meaning; `producer` looks through them."""


def _producer(model: Any, subgraph: Any, tensor_index: int) -> str | None:
    """The op computing a tensor, looking through (de)quantize/reshape/cast ops."""
    made_by = {
        output: op
        for op in subgraph.operators or []
        for output in (op.outputs if op.outputs is not None else [])
    }
    codes = model.operatorCodes or []
    seen: set[int] = set()
    while tensor_index in made_by and tensor_index not in seen:
        seen.add(tensor_index)
        op = made_by[tensor_index]
        name, _ = _op_identity(codes[op.opcodeIndex])
        inputs = [i for i in (op.inputs if op.inputs is not None else []) if i >= 0]
        if name not in PASS_THROUGH_OPS or not inputs:
            return name
        tensor_index = inputs[0]
    return None


def _io(model: Any) -> tuple[list[TensorInfo], list[TensorInfo], list[str]]:
    """Inputs/outputs named by the signature that runs, as users call them.

    That is `serving_default` when the model has it, else its first signature: the
    interpreter worker picks the same one, so inspection describes what is executed.
    """
    signatures = model.signatureDefs or []
    subgraphs = model.subgraphs or []
    if not subgraphs:
        return [], [], []
    keys = [_text(s.signatureKey) for s in signatures]
    if signatures:
        first = signatures[keys.index(SERVING_KEY)] if SERVING_KEY in keys else signatures[0]
        subgraph = subgraphs[first.subgraphIndex]

        def named(maps: Any, *, outputs: bool) -> list[TensorInfo]:
            infos = []
            for entry in sorted(maps or [], key=lambda m: _text(m.name)):
                info = _tensor_info(subgraph.tensors[entry.tensorIndex])
                update: dict[str, Any] = {"name": _text(entry.name)}
                if outputs:
                    update["producer"] = _producer(model, subgraph, entry.tensorIndex)
                infos.append(info.model_copy(update=update))
            return infos

        return named(first.inputs, outputs=False), named(first.outputs, outputs=True), keys
    main = subgraphs[0]
    inputs = [
        _tensor_info(main.tensors[i]) for i in (main.inputs if main.inputs is not None else [])
    ]
    outputs = [
        _tensor_info(main.tensors[i]).model_copy(update={"producer": _producer(model, main, i)})
        for i in (main.outputs if main.outputs is not None else [])
    ]
    return inputs, outputs, keys


def _buffer_bytes(model: Any, data: bytes, index: int) -> bytes:
    buffer = model.buffers[index]
    if buffer.offset > 1:
        return data[buffer.offset : buffer.offset + buffer.size]
    return bytes(buffer.data) if buffer.data is not None else b""


def _conversion_metadata(blob: bytes) -> ConversionMetadata | None:
    """Decode TF's CONVERSION_METADATA table without importing TensorFlow."""
    try:
        root = flatbuffers.table.Table(
            blob, flatbuffers.encode.Get(flatbuffers.packer.uoffset, blob, 0)
        )
        environment = _sub_table(root, 4)
        options = _sub_table(root, 6)
        meta = ConversionMetadata()
        if environment is not None:
            version = _string_field(environment, 4)
            model_type = _scalar_field(environment, 8, flatbuffers.number_types.Int32Flags)
            meta.converter_version = version
            meta.model_type = _MODEL_TYPES.get(model_type or 0, str(model_type))
        if options is not None:
            meta.optimization_modes = [
                _OPTIMIZATION_MODES.get(mode, str(mode)) for mode in _int_vector(options, 4)
            ]
            meta.allow_custom_ops = bool(
                _scalar_field(options, 6, flatbuffers.number_types.BoolFlags)
            )
            meta.enable_select_tf_ops = bool(
                _scalar_field(options, 8, flatbuffers.number_types.BoolFlags)
            )
            meta.force_select_tf_ops = bool(
                _scalar_field(options, 10, flatbuffers.number_types.BoolFlags)
            )
        return meta
    except Exception:  # metadata is informative; a malformed blob must not fail inspection
        return None


def _sub_table(table: Any, slot: int) -> Any:
    offset = table.Offset(slot)
    if not offset:
        return None
    return flatbuffers.table.Table(table.Bytes, table.Indirect(offset + table.Pos))


def _string_field(table: Any, slot: int) -> str | None:
    offset = table.Offset(slot)
    return _text(table.String(offset + table.Pos)) if offset else None


def _scalar_field(table: Any, slot: int, flags: Any) -> Any:
    offset = table.Offset(slot)
    return table.Get(flags, offset + table.Pos) if offset else None


def _int_vector(table: Any, slot: int) -> list[int]:
    offset = table.Offset(slot)
    if not offset:
        return []
    start = table.Vector(offset)
    return [
        table.Get(flatbuffers.number_types.Int32Flags, start + i * 4)
        for i in range(table.VectorLen(offset))
    ]


def inspect_model(data: bytes) -> Inspection:
    """Everything the checks need to know about one converted model."""
    model = _unpack(data)
    _verify_references(model, len(data))
    metadata: dict[str, bytes] = {
        _text(entry.name): _buffer_bytes(model, data, entry.buffer)
        for entry in model.metadata or []
    }
    ops = _ops(model)
    inputs, outputs, signatures = _io(model)
    highest, _ = required_runtime((op.name, op.version) for op in ops if op.kind == "builtin")
    min_runtime_blob = metadata.get("min_runtime_version")
    conversion_blob = metadata.get("CONVERSION_METADATA")
    return Inspection(
        size_bytes=len(data),
        schema_version=int(model.version),
        subgraphs=len(model.subgraphs or []),
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        signatures=signatures,
        metadata_min_runtime=min_runtime_blob.rstrip(b"\0").decode("ascii", "replace")
        if min_runtime_blob
        else None,
        required_runtime=highest,
        conversion=_conversion_metadata(conversion_blob) if conversion_blob else None,
        metadata_names=sorted(metadata),
    )

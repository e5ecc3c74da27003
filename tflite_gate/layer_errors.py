"""Where a quantized model's error comes from: each op output against its float twin.

The float twin is the calibrated model the quantizer started from, so every op output
of the quantized model has a tensor of the same name there. Both run on the
evaluation inputs with every intermediate tensor kept (and no delegate, which would
hide them); each quantized tensor is dequantized and compared with the float one.

The error that reaches a tensor includes what its inputs brought; what an op *adds*
(its output's relative error minus the worst of its inputs') says where the error
starts: typically the op that consumes a tensor whose range a few outliers stretched,
or one whose own output range is too wide for 8 bits. Keeping float an op and the ops
that feed it is then a keep_float candidate, which the gate verifies before it
suggests it.

Runs inside the conversion worker (TensorFlow's side, isolated from the gate), with
the interpreter installed next to the gate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_gate.worker_protocol import LayerError


@dataclass
class _Tensor:
    """Running sums for one op output over the samples."""

    op: str
    inputs: list[str]
    squared_error: float = 0.0
    squared_reference: float = 0.0
    count: int = 0
    scale: float | None = None
    shapes_differ: bool = False

    def rel_rmse(self) -> float | None:
        if self.count == 0 or self.shapes_differ:
            return None
        if self.squared_reference == 0.0:
            return 0.0 if self.squared_error == 0.0 else math.inf
        return math.sqrt(self.squared_error / self.squared_reference)

    def rmse_over_scale(self) -> float | None:
        if self.count == 0 or not self.scale or self.shapes_differ:
            return None
        return math.sqrt(self.squared_error / self.count) / self.scale


def _interpreter(model: bytes) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_content=model,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True,
    )
    interpreter.allocate_tensors()
    return interpreter


def _signature_inputs(interpreter: Any) -> dict[str, int]:
    signatures = interpreter._get_full_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        return dict(signatures[key]["inputs"])
    return {d["name"]: d["index"] for d in interpreter.get_input_details()}


def _dequantized(value: np.ndarray[Any, Any], detail: Mapping[str, Any]) -> np.ndarray[Any, Any]:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    real = np.asarray(value, dtype=np.float64)
    return (real - zero_point) * scale if scale and value.dtype.kind in "iu" else real


def _feed(
    interpreter: Any, inputs: dict[str, int], sample: Mapping[str, np.ndarray[Any, Any]]
) -> None:
    details = {d["index"]: d for d in interpreter.get_input_details()}
    for name, index in inputs.items():
        value, detail = sample[name], details[index]
        scale, zero_point = detail["quantization"]
        dtype = np.dtype(detail["dtype"])
        if scale and dtype.kind in "iu":  # float data into an integer input, as the gate feeds it
            info = np.iinfo(dtype)
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
        value = np.asarray(value).astype(dtype)
        if list(value.shape) != list(detail["shape"]):
            value = value.reshape(detail["shape"])
        interpreter.set_tensor(index, value)


def _op_outputs(interpreter: Any) -> dict[str, _Tensor]:
    """Tensor name → what produced it (op name, input tensor names), in op order."""
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    found: dict[str, _Tensor] = {}
    for op in interpreter._get_ops_details():
        inputs = [names[i] for i in op["inputs"] if i >= 0 and i in names]
        for index in op["outputs"]:
            if index in names:
                found[names[index]] = _Tensor(op=op["op_name"], inputs=inputs)
    return found


def measure(
    float_model: bytes,
    quantized_model: bytes,
    samples: Iterable[Mapping[str, np.ndarray[Any, Any]]],
) -> dict[str, _Tensor]:
    """Per op output of the float model: how far the quantized model's tensor is off."""
    reference, quantized = _interpreter(float_model), _interpreter(quantized_model)
    tensors = _op_outputs(reference)
    reference_index = {d["name"]: d["index"] for d in reference.get_tensor_details()}
    quantized_details = {d["name"]: d for d in quantized.get_tensor_details()}
    reference_inputs, quantized_inputs = _signature_inputs(reference), _signature_inputs(quantized)
    for sample in samples:
        _feed(reference, reference_inputs, sample)
        _feed(quantized, quantized_inputs, sample)
        reference.invoke()
        quantized.invoke()
        for name, tensor in tensors.items():
            detail = quantized_details.get(name)
            if detail is None:
                continue
            want = reference.get_tensor(reference_index[name]).astype(np.float64)
            got = _dequantized(quantized.get_tensor(detail["index"]), detail)
            if want.shape != got.shape:
                tensor.shapes_differ = True
                continue
            error = got - want
            tensor.squared_error += float(np.sum(error * error))
            tensor.squared_reference += float(np.sum(want * want))
            tensor.count += want.size
            tensor.scale = float(detail["quantization"][0]) or None
    return tensors


def rank(tensors: dict[str, _Tensor], top: int) -> list[LayerError]:
    """The `top` op outputs by error added, each with its share of all the error added."""
    added: dict[str, float] = {}
    for name, tensor in tensors.items():
        own = tensor.rel_rmse()
        if own is None or not math.isfinite(own):
            continue
        brought = [tensors[i].rel_rmse() for i in tensor.inputs if i in tensors]
        worst_input = max((b for b in brought if b is not None and math.isfinite(b)), default=0.0)
        added[name] = max(own - worst_input, 0.0)
    total = sum(added.values())
    ordered = sorted(added, key=lambda name: (-added[name], name))[:top]
    return [
        LayerError(
            tensor=name,
            op=tensors[name].op,
            rel_rmse=tensors[name].rel_rmse(),
            added=added[name],
            share=added[name] / total if total else 0.0,
            rmse_over_scale=tensors[name].rmse_over_scale(),
            inputs=[i for i in tensors[name].inputs if i in tensors],
        )
        for name in ordered
        if total == 0.0 or added[name] > 0.0
    ]


def keep_float_sets(layers: list[LayerError], sizes: Iterable[int]) -> list[list[str]]:
    """For each size k: the top k layers and the op outputs feeding them, kept in float.

    An op kept alone in float still reads its inputs through int8; keeping their
    producers too keeps the stretched tensor itself out of 8 bits.
    """
    found: list[list[str]] = []
    for size in sizes:
        nodes: list[str] = []
        for layer in layers[:size]:
            nodes += [n for n in (*layer.inputs, layer.tensor) if n not in nodes]
        if nodes and nodes not in found:
            found.append(nodes)
    return found

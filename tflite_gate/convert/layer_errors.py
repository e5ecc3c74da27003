"""Where a quantized model's error comes from: each op output against its float twin.

The float twin is the calibrated model the quantizer started from, so every op output
of the quantized model has a tensor of the same name there. Both run on the
evaluation inputs with every intermediate tensor kept (and no delegate, which would
hide them); each quantized tensor is dequantized and compared with the float one.

The error reaching a tensor is what its op made plus what its inputs brought, and an
op such as SOFTMAX can shrink or blow up what it is brought. For int8 the quantizer's
numeric-verify model (the one `tf.lite.experimental.QuantizationDebugger` runs) says
which is which: next to each quantized op it runs the float op on the same dequantized
inputs, so the difference is the op's own error, its output's requantization included.
Going back from the model outputs, each op keeps its part of the error that reaches
it and hands the rest to its inputs: the ranking is in the outputs' terms, so the op
that made the error comes first, not one that only carried it on. Variants without
that model (dynamic range, int16x8) estimate an op's part from its inputs' relative
errors. Keeping float an op and the ops that feed it is then a keep_float candidate,
as is the output activation, which the gate verifies before it suggests it.

Runs inside the conversion worker (TensorFlow's side, isolated from the gate), with
the interpreter installed next to the gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tflite_gate.run.protocol import KeepFloat, LayerError
from tflite_gate.tflite.facts import PASS_THROUGH_OPS, SERVING_KEY

FIXED_RANGE_ACTIVATIONS = frozenset({"SOFTMAX", "LOG_SOFTMAX", "LOGISTIC", "TANH"})
"""Ops whose int8 output range is fixed by the kernel, not calibrated (SOFTMAX: [0, 1] in
steps of 1/256): at a model output that rounding goes straight into the result."""


@dataclass
class _Made:
    """Running sums from the numeric-verify model: the op's own error (its quantized
    output against its float op on the same inputs) and the error reaching its output."""

    squared: float = 0.0
    along: float = 0.0
    reached: float = 0.0

    def fraction(self) -> float:
        """The part of the error reaching the output that the op made (0 to 1).

        The error reaching it is exactly its own plus what its inputs brought; the
        projection of its own on the whole splits the whole into those two parts.
        """
        if self.reached == 0.0:
            return 0.0
        return min(max(self.along / self.reached, 0.0), 1.0)


@dataclass
class _Tensor:
    """Running sums for one op output over the samples."""

    op: str
    inputs: list[str]
    output: bool = False
    squared_error: float = 0.0
    squared_reference: float = 0.0
    count: int = 0
    scale: float | None = None
    shapes_differ: bool = False
    made: _Made | None = None

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
        key = SERVING_KEY if SERVING_KEY in signatures else next(iter(signatures))
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
    outputs = {d["index"] for d in interpreter.get_output_details()}
    found: dict[str, _Tensor] = {}
    for op in interpreter._get_ops_details():
        inputs = [names[i] for i in op["inputs"] if i >= 0 and i in names]
        for index in op["outputs"]:
            if index in names:
                found[names[index]] = _Tensor(
                    op=op["op_name"], inputs=inputs, output=index in outputs
                )
    return found


class _Verification:
    """The numeric-verify model: each quantized op beside its float op on the same inputs."""

    def __init__(self, model: bytes, tensors: dict[str, _Tensor]) -> None:
        self.interpreter = _interpreter(model)
        self.inputs = _signature_inputs(self.interpreter)
        self.details = {d["index"]: d for d in self.interpreter.get_tensor_details()}
        self.pairs = self._pairs(tensors)

    def _pairs(self, tensors: dict[str, _Tensor]) -> list[tuple[str, int, int]]:
        """(twin tensor name, quantized op output, float op output) per verified op.

        The float op's output keeps the twin's name, except at a model output, where the
        DEQUANTIZE after the quantized op carries it; the op type must match too.
        """
        ops = self.interpreter._get_ops_details()
        made_by = {index: op["op_name"] for op in ops for index in op["outputs"]}
        dequantized = {
            op["inputs"][0]: op["outputs"][0] for op in ops if op["op_name"] == "DEQUANTIZE"
        }
        pairs = []
        for op in ops:
            if op["op_name"] != "NumericVerify":
                continue
            quantized, float_op = op["inputs"][0], op["inputs"][1]
            for index in (float_op, dequantized.get(quantized)):
                name = self.details[index]["name"] if index is not None else None
                if name in tensors and tensors[name].op == made_by.get(quantized):
                    pairs.append((name, quantized, float_op))
                    break
        return pairs

    def add(
        self,
        sample: Mapping[str, np.ndarray[Any, Any]],
        tensors: dict[str, _Tensor],
        reference: Callable[[str], np.ndarray[Any, Any]],
    ) -> None:
        """Run one sample and add each verified op's own error to its tensor's sums."""
        _feed(self.interpreter, self.inputs, sample)
        self.interpreter.invoke()
        for name, quantized, float_op in self.pairs:
            got = _dequantized(self.interpreter.get_tensor(quantized), self.details[quantized])
            alone = self.interpreter.get_tensor(float_op).astype(np.float64)
            want = reference(name)
            if not got.shape == alone.shape == want.shape:
                continue
            own, reached = got - alone, got - want
            made = tensors[name].made = tensors[name].made or _Made()
            made.squared += float(np.sum(own * own))
            made.along += float(np.sum(own * reached))
            made.reached += float(np.sum(reached * reached))


def measure(
    float_model: bytes,
    quantized_model: bytes,
    samples: Iterable[Mapping[str, np.ndarray[Any, Any]]],
    verify_model: bytes | None = None,
) -> dict[str, _Tensor]:
    """Per op output of the float model: how far the quantized model's tensor is off and,
    given the numeric-verify model of the same quantization, how much of that its op made."""
    reference, quantized = _interpreter(float_model), _interpreter(quantized_model)
    tensors = _op_outputs(reference)
    verification = _Verification(verify_model, tensors) if verify_model else None
    reference_index = {d["name"]: d["index"] for d in reference.get_tensor_details()}
    quantized_details = {d["name"]: d for d in quantized.get_tensor_details()}
    reference_inputs, quantized_inputs = _signature_inputs(reference), _signature_inputs(quantized)
    for sample in samples:
        _feed(reference, reference_inputs, sample)
        _feed(quantized, quantized_inputs, sample)
        reference.invoke()
        quantized.invoke()
        if verification is not None:
            verification.add(
                sample,
                tensors,
                lambda name: reference.get_tensor(reference_index[name]).astype(np.float64),
            )
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
    """The `top` op outputs by their part of the model outputs' error.

    `added` is the relative error the op made itself (int8: measured; otherwise its
    rel_rmse minus its inputs' worst), `share` its part of the error at the outputs.
    """
    made = _made_at_outputs(tensors)
    total = sum(made.values())
    ordered = sorted(made, key=lambda name: (-made[name], name))[:top]
    return [
        LayerError(
            tensor=name,
            op=tensors[name].op,
            rel_rmse=tensors[name].rel_rmse(),
            added=_added(tensors, name),
            share=made[name] / total if total else 0.0,
            rmse_over_scale=tensors[name].rmse_over_scale(),
            readers=_readers(tensors, name),
        )
        for name in ordered
        if total == 0.0 or made[name] > 0.0
    ]


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _worst_input(tensors: dict[str, _Tensor], name: str) -> float:
    brought = [_finite(tensors[i].rel_rmse()) for i in tensors[name].inputs if i in tensors]
    return max((b for b in brought if b is not None), default=0.0)


def _added(tensors: dict[str, _Tensor], name: str) -> float:
    """The relative error the op made in its own output."""
    tensor = tensors[name]
    if tensor.made is not None and tensor.squared_reference > 0.0:
        return math.sqrt(tensor.made.squared / tensor.squared_reference)
    return max((tensor.rel_rmse() or 0.0) - _worst_input(tensors, name), 0.0)


def _fraction_made(tensors: dict[str, _Tensor], name: str) -> float:
    """Of the error reaching this op output, the part its op made (0 to 1)."""
    tensor = tensors[name]
    if tensor.made is not None:
        return tensor.made.fraction()
    own = _finite(tensor.rel_rmse()) or 0.0
    return (own - min(_worst_input(tensors, name), own)) / own if own else 0.0


def _made_at_outputs(tensors: dict[str, _Tensor]) -> dict[str, float]:
    """Each measured op output's part of the error at the model outputs.

    Going from the outputs back to the inputs (the reverse of op order), each op keeps
    the part of what reaches it that it made and hands the rest to its inputs, in
    proportion to the squared error each brought. What reaches the model inputs (their
    own quantization) stays unassigned.
    """
    reaching = {
        name: error
        for name, tensor in tensors.items()
        if tensor.output and (error := _finite(tensor.rel_rmse())) is not None
    }
    made = {name: 0.0 for name, tensor in tensors.items() if _finite(tensor.rel_rmse()) is not None}
    for name in reversed(list(tensors)):
        error = reaching.get(name, 0.0)
        if error == 0.0:
            continue
        fraction = _fraction_made(tensors, name) if name in made else 0.0
        if name in made:
            made[name] += error * fraction
        _hand_upstream(tensors, name, error * (1.0 - fraction), reaching)
    return made


def _hand_upstream(
    tensors: dict[str, _Tensor], name: str, error: float, reaching: dict[str, float]
) -> None:
    """Split the error an op's inputs brought among them, by the squared error of each."""
    brought = {i: tensors[i].squared_error for i in tensors[name].inputs if i in tensors}
    total = sum(value for value in brought.values() if math.isfinite(value))
    if total <= 0.0:
        return
    for source, squared in brought.items():
        if math.isfinite(squared) and squared > 0.0:
            reaching[source] = reaching.get(source, 0.0) + error * squared / total


def output_activation(tensors: dict[str, _Tensor]) -> KeepFloat | None:
    """The model outputs' fixed-range activations (SOFTMAX, ...) kept in float, if any.

    By op type when every op of that type computes an output (what a user writes, and
    the same model), else by output tensor name.
    """
    found = [
        producer
        for name, tensor in tensors.items()
        if tensor.output
        and (producer := _producer(tensors, name)) is not None
        and tensors[producer].op in FIXED_RANGE_ACTIVATIONS
    ]
    if not found:
        return None
    kinds = sorted({tensors[name].op for name in found})
    everywhere = all(name in found for name, tensor in tensors.items() if tensor.op in kinds)
    return KeepFloat(ops=kinds) if everywhere else KeepFloat(nodes=list(dict.fromkeys(found)))


def _producer(tensors: dict[str, _Tensor], name: str) -> str | None:
    """The op output a tensor carries, looking through reshapes and (de)quantizations."""
    seen: set[str] = set()
    while name in tensors and name not in seen:
        seen.add(name)
        tensor = tensors[name]
        if tensor.op not in PASS_THROUGH_OPS or not tensor.inputs:
            return name
        name = tensor.inputs[0]
    return None


def _readers(tensors: dict[str, _Tensor], name: str) -> list[str]:
    """The op outputs computed from this one, and through a reshape the ops reading that."""
    found: list[str] = []
    pending = [name]
    while pending:
        source = pending.pop(0)
        for reader, tensor in tensors.items():
            if source in tensor.inputs and reader not in found:
                found.append(reader)
                if tensor.op in PASS_THROUGH_OPS:
                    pending.append(reader)
    return found


def keep_float_sets(layers: list[LayerError], sizes: Iterable[int]) -> list[list[str]]:
    """For each size k: the top k layers and the ops reading their outputs, kept in float.

    An op kept alone in float still has its output quantized for the int8 ops reading
    it, with the same range: what made the error when that range is too wide for 8 bits.
    Keeping the readers too keeps the tensor itself out of 8 bits.
    """
    found: list[list[str]] = []
    for size in sizes:
        nodes: list[str] = []
        for layer in layers[:size]:
            nodes += [n for n in (layer.tensor, *layer.readers) if n not in nodes]
        if nodes and nodes not in found:
            found.append(nodes)
    return found


def keep_float_candidates(
    tensors: dict[str, _Tensor], layers: list[LayerError], sizes: Iterable[int], kept: KeepFloat
) -> list[KeepFloat]:
    """The keep_float sets to verify, in order, each with what the variant keeps already.

    The output activation comes first, wherever the ranking puts it: when its own
    rounding is what breaks the threshold it is the usual fix, and the cheapest at run
    time. Then the top layers (`keep_float_sets`). A set that adds nothing, or that
    came before, is left out.
    """
    activation = output_activation(tensors)
    found = [activation] if activation is not None else []
    found += [KeepFloat(nodes=nodes) for nodes in keep_float_sets(layers, sizes)]
    candidates: list[KeepFloat] = []
    for more in found:
        keep = KeepFloat(
            nodes=list(dict.fromkeys([*kept.nodes, *more.nodes])),
            ops=list(dict.fromkeys([*kept.ops, *more.ops])),
        )
        if keep != kept and keep not in candidates:
            candidates.append(keep)
    return candidates

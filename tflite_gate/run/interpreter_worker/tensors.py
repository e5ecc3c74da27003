"""Feeds in, outputs out: names to tensor indices, quantization, and the .npz files.

Quantized inputs take real values (the gate's data is float) and quantized outputs
come back as real values, so every comparison is in real units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .failures import PhaseError

QUANTIZED_KINDS = ("int8", "uint8", "int16")
SIGNATURE_KEY = "serving_default"


def io_maps(interpreter: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Input and output name → tensor index, by signature names when the model has any."""
    get_signatures = getattr(interpreter, "_get_full_signature_list", None)
    signatures = get_signatures() if get_signatures is not None else {}
    if signatures:
        key = SIGNATURE_KEY if SIGNATURE_KEY in signatures else next(iter(signatures))
        chosen = signatures[key]
        return dict(chosen["inputs"]), dict(chosen["outputs"])
    inputs = {d["name"]: int(d["index"]) for d in interpreter.get_input_details()}
    outputs = {d["name"]: int(d["index"]) for d in interpreter.get_output_details()}
    return inputs, outputs


def input_details(interpreter: Any) -> dict[int, dict[str, Any]]:
    """The interpreter's input details by tensor index (they change with each resize)."""
    return {int(d["index"]): d for d in interpreter.get_input_details()}


def _quantization(detail: dict[str, Any]) -> tuple[Any, Any] | None:
    """(scale, zero_point) broadcastable to the tensor, or None if not quantized I/O."""
    if np.dtype(detail["dtype"]).name not in QUANTIZED_KINDS:
        return None
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), dtype=np.float32)
    zeros = np.asarray(params.get("zero_points", []), dtype=np.float32)
    if scales.size == 0:
        scale, zero = detail.get("quantization", (0.0, 0))
        scales, zeros = np.asarray([scale], np.float32), np.asarray([zero], np.float32)
    if not np.any(scales):
        return None
    if scales.size == 1:
        return scales[0], (zeros[0] if zeros.size else np.float32(0))
    shape = [1] * len(detail["shape"])
    shape[int(params.get("quantized_dimension", 0))] = -1
    return scales.reshape(shape), zeros.reshape(shape)


def prepare_feed(value: Any, detail: dict[str, Any]) -> Any:
    """The array set_tensor gets: float feeds to quantized inputs are quantized, else cast."""
    dtype = np.dtype(detail["dtype"])
    value = np.asarray(value)
    if value.dtype == dtype:
        return value
    quant = _quantization(detail)
    if quant is not None and value.dtype.kind == "f":
        info = np.iinfo(dtype)
        scaled = np.round(value.astype(np.float32) / quant[0] + quant[1])
        return np.clip(scaled, info.min, info.max).astype(dtype)
    return value.astype(dtype)


def read_output(value: Any, detail: dict[str, Any]) -> Any:
    """Quantized outputs come back as real float32 values so comparisons are in real units."""
    quant = _quantization(detail)
    if quant is None:
        return np.array(value)
    return ((np.asarray(value, np.float32) - quant[1]) * quant[0]).astype(np.float32)


def read_outputs(interpreter: Any, outputs: dict[str, int]) -> dict[str, Any]:
    """Every output of the last invoke, by name, in real units."""
    details = {int(d["index"]): d for d in interpreter.get_output_details()}
    read = {}
    for name, index in outputs.items():
        value = interpreter.get_tensor(index)
        read[name] = read_output(value, details.get(index, {"dtype": value.dtype}))
    return read


def load_feeds(path: str, names: dict[str, int]) -> tuple[dict[str, Any], int]:
    """The samples for each model input, and how many there are (the same for every input)."""
    with np.load(path) as archive:
        feeds = {key: archive[key] for key in archive.files}
    missing = [name for name in names if name not in feeds]
    if missing:
        raise PhaseError(
            "load",
            None,
            f"no data for model input(s) {missing}; model inputs: {list(names)}, "
            f"data has: {list(feeds)}",
        )
    counts = {name: int(feeds[name].shape[0]) for name in names}
    if len(set(counts.values())) > 1:
        raise PhaseError("load", None, f"inputs have different sample counts: {counts}")
    return {name: feeds[name] for name in names}, next(iter(counts.values()), 0)


def stack(results: dict[str, list[Any]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One [N, *shape] array per output; outputs whose shape varies by sample get one key each."""
    arrays: dict[str, Any] = {}
    ragged: dict[str, list[str]] = {}
    for position, (name, values) in enumerate(results.items()):
        if len({v.shape for v in values}) <= 1:
            arrays[name] = np.stack(values) if values else np.zeros((0,), np.float32)
            continue
        ragged[name] = [f"__ragged_{position}_{i}" for i in range(len(values))]
        arrays.update({key: value for key, value in zip(ragged[name], values)})  # noqa: B905
    return arrays, ragged

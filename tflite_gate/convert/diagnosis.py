"""Inside the conversion worker: where a quantized variant loses its accuracy.

The variant as checked is compared op by op with its float twin on the evaluation
samples (`layer_errors`), and for int8 the worst layers are tried in float: each
candidate `keep_float` is quantized again and written for the gate to run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tflite_gate.convert.log import output_to
from tflite_gate.convert.variants import (
    calibrated_model,
    make_converter,
    quantized_model,
    request_samples,
)
from tflite_gate.model.loader import PreparedModel
from tflite_gate.run.protocol import (
    Candidate,
    ConversionRequest,
    DiagnosisResult,
    KeepFloat,
    VariantRequest,
)

Requantize = Callable[[KeepFloat, bool], bytes]
"""(ops left in float, numeric_verify) → the calibrated twin quantized again."""


def _float_twin(
    request: ConversionRequest, prepared: PreparedModel, variant: VariantRequest, log: Path
) -> tuple[bytes, Requantize | None]:
    """The float model to compare the variant with, and how to quantize it again.

    For int8 the twin is the calibrated model the quantizer starts from (every op
    output has a namesake, and keep_float candidates come from the same calibration).
    Dynamic-range and int16x8 variants are compared with a float conversion of the
    same model; the converter cannot leave their ops float, so there is no requantize.
    """
    saved, key, select = prepared.saved_model_dir, prepared.signature_key, request.select_tf_ops
    with output_to(log):
        if variant.quantization == "int8":
            calibration = request_samples(request, prepared.inputs, "calibration")
            converter = make_converter(request, saved, key, variant, calibration, select)
            calibrated = calibrated_model(converter)

            def requantize(keep: KeepFloat, numeric_verify: bool) -> bytes:
                return quantized_model(
                    calibrated, converter, variant, keep, numeric_verify=numeric_verify
                )

            return calibrated, requantize
        as_float = VariantRequest(name=variant.name, quantization="none")
        twin: bytes = make_converter(request, saved, key, as_float, None, select).convert()
        return twin, None


def diagnose(request: ConversionRequest, prepared: PreparedModel, scratch: Path) -> DiagnosisResult:
    """Per-layer error of a quantized variant, and keep_float candidates to verify (int8)."""
    from tflite_gate.convert.layer_errors import keep_float_candidates, measure, rank

    assert request.diagnose is not None
    started = time.monotonic()
    order = request.diagnose
    log = scratch / "diagnosis.log"
    twin, requantize = _float_twin(request, prepared, order.variant, log)
    quantized = Path(order.model).read_bytes()  # the variant as checked, not a new conversion
    kept = order.variant.keep_float or KeepFloat()
    with output_to(log):
        verify = requantize(kept, True) if requantize is not None else None
    tensors = measure(twin, quantized, _stored_samples(Path(order.inputs)), verify)
    layers = rank(tensors, order.top)
    candidates: list[Candidate] = []
    for keep in keep_float_candidates(tensors, layers, order.candidates, kept):
        if requantize is None:
            break
        target = scratch / f"candidate-{len(candidates)}.tflite"
        with output_to(log):
            target.write_bytes(requantize(keep, False))
        candidates.append(Candidate(nodes=keep.nodes, ops=keep.ops, tflite_path=target.name))
    return DiagnosisResult(
        ok=True, layers=layers, candidates=candidates, duration_s=time.monotonic() - started
    )


def _stored_samples(path: Path) -> list[dict[str, Any]]:
    """One feed dict per sample of a sample-major .npz."""
    import numpy as np

    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}  # each access reads the file
    count = len(next(iter(arrays.values()))) if arrays else 0
    return [{name: array[i : i + 1] for name, array in arrays.items()} for i in range(count)]

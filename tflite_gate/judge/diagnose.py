"""Why a quantized variant broke a threshold, and a keep_float fix that was verified.

After a quantized variant's run breaks a divergence threshold, the conversion worker
converts it once more and measures every op output against a float twin
(`layer_errors`): for int8 the calibrated float model, which it then quantizes again
with the output activation (SOFTMAX, ...) left in float, then the top layers (and the
ops reading them); for dynamic-range and int16x8 variants a float conversion (the
converter cannot leave their ops float, so the layers are the whole answer). Each
candidate then runs where the variant broke, is compared with the same thresholds, and
the first that passes is the fix the report offers, with its metrics before and after.
A fix that was not verified is never suggested.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tflite_gate.convert.parent import run_diagnosis
from tflite_gate.report.model import (
    KeepFloatTrial,
    LayerDiagnosis,
    LayerStat,
    RuntimeRun,
    VariantReport,
)
from tflite_gate.run.protocol import ConversionRequest, DiagnosisRequest, VariantRequest
from tflite_gate.run.workers import WorkerPool

TryModel = Callable[[Path, int], RuntimeRun]
"""(candidate .tflite, its position) → the judged run on the runtime that broke."""


DIAGNOSED = frozenset({"int8", "int16x8", "dynamic"})


def needs_diagnosis(variant: VariantReport) -> RuntimeRun | None:
    """The first run of a quantized variant that broke a threshold (finitely or not)."""
    if variant.quantization not in DIAGNOSED:
        return None
    return next((run for run in variant.runs if run.status == "diverged"), None)


def diagnose(
    request: ConversionRequest,
    variant: VariantRequest,
    broken: RuntimeRun,
    model: Path,
    inputs: Path,
    scratch: Path,
    try_model: TryModel,
    *,
    timeout_s: float,
    memory_mb: int | None,
    pool: WorkerPool | None,
) -> LayerDiagnosis:
    """Measure the layers, then try the candidates in order until one passes."""
    order = request.model_copy(
        update={
            "scratch": str(scratch),
            "variants": [],
            "reference": False,
            "skip": [],
            "diagnose": DiagnosisRequest(
                variant=variant, model=str(model.resolve()), inputs=str(inputs)
            ),
        }
    )
    result = run_diagnosis(order, timeout_s=timeout_s, memory_mb=memory_mb, pool=pool)
    diagnosis = LayerDiagnosis(
        runtime=broken.runtime,
        before=broken.metrics,
        layers=[LayerStat(**layer.model_dump(exclude={"readers"})) for layer in result.layers],
        error=result.error,
    )
    for position, candidate in enumerate(result.candidates):
        run = try_model(scratch / candidate.tflite_path, position)
        diagnosis.trials.append(
            KeepFloatTrial(
                nodes=candidate.nodes,
                ops=candidate.ops,
                runtime=run.runtime,
                status=run.status,
                message=run.message,
                metrics=run.metrics,
                violations=run.violations,
            )
        )
        if run.status == "passed":
            diagnosis.keep_float, diagnosis.keep_float_ops = candidate.nodes, candidate.ops
            break
    return diagnosis

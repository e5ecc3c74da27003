"""The layers of a quantized variant that broke a threshold, and keep_float fixes tried."""

from __future__ import annotations

from pathlib import Path

from tflite_gate.judge.diagnose import diagnose, needs_diagnosis
from tflite_gate.pipeline.context import Arrays, RunContext
from tflite_gate.pipeline.execution import judge, run_on, runtime_run
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import (
    RuntimeRun,
    VariantReport,
)
from tflite_gate.report.text import diagnosis_line
from tflite_gate.run.arrays import save_npz
from tflite_gate.run.protocol import (
    ConversionRequest,
)
from tflite_gate.run.runner import RuntimeUnavailable
from tflite_gate.support.run_options import (
    ResultLine,
)


def diagnose_variant(
    config: ModelConfig,
    position: int,
    variant: VariantReport,
    model: Path,
    request: ConversionRequest,
    inputs: Arrays,
    reference: Arrays,
    context: RunContext,
) -> None:
    """A quantized variant that broke a threshold: the layers behind it (and, for int8, a
    verified keep_float fix)."""
    broken = needs_diagnosis(variant)
    if broken is None:
        return
    runtimes = context.requests_for(config).runtimes
    spec = next(spec for spec in runtimes if spec.name == broken.runtime)
    runtime = context.runtimes.get(spec)
    if runtime is None or isinstance(runtime, RuntimeUnavailable):  # it ran: prepared
        return
    scratch = context.places(config).diagnosis(position)
    scratch.mkdir(parents=True, exist_ok=True)
    save_npz(scratch / "inputs.npz", inputs)

    def try_model(candidate: Path, trial: int) -> RuntimeRun:
        places = (scratch / f"run-{trial}", scratch / f"reproducer-{trial}")
        result = run_on(config, runtime, candidate, inputs, context, places)
        run = runtime_run(config, spec, runtime, result, variant, context)
        if result.ok:
            judge(run, result.outputs, reference, variant, config)
        return run

    context.progress(f"[{config.name}/{variant.name}] finding the layers behind the divergence")
    variant_request = next(v for v in request.variants if v.name == variant.name)
    variant.diagnosis = diagnose(
        request,
        variant_request,
        broken,
        model,
        scratch / "inputs.npz",
        scratch,
        try_model,
        timeout_s=config.timeout_s.value,
        memory_mb=config.memory_mb.value,
        pool=context.pool,
    )
    context.progress(
        ResultLine(f"[{config.name}/{variant.name}] {diagnosis_line(variant.diagnosis)}")
    )

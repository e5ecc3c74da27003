"""A model converted into its variants (or restored from the cache), each inspected, run
and, when it breaks a threshold, diagnosed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from tflite_gate.convert.cache import conversion_key
from tflite_gate.convert.parent import (
    ConversionResult,
    convert_model,
    finished_results,
)
from tflite_gate.findings import RuleId
from tflite_gate.judge import checks
from tflite_gate.pipeline.context import (
    Arrays,
    RunContext,
    done_converting,
    environment_finding,
    unless_reported,
)
from tflite_gate.pipeline.diagnosis import diagnose_variant
from tflite_gate.pipeline.execution import execute_variant
from tflite_gate.pipeline.requests import conversion_request
from tflite_gate.policy.plan import ModelPlan
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import (
    CacheUse,
    ModelReport,
    Report,
    SourceKind,
    TensorInfo,
    VariantReport,
)
from tflite_gate.report.text import cache_note
from tflite_gate.rules import make_finding
from tflite_gate.run.protocol import (
    ConversionRequest,
    EvaluationResult,
)
from tflite_gate.support.files import copy_file_atomic, disk_problem
from tflite_gate.support.run_options import (
    ResultLine,
)
from tflite_gate.tflite.facts import InvalidModelError, inspect_model


def run_conversion(
    plan: ModelPlan,
    source: tuple[SourceKind, Path | None],
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> None:
    """The model's `source` (kind, path) converted into its variants, each inspected, run
    on every runtime and judged; a quantized one that breaks a threshold is diagnosed."""
    config = plan.config
    scratch = context.places(config).conversion
    requests = context.requests_for(config)
    request = conversion_request(plan, requests, source, context.workspace, scratch)
    work = f"{len(plan.variants)} variant(s)"
    result = convert(config, request, work, model_report, context)
    reused = model_report.cache is not None and model_report.cache.status == "reused"
    model_report.timings["load+convert"] = round(result.duration_s, 3)
    load = result.load
    full = disk_problem(context.scratch) if not load.ok and load.crash_cause else None
    if full is not None:  # the worker died writing its own files, log included
        error = OSError(full, os.strerror(full), request.scratch)
        report.add([environment_finding(error, config, context)])
        return
    if load.written_by:
        model_report.written_by = load.written_by
    report.add(checks.check_load(config, load, model_report))
    if not load.ok:
        return
    model_report.loaded = True
    model_report.inputs = [
        TensorInfo(name=spec.name, shape=spec.dims(), dtype=spec.dtype) for spec in load.inputs
    ]
    evaluation = result.evaluation
    report.add(checks.check_evaluation(config, evaluation))
    inputs, reference = load_evaluation(evaluation)
    if evaluation is not None and evaluation.ok and not reused:
        model_report.timings["reference"] = round(evaluation.duration_s, 3)
    for position, spec in enumerate(planned.spec for planned in plan.variants):
        outcome = result.variants[spec.name]
        variant = VariantReport(
            name=spec.name,
            quantization=spec.quantization,
            io=spec.io,
            status="converted" if outcome.ok else "conversion-failed",
        )
        if not reused:  # a reused conversion's time is the cache's `original_s`
            variant.timings["convert"] = round(outcome.duration_s, 3)
        variant.converter.errors = outcome.errors
        variant.converter.log_lines = outcome.log_lines
        model_report.variants.append(variant)
        conversion = checks.check_conversion(config, variant, outcome, model_report.inputs)
        report.add(unless_reported(conversion, evaluation))
        report.add(checks.check_converter_warnings(config, variant, outcome))
        context.progress(ResultLine(f"[{config.name}/{spec.name}] {variant.status}"))
        if not (outcome.ok and outcome.tflite_path):
            continue
        saved = _inspect_variant(config, variant, Path(outcome.tflite_path), report, context)
        if saved is not None and inputs is not None:
            execute_variant(config, position, variant, saved, inputs, reference, report, context)
        if saved is not None and inputs is not None and reference is not None:
            diagnose_variant(config, position, variant, saved, request, inputs, reference, context)


def convert(
    config: ModelConfig,
    request: ConversionRequest,
    work: str,
    model_report: ModelReport,
    context: RunContext,
) -> ConversionResult:
    """The conversion worker's results, reused from the cache when nothing changed.

    `work` names what the worker computes, for the progress line.
    """
    try:
        return _reused_or_converted(config, request, work, model_report, context)
    finally:
        done_converting(config, context)


def _reused_or_converted(
    config: ModelConfig,
    request: ConversionRequest,
    work: str,
    model_report: ModelReport,
    context: RunContext,
) -> ConversionResult:
    cache = context.conversions
    if cache is None:
        model_report.cache = CacheUse(status="disabled")
    else:
        started = time.monotonic()
        key = conversion_key(request, excluded=(context.cache_dir, context.artifacts))
        Path(request.scratch).mkdir(parents=True, exist_ok=True)
        hit = cache.restore(key, request)
        if hit is not None:
            model_report.cache = CacheUse(
                status="reused",
                key=key[:16],
                converted_at=hit.created_at,
                original_s=hit.duration_s,
            )
            note = cache_note(model_report.cache)
            again = f"{context.names.no_cache} converts again"
            context.progress(f"[{config.name}] {work}: {note} ({again})")
            return finished_results(request, time.monotonic() - started)
    context.progress(f"[{config.name}] converting {work}")
    result = convert_model(
        request,
        timeout_s=config.timeout_s.value,
        memory_mb=config.memory_mb.value,
        jobs=context.split,
        heartbeat=lambda seconds: context.progress(
            f"[{config.name}] still converting {work} ({seconds:.0f} s)"
        ),
        pool=context.pool,
    )
    context.progress(f"[{config.name}] {work} done in {result.duration_s:.1f} s")
    if cache is not None:
        model_report.cache = cache.keep(key, request, result)
    return result


def load_evaluation(evaluation: EvaluationResult | None) -> tuple[Arrays | None, Arrays | None]:
    """The evaluation inputs and reference outputs the worker saved; None, None if it failed."""
    if evaluation is None or not evaluation.ok:
        return None, None
    assert evaluation.inputs_path and evaluation.reference_path
    with np.load(evaluation.inputs_path, allow_pickle=False) as inputs:
        feeds = {name: inputs[name] for name in inputs.files}
    with np.load(evaluation.reference_path, allow_pickle=False) as outputs:
        reference = {name: outputs[name] for name in outputs.files}
    return feeds, reference


def _inspect_variant(
    config: ModelConfig,
    variant: VariantReport,
    converted: Path,
    report: Report,
    context: RunContext,
) -> Path | None:
    """Save the artifact, inspect it, run the static checks; the model to run if valid.

    An artifact that cannot be saved (a full or read-only disk) is a finding; the
    variant is still inspected and run from the worker's copy, so its results stand.
    """
    target = context.places(config).artifact(variant.name)
    try:
        copy_file_atomic(converted, target)
        variant.artifact = context.relative(target)
    except OSError as error:
        report.add([environment_finding(error, config, context, variant=variant.name)])
        target = converted
    valid = inspect_and_check(
        config,
        variant,
        converted.read_bytes(),
        report,
        "conversion-failed",
        f"{variant.name}: the converter wrote an invalid model",
    )
    return target if valid else None


def inspect_and_check(
    config: ModelConfig,
    variant: VariantReport,
    data: bytes,
    report: Report,
    invalid_rule: RuleId,
    what: str,
) -> bool:
    """Inspect a flatbuffer and run the static checks; an invalid one is `invalid_rule`."""
    started = time.monotonic()
    try:
        variant.inspection = inspect_model(data)
    except InvalidModelError as exc:
        variant.status = "invalid"
        report.add(
            [
                make_finding(
                    invalid_rule,
                    f"{config.name}: {what}: {exc}",
                    model=config.name,
                    variant=variant.name,
                    location=config.source_location,
                )
            ]
        )
        return False
    variant.timings["inspect"] = round(time.monotonic() - started, 3)
    for check in checks.VARIANT_CHECKS:
        report.add(check(config, variant))
    return True

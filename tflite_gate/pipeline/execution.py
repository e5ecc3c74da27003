"""A variant run on each of the model's runtimes, and judged against the reference."""

from __future__ import annotations

import time
from pathlib import Path

from tflite_gate.judge import checks
from tflite_gate.judge.compare import OutputPlan, compare_run
from tflite_gate.judge.thresholds import plan_output
from tflite_gate.pipeline.context import Arrays, RunContext, environment_finding
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.policy.schema import runtime_name
from tflite_gate.report.model import (
    OutputMetrics,
    Report,
    RunStatus,
    RuntimeRun,
    SkippedThreshold,
    VariantReport,
)
from tflite_gate.report.text import format_metric
from tflite_gate.run.needs import refusal
from tflite_gate.run.runner import (
    PreparedRunner,
    RunJob,
    RunOutcome,
    RunResult,
    RuntimeUnavailable,
)
from tflite_gate.run.runners import runner_for
from tflite_gate.run.runtimes import (
    RuntimeSpec,
)
from tflite_gate.support.layout import (
    runtime_directories,
)
from tflite_gate.support.run_options import (
    ResultLine,
)


def runtime_for(
    spec: RuntimeSpec, config: ModelConfig, report: Report, context: RunContext
) -> PreparedRunner | None:
    """Prepare each runtime's runner once per gate run; report an unavailable one once per
    model.

    Models checked in parallel wait for the one preparing a runtime they both need.
    """
    with context.runtime_lock:
        return _prepared_runtime(spec, config, report, context)


def _prepared_runtime(
    spec: RuntimeSpec, config: ModelConfig, report: Report, context: RunContext
) -> PreparedRunner | None:
    if spec not in context.runtimes:
        context.progress(f"[runtime] preparing {spec.name}")
        try:
            context.runtimes[spec] = runner_for(spec).prepare(context.cache_dir)
        except RuntimeUnavailable as error:
            context.runtimes[spec] = error
        except OSError as error:  # the cache directory, not the runtime, is the problem
            context.runtimes[spec] = RuntimeUnavailable(_unusable_cache(error, context))
        _say_how_prepared(context.runtimes[spec], context)
    prepared = context.runtimes[spec]
    if isinstance(prepared, RuntimeUnavailable):
        if (config.name, spec) not in context.unavailable_reported:
            context.unavailable_reported.add((config.name, spec))
            report.add(checks.check_unavailable_runtime(config, spec.name, str(prepared)))
        return None
    return prepared


def _say_how_prepared(prepared: PreparedRunner | RuntimeUnavailable, context: RunContext) -> None:
    if not isinstance(prepared, RuntimeUnavailable) and prepared.reused is not None:
        where = context.relative(prepared.reused)
        context.progress(f"[runtime] {prepared.name}: reusing the cached environment {where}")


def _unusable_cache(error: OSError, context: RunContext) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return (
        f"give {context.names.cache_dir} a writable directory with room: the runtime cache "
        f"{context.relative(context.cache_dir)} is unusable: {error.strerror or error}{where}"
    )


def execute_variant(
    config: ModelConfig,
    position: int,
    variant: VariantReport,
    model: Path,
    inputs: Arrays,
    reference: Arrays | None,
    report: Report,
    context: RunContext,
    *,
    compare_runtimes: bool = False,
) -> None:
    """Run the variant (the `position`-th) on every runtime and compare with the reference.

    `compare_runtimes` (a .tflite source without `reference:`): the first runtime's
    outputs are the reference of the others, so a runtime that computes other numbers
    fails as a bad conversion does. A shard that leaves the first runtime to another
    shard still runs it, for its outputs only, so shards judge as one run does.
    """
    runtimes = context.requests_for(config).runtimes
    by_first = compare_runtimes and reference is None and len(runtimes) > 1
    compared_with: str | None = None
    for runtime_position, spec in enumerate(runtimes):
        ours = not context.only_runtimes or spec.name in context.only_runtimes
        first = by_first and runtime_position == 0
        if not (ours or first):
            continue  # another shard's
        where = report if ours else _aside(report)
        run, result = _run_variant_on(
            config, spec, runtime_position, (position, variant), model, inputs, where, context
        )
        outputs = result.outputs if result is not None and result.ok else None
        if first:
            reference, compared_with = outputs, run.label
        elif outputs is not None and reference is not None:
            judge(run, outputs, reference, variant, config)
            run.compared_with = compared_with
        if not ours:
            continue  # the first runtime, run for the others: its own shard reports it
        variant.runs.append(run)
        if result is None:  # not run at all
            continue
        report.add(checks.check_run(config, variant, run))
        report.add(checks.check_divergence(config, variant, run))
        report.add(checks.check_latency_budget(config, variant, run))
        context.progress(
            ResultLine(f"[{config.name}/{variant.name}] {run.runtime}: {_summary(run)}")
        )


def _aside(report: Report) -> Report:
    """A report whose findings nobody reads: for a run another shard reports."""
    return Report(tool=report.tool, started_at="", environment=report.environment)


def _run_variant_on(
    config: ModelConfig,
    spec: RuntimeSpec,
    runtime_position: int,
    at: tuple[int, VariantReport],
    model: Path,
    inputs: Arrays,
    report: Report,
    context: RunContext,
) -> tuple[RuntimeRun, RunResult | None]:
    """The variant (position, report) executed on one runtime, and how it went (None: not run)."""
    position, variant = at
    prepared = runtime_for(spec, config, report, context)
    if prepared is None:
        return RuntimeRun(runtime=spec.name, status="unavailable"), None
    try:
        result = interpret(
            config,
            prepared,
            model,
            inputs,
            (position, variant.name),
            runtime_position,
            context,
        )
    except OSError as error:  # its scratch files could not be written: not run at all
        report.add([environment_finding(error, config, context, variant.name)])
        message = f"not run: {error.strerror or error}"
        return RuntimeRun(runtime=spec.name, status="error", message=message), None
    if result.reproducer_error is not None:
        report.add([environment_finding(result.reproducer_error, config, context, variant.name)])
    return runtime_run(config, spec, prepared, result, variant, context), result


def interpret(
    config: ModelConfig,
    runner: PreparedRunner,
    model: Path,
    inputs: Arrays,
    variant: tuple[int, str] | None,
    runtime_position: int,
    context: RunContext,
) -> RunResult:
    """Run `model` on `inputs` with `runner`, under the model's limits.

    `variant` (position, name; None for a reference) and the runtime's position in the
    model's `runtimes` say where the run's scratch and reproducer go.
    """
    places = context.places(config)
    directory = runtime_directories([runtime_name(item) for item in config.runtimes.value])
    where = (
        places.run(variant[0] if variant else None, runtime_position),
        places.reproducer(variant[1] if variant else None, directory[runtime_position]),
    )
    latency_runs = (config.latency_runs.value or 0) if variant else 0
    return run_on(config, runner, model, inputs, context, where, latency_runs)


def run_on(
    config: ModelConfig,
    runner: PreparedRunner,
    model: Path,
    inputs: Arrays,
    context: RunContext,
    where: tuple[Path, Path],
    latency_runs: int = 0,
) -> RunResult:
    """`model` on `runner` under the model's limits; `where`: (scratch, reproducer dir).

    A model the runner says it cannot take is not run: the result says why.
    """
    job = RunJob(
        scratch=where[0],
        reproducer=where[1],
        timeout_s=config.interpreter_timeout_s.value,
        memory_mb=config.memory_mb.value,
        num_threads=config.num_threads,
        latency_runs=latency_runs,
        latency_threads=config.latency_threads.value,
        pythonpath=(str(context.workspace.resolve()),),
    )
    refused = refusal(runner, model, job)
    return refused if refused is not None else runner.run(model, inputs, job)


_RUN_STATUS: dict[RunOutcome, RunStatus] = {
    "ok": "ran",
    "error": "error",
    "unsupported-flex": "unverifiable",
    "crash": "crash",
    "timeout": "timeout",
    "import": "unavailable",
    "refused": "unverifiable",
}


def runtime_run(
    config: ModelConfig,
    spec: RuntimeSpec,
    prepared: PreparedRunner,
    result: RunResult,
    variant: VariantReport,
    context: RunContext,
) -> RuntimeRun:
    """How the execution went; a run that executed is `ran` until it is compared."""
    status = (
        custom_op_status(config, result.unresolved_custom_ops)
        if result.status == "unresolved-custom-op"
        else _RUN_STATUS[result.status]
    )
    inspection = variant.inspection
    custom = [op.name for op in inspection.ops if op.kind == "custom"] if inspection else []
    return RuntimeRun(
        runtime=spec.name,
        runtime_version=result.runtime_version or prepared.version,
        status=status,
        phase=result.phase,
        sample=result.sample,
        signal=result.signal,
        message=result.message,
        samples=len(next(iter(result.outputs.values()), [])),
        reproducer=context.relative(result.reproducer) if result.reproducer else None,
        timings={"execute": round(result.duration_s, 3)},
        latency_ms=round(result.latency_ms, 4) if result.latency_ms is not None else None,
        latency_runs=config.latency_runs.value if result.latency_ms is not None else None,
        latency_threads=config.latency_threads.value if result.latency_ms is not None else None,
        custom_op_registerers=list(spec.custom_op_registerers),
        custom_ops_executed=custom if result.ok else [],
        unresolved_custom_ops=result.unresolved_custom_ops,
    )


def judge(
    run: RuntimeRun,
    outputs: Arrays,
    reference: Arrays,
    variant: VariantReport,
    config: ModelConfig,
) -> None:
    """Compare with the reference; the comparison decides the run's status and violations."""
    started = time.monotonic()
    inspection = variant.inspection
    tensors = {t.name: t for t in inspection.outputs} if inspection else {}
    plan = config.thresholds.get(variant.name)
    skipped: list[SkippedThreshold] = []
    plans: dict[str, OutputPlan] = {}

    def plan_for(name: str, converted_name: str) -> OutputPlan:
        output_plan, skip = plan_output(
            plan, name, tensors.get(converted_name), config.classification.value
        )
        skipped.extend([skip] if skip else [])
        plans[name] = output_plan
        return output_plan

    by_order = inspection is not None and not inspection.signatures
    judged = compare_run(reference, outputs, by_order=by_order, plan_for=plan_for)
    skipped += _unmeasurable_top1(judged.metrics, plans, reference)
    run.status = judged.status
    run.metrics = judged.metrics
    run.violations = judged.violations
    run.tightest = judged.tightest
    run.skipped_thresholds = skipped
    if judged.message is not None:
        run.message = judged.message
    run.timings["compare"] = round(time.monotonic() - started, 3)


def _unmeasurable_top1(
    metrics: list[OutputMetrics], plans: dict[str, OutputPlan], reference: Arrays
) -> list[SkippedThreshold]:
    """A min_top1 written for an output whose values have no class axis: a policy error.

    Found only once the outputs are seen, when inspection could not name the output.
    """
    return [
        SkippedThreshold(
            output=m.output,
            threshold_key="min_top1",
            reason="top1 needs one row of class scores per sample, shape (C,) or (1, C); "
            f"{m.output!r} has shape {list(reference[m.output].shape[1:])}",
            explicit=True,
        )
        for m in metrics
        if m.top1 is None and m.compared and "min_top1" in plans[m.output].thresholds
    ]


def custom_op_status(config: ModelConfig, unresolved: list[str]) -> RunStatus:
    """Declared custom ops the runtime has no kernel for: not a failure, just not verifiable.

    The app registers them; the gate cannot run them without their kernels. An op the
    policy does not declare stays an error (the static `custom-op` check names it).
    """
    declared = set(config.custom_ops.value)
    return "unverifiable" if unresolved and set(unresolved) <= declared else "error"


def _summary(run: RuntimeRun) -> str:
    if not run.metrics:
        return run.status + (f" ({run.message.splitlines()[0]})" if run.message else "")
    worst = max(run.metrics, key=lambda m: m.value("max_abs") or 0.0)
    versus = f" vs {run.compared_with}" if run.compared_with else ""
    return (
        f"{run.status}{versus}, {run.samples} samples, worst output {worst.output!r}: "
        + ", ".join(f"{metric} {format_metric(worst, metric)}" for metric in ("max_abs", "cosine"))
    )

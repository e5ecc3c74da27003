"""Run the stages in order; the only module that knows the order.

policy → run plan (every model resolved once) → versions → for each model: source →
conversion worker (variants, evaluation data, reference outputs) → inspection →
interpreter workers per runtime → comparison → checks → Report. Every stage's failure
for one model becomes findings for that model; the others still run."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tflite_gate.convert.cache import ConversionCache
from tflite_gate.convert.parent import (
    conversion_pool,
)
from tflite_gate.findings import Finding
from tflite_gate.judge import checks
from tflite_gate.judge.baseline import compare_with_baseline
from tflite_gate.judge.suggest import add_keep_float_snippets, suggestion_for
from tflite_gate.pipeline.context import (
    RunContext,
    cancelled_finding,
    done_converting,
    environment_finding,
    serialized,
)
from tflite_gate.pipeline.model_run import run_model
from tflite_gate.pipeline.requests import model_requests
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.plan import ModelPlan, RunPlan, plan_run
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.json_report import ReportFileError, read_json_report
from tflite_gate.report.model import (
    ModelReport,
    Report,
    Shard,
)
from tflite_gate.report.model.stamp import new_report
from tflite_gate.run.runtimes import (
    default_cache_dir,
)
from tflite_gate.run.workers import at_most, default_jobs
from tflite_gate.support.cancel import Cancelled, cancelled_by
from tflite_gate.support.layout import (
    new_scratch_directory,
    prepare_artifacts,
    refuse_artifacts_over,
)
from tflite_gate.support.output_paths import output_path_problems
from tflite_gate.support.run_options import (
    CheckOptions,
    FailOn,
    OutputPathError,
    Progress,
    UsageError,
    artifacts_path,
)


def select_models(plan: RunPlan, only: list[str], option: str = "--only") -> list[ModelPlan]:
    """The models to run; `only` names that are not in the policy are an error."""
    names = [model.name for model in plan.models]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise UsageError(
            f"{option} names unknown model(s) {', '.join(unknown)}; the policy has: "
            f"{', '.join(names)}"
        )
    return [model for model in plan.models if not only or model.name in only]


def run_check(
    options: CheckOptions,
    progress: Progress,
    *,
    loaded: LoadedPolicy | None = None,
    started: float | None = None,
) -> Report:
    """The whole gate for one policy; raises PolicyError/UsageError/UnusablePlace before
    any model work.

    `loaded`: the policy, when the caller has already loaded it (at monotonic time
    `started`, so the report's policy time still counts the loading).

    A cancellation leaves as `Cancelled` carrying the partial report: the models that
    finished, the one being checked with what it had, and a `cancelled` finding.
    """
    report = new_report()
    started = time.monotonic() if started is None else started
    try:
        fail_on = _check_models(options, progress, report, started, loaded)
    except Cancelled as cancelled:
        report.add([cancelled_finding(cancelled, report)])
        report.stopped = "cancelled"
        report.duration_s = round(time.monotonic() - started, 3)
        report.timings["total"] = report.duration_s
        report.finalize(options.fail_on or "error")
        cancelled.partial = report
        raise
    report.duration_s = round(time.monotonic() - started, 3)
    report.timings["total"] = report.duration_s
    report.finalize(fail_on)
    return report


def _check_models(
    options: CheckOptions,
    progress: Progress,
    report: Report,
    started: float,
    loaded: LoadedPolicy | None,
) -> FailOn:
    """Policy, then every selected model into `report`; the fail_on that applies."""
    if loaded is None:
        loaded = load_policy(options.policy, options.workspace, policy_option=options.names.policy)
    plan = plan_run(loaded, options.workspace)
    report.policy = plan.display_path
    selected = _usable_selection(options, plan, report)
    baseline = _read_baseline(options)
    report.timings["policy"] = round(time.monotonic() - started, 3)

    versions = _version_findings(selected)  # a default's once, before the models
    report.add([finding for finding in versions if finding.model is None])
    _run_models(selected, versions, report, options, progress)
    if baseline is not None and options.baseline is not None:
        configs = [model.config for model in selected]
        _compare_with_baseline(report, baseline, str(options.baseline), configs)
    report.suggestion = suggestion_for(report, plan.policy)
    add_keep_float_snippets(report, plan.policy)
    return options.fail_on or plan.fail_on


def _usable_selection(options: CheckOptions, plan: RunPlan, report: Report) -> list[ModelPlan]:
    """The models to check, once the usage errors a run can have before model work are
    ruled out; a shard's report says which part of the run it is."""
    _refuse_outputs_over_inputs(options, plan)  # before any other usage error writes one
    models = [model.name for model in plan.models]
    reads = [options.policy, *plan.reads]
    # UnusablePlace: a usage error, before model work
    refuse_artifacts_over(
        reads, artifacts_path(options), models, options.workspace, options.names.artifacts
    )
    selected = select_models(plan, options.only, options.names.only)
    _refuse_unknown_runtimes(selected, options.runtimes, options.names.runtime)
    if options.only or options.runtimes:
        names = [model.name for model in selected]
        report.shard = Shard(models=names, runtimes=options.runtimes or None)
    return selected


def _run_models(
    selected: list[ModelPlan],
    versions: list[Finding],
    report: Report,
    options: CheckOptions,
    progress: Progress,
) -> None:
    """Every selected model, sharing the scratch directory, the caches and the workers."""
    artifacts = artifacts_path(options)
    option = options.names.artifacts
    prepare_artifacts(artifacts, options.workspace, own=options.artifacts is None, option=option)
    scratch_directory = new_scratch_directory()
    cache_dir = options.cache_dir or default_cache_dir()
    jobs = options.jobs or default_jobs()
    report.environment.jobs = jobs
    with scratch_directory as scratch, at_most(jobs):
        pool = conversion_pool(options.workspace, jobs, Path(scratch))
        context = RunContext(
            workspace=options.workspace,
            artifacts=artifacts,
            scratch=Path(scratch),
            cache_dir=cache_dir,
            progress=serialized(progress),
            conversions=(
                ConversionCache.under(cache_dir, options.cache_max_mb) if options.cache else None
            ),
            only_runtimes=frozenset(options.runtimes),
            jobs=jobs,
            pool=pool,
            names=options.names,
            requests={model.name: model_requests(model) for model in selected},
        )
        try:
            _check_in_parallel(selected, versions, report, context)
        finally:
            pool.close()


def _read_baseline(options: CheckOptions) -> Report | None:
    """The earlier report to compare with, read before any model work (a usage error)."""
    if options.baseline is None:
        return None
    try:
        return read_json_report(options.baseline)
    except ReportFileError as error:
        raise UsageError(f"{options.names.baseline}: {error}") from None


def _compare_with_baseline(
    report: Report, baseline: Report, shown_as: str, configs: list[ModelConfig]
) -> None:
    """The changes since `baseline`, and a finding for each one the policy forbids."""
    report.baseline = compare_with_baseline(report, baseline, shown_as)
    by_name = {config.name: config for config in configs}
    for change in report.baseline.variants:
        config = by_name.get(change.model)
        if config is not None:
            report.add(checks.check_regressions(config, change))


def _check_in_parallel(
    plans: list[ModelPlan], versions: list[Finding], report: Report, context: RunContext
) -> None:
    """Up to `jobs` models at once; their findings join the report in policy order.

    Each model's check writes into a report of its own, so what finishes first does
    not change the order of anything. On cancellation the threads stop their workers
    within a poll, and what every model had so far is kept.
    """
    models = [ModelReport(name=plan.name, source=plan.source.written) for plan in plans]
    own: list[Report] = []
    for plan in plans:
        own.append(Report(tool=report.tool, started_at="", environment=report.environment))
        own[-1].add([finding for finding in versions if finding.model == plan.name])
    started: set[str] = set()
    at_once = max(1, min(context.jobs, len(plans)))
    # Cores that no other model takes convert one model's variants in parallel; with a
    # model per core, each converts in one worker (one TensorFlow import, one load).
    context.split = max(1, context.jobs // at_once)
    context.converting = {plan.name for plan in plans}
    pool = ThreadPoolExecutor(max_workers=at_once)
    try:
        futures = [
            pool.submit(_check_one, plan, model_report, collector, context, started)
            for plan, model_report, collector in zip(plans, models, own, strict=True)
        ]
        for future in futures:
            future.result()
    finally:
        try:
            pool.shutdown(wait=True)
        finally:  # a cancelled run keeps the models that started, each with what it had
            for model_report, collector in zip(models, own, strict=True):
                if model_report.name not in started:
                    continue
                report.models.append(model_report)
                report.add(collector.findings)
                if collector.internal_error is not None:
                    report.internal_error = (report.internal_error or "") + collector.internal_error


def _check_one(
    plan: ModelPlan,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
    started_models: set[str],
) -> None:
    """One model's check in its thread, unless the run was cancelled before it started."""
    if cancelled_by() is not None:  # queued when the run was cancelled: never started
        return
    started_models.add(plan.name)
    started = time.monotonic()
    context.progress(f"[{plan.name}] {plan.source.written}")
    try:
        _run_model_contained(plan, model_report, report, context)
    finally:
        done_converting(plan.config, context)
    model_report.timings["total"] = round(time.monotonic() - started, 3)


def _refuse_unknown_runtimes(plans: list[ModelPlan], runtimes: list[str], option: str) -> None:
    """Every model a shard checks must list every runtime the shard runs."""
    for plan in plans:
        listed = [runtime.name for runtime in plan.runtimes]
        unknown = [name for name in runtimes if name not in listed]
        if unknown:
            raise UsageError(
                f"{option} names {', '.join(unknown)}, which model {plan.name} does not "
                f"list; its runtimes: {', '.join(listed)}"
            )


def _run_model_contained(
    plan: ModelPlan, model_report: ModelReport, report: Report, context: RunContext
) -> None:
    """One model's check, whose failure never costs the other models their results.

    An OSError that escaped the stages (a disk filling up, a directory gone
    read-only) is the environment's: an `environment-error` finding. Anything else
    is a bug in the gate: an `internal-error` finding for this model, the traceback
    kept in the report (exit 3), and the next model is still checked.
    """
    try:
        run_model(plan, model_report, report, context)
    except OSError as error:
        report.add([environment_finding(error, plan.config, context)])
    except Exception as error:
        report.add_internal_error(error, model=plan.name)


def _refuse_outputs_over_inputs(options: CheckOptions, plan: RunPlan) -> None:
    """No report may be written over a file the run reads (the policy, a model, data)."""
    problems = output_path_problems(
        options.outputs,
        policy=options.policy,
        artifacts=artifacts_path(options),
        workspace=options.workspace,
        inputs=list(plan.reads),
    )
    if problems:
        raise OutputPathError(problems)


def _version_findings(plans: list[ModelPlan]) -> list[Finding]:
    """Each specifier once per place it is written (a default once, not once per model)."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for plan in plans:
        for name, spec in plan.config.version_specs.items():
            where = str(spec.location)
            if where in seen:
                continue
            seen.add(where)
            owner = plan.name if name in plan.own_versions else None
            findings += checks.check_version_spec(name, spec, owner)
    return findings

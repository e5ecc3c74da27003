"""Run the stages in order; the only module that knows the order.

policy → versions → for each model: source → conversion worker (variants,
evaluation data, reference outputs) → inspection → interpreter workers per
runtime → comparison → checks → Report. Every stage's failure for one model
becomes findings for that model; the others still run.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tflite_gate.convert.cache import ConversionCache, conversion_key
from tflite_gate.convert.converter import (
    ConversionResult,
    conversion_pool,
    convert_model,
    finished_results,
)
from tflite_gate.findings import Finding, group_across_variants, make_finding
from tflite_gate.judge import checks
from tflite_gate.judge.baseline import compare_with_baseline
from tflite_gate.judge.compare import OutputPlan, compare_run
from tflite_gate.judge.diagnose import diagnose, needs_diagnosis
from tflite_gate.judge.suggest import add_keep_float_snippets, suggestion_for
from tflite_gate.judge.thresholds import plan_output
from tflite_gate.model.data import (
    DataError,
    InputSignature,
    representative_samples,
    sample_shape,
    save_npz,
    stack,
)
from tflite_gate.model.data_worker import needs_worker, samples_in_worker
from tflite_gate.model.input_pairing import (
    INPUT_MAP_KEY,
    InputPairs,
    PairingError,
    check_map_keys,
    pair_inputs,
)
from tflite_gate.model.sources import (
    SourceError,
    apply_input_shapes,
    classify,
)
from tflite_gate.model.workspace_code import factory_files
from tflite_gate.policy.load import (
    AS_IS_VARIANT,
    GenerateSource,
    LoadedPolicy,
    ModelConfig,
    ModelSpec,
    RuntimeEntry,
    is_factory,
    load_policy,
    resolve_inside,
    resolve_model,
    runtime_name,
)
from tflite_gate.report.json_report import ReportFileError, read_json_report
from tflite_gate.report.model import (
    CacheUse,
    ModelReport,
    OutputMetrics,
    Report,
    RunStatus,
    RuntimeRun,
    Shard,
    SkippedThreshold,
    SourceKind,
    TensorInfo,
    VariantReport,
)
from tflite_gate.report.outputs import output_path_problems
from tflite_gate.report.text import cache_note, diagnosis_line, format_metric
from tflite_gate.run.interpreter import ExecutionResult, ExecutionStatus, run_interpreter
from tflite_gate.run.protocol import (
    ConversionRequest,
    EvaluationResult,
    KeepFloat,
    LoadResult,
    SourceSpec,
    TensorSpec,
    VariantRequest,
)
from tflite_gate.run.runtimes import (
    DEFAULT_RUNTIME,
    RuntimeEnvironment,
    RuntimeSpec,
    RuntimeUnavailable,
    default_cache_dir,
    looks_like_path,
    prepare_runtime,
)
from tflite_gate.run.workers import WorkerPool, at_most, default_jobs
from tflite_gate.support.cancel import Cancelled, cancelled_by
from tflite_gate.support.environment import new_report
from tflite_gate.support.files import copy_file_atomic, disk_problem
from tflite_gate.support.layout import (
    ModelPlaces,
    new_scratch_directory,
    prepare_artifacts,
    refuse_artifacts_over,
    runtime_directories,
)
from tflite_gate.support.run_options import (
    CheckOptions,
    FailOn,
    OptionNames,
    OutputPathError,
    Progress,
    ResultLine,
    UsageError,
    artifacts_path,
)
from tflite_gate.support.workspace_files import (
    SpecialFileError,
    read_tflite,
    refuse_special_files,
    unreadable_message,
)
from tflite_gate.tflite.facts import InvalidModelError, inspect_model

Arrays = dict[str, np.ndarray]


@dataclass
class RunContext:
    """What every model's run shares: where things go, and runtimes prepared once."""

    workspace: Path
    artifacts: Path
    scratch: Path
    cache_dir: Path
    progress: Progress
    conversions: ConversionCache | None = None  # None: --no-cache
    only_runtimes: frozenset[str] = frozenset()  # empty: every runtime a model lists
    jobs: int = 1  # workers at once, whatever runs them
    split: int = 1  # workers one model's variants are converted in
    pool: WorkerPool | None = None  # conversion workers every model shares
    converting: set[str] = field(default_factory=set)  # models still to convert
    converting_lock: threading.Lock = field(default_factory=threading.Lock)
    runtime_lock: threading.Lock = field(default_factory=threading.Lock)
    names: OptionNames = field(default_factory=OptionNames)
    runtimes: dict[RuntimeSpec, RuntimeEnvironment | RuntimeUnavailable] = field(
        default_factory=dict
    )
    unavailable_reported: set[tuple[str, RuntimeSpec]] = field(default_factory=set)

    def places(self, config: ModelConfig) -> ModelPlaces:
        """Where this model's check writes, in scratch and in artifacts."""
        return ModelPlaces.of(self.scratch, self.artifacts, config.index, config.name)

    def relative(self, path: Path) -> str:
        """`path` relative to the workspace, as reports and annotations name files."""
        try:
            return path.resolve().relative_to(self.workspace.resolve()).as_posix()
        except ValueError:
            return str(path)


def serialized(progress: Progress) -> Progress:
    """`progress` callable from many threads, each line whole (never two interleaved)."""
    lock = threading.Lock()

    def say(message: str) -> None:
        with lock:
            progress(message)

    return say


def select_models(loaded: LoadedPolicy, only: list[str], option: str = "--only") -> list[int]:
    """Indices of the models to run; `only` names that are not in the policy are an error."""
    names = [model.name for model in loaded.policy.models]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise UsageError(
            f"{option} names unknown model(s) {', '.join(unknown)}; the policy has: "
            f"{', '.join(names)}"
        )
    return [i for i, name in enumerate(names) if not only or name in only]


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
        report.add([_cancelled_finding(cancelled, report)])
        report.duration_s = round(time.monotonic() - started, 3)
        report.timings["total"] = report.duration_s
        report.finalize(options.fail_on or "error")
        cancelled.report = report
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
    report.policy = loaded.display_path
    _refuse_outputs_over_inputs(options, loaded)  # before any other usage error writes one
    artifacts = artifacts_path(options)
    option = options.names.artifacts  # UnusablePlace below: a usage error, before model work
    models = [m.name for m in loaded.policy.models]
    reads = _read_files(loaded, options.workspace, options.policy)
    refuse_artifacts_over(reads, artifacts, models, options.workspace, option)
    indices = select_models(loaded, options.only, options.names.only)
    _refuse_unknown_runtimes(loaded, indices, options.runtimes, options.names.runtime)
    if options.only or options.runtimes:
        names = [loaded.policy.models[i].name for i in indices]
        report.shard = Shard(models=names, runtimes=options.runtimes or None)
    baseline = _read_baseline(options)
    report.timings["policy"] = round(time.monotonic() - started, 3)

    versions = _version_findings(loaded, indices)  # a default's once, before the models
    report.add([finding for finding in versions if finding.model is None])
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
        )
        configs = [resolve_model(loaded, index) for index in indices]
        try:
            _check_in_parallel(configs, versions, report, context)
        finally:
            pool.close()
    if baseline is not None and options.baseline is not None:
        _compare_with_baseline(report, baseline, str(options.baseline), configs)
    report.suggestion = suggestion_for(report, loaded)
    add_keep_float_snippets(report, loaded)
    return options.fail_on or loaded.policy.fail_on


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
    configs: list[ModelConfig], versions: list[Finding], report: Report, context: RunContext
) -> None:
    """Up to `jobs` models at once; their findings join the report in policy order.

    Each model's check writes into a report of its own, so what finishes first does
    not change the order of anything. On cancellation the threads stop their workers
    within a poll, and what every model had so far is kept.
    """
    models = [ModelReport(name=config.name, source=config.source) for config in configs]
    own: list[Report] = []
    for config in configs:
        own.append(Report(tool=report.tool, started_at="", environment=report.environment))
        own[-1].add([finding for finding in versions if finding.model == config.name])
    started: set[str] = set()
    at_once = max(1, min(context.jobs, len(configs)))
    # Cores that no other model takes convert one model's variants in parallel; with a
    # model per core, each converts in one worker (one TensorFlow import, one load).
    context.split = max(1, context.jobs // at_once)
    context.converting = {config.name for config in configs}
    pool = ThreadPoolExecutor(max_workers=at_once)
    try:
        futures = [
            pool.submit(_check_one, config, model_report, collector, context, started)
            for config, model_report, collector in zip(configs, models, own, strict=True)
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
    config: ModelConfig,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
    started_models: set[str],
) -> None:
    if cancelled_by() is not None:  # queued when the run was cancelled: never started
        return
    started_models.add(config.name)
    started = time.monotonic()
    context.progress(f"[{config.name}] {config.source}")
    try:
        _run_model_contained(config, model_report, report, context)
    finally:
        _done_converting(config, context)
    model_report.timings["total"] = round(time.monotonic() - started, 3)


def _done_converting(config: ModelConfig, context: RunContext) -> None:
    """Once no model has conversions left, the idle TensorFlow workers give memory back."""
    with context.converting_lock:
        context.converting.discard(config.name)
        last = not context.converting
    if last and context.pool is not None:
        context.pool.shrink()


def _refuse_unknown_runtimes(
    loaded: LoadedPolicy, indices: list[int], runtimes: list[str], option: str
) -> None:
    """Every model a shard checks must list every runtime the shard runs."""
    for index in indices:
        config = resolve_model(loaded, index)
        listed = [runtime_name(item) for item in config.runtimes.value]
        unknown = [name for name in runtimes if name not in listed]
        if unknown:
            raise UsageError(
                f"{option} names {', '.join(unknown)}, which model {config.name} does not "
                f"list; its runtimes: {', '.join(listed)}"
            )


def _run_model_contained(
    config: ModelConfig, model_report: ModelReport, report: Report, context: RunContext
) -> None:
    """One model's check, whose failure never costs the other models their results.

    An OSError that escaped the stages (a disk filling up, a directory gone
    read-only) is the environment's: an `environment-error` finding. Anything else
    is a bug in the gate: an `internal-error` finding for this model, the traceback
    kept in the report (exit 3), and the next model is still checked.
    """
    try:
        _run_model(config, model_report, report, context)
    except OSError as error:
        report.add([_environment_finding(error, config, context)])
    except Exception as error:
        report.add_internal_error(error, model=config.name)


def _environment_finding(
    error: OSError, config: ModelConfig, context: RunContext, variant: str | None = None
) -> Finding:
    """Name the file as the user knows it, and the option that moves its directory."""
    path = Path(error.filename) if isinstance(error.filename, str) else None
    if path is None:  # a failed write() names no file: find the disk that is full
        path = next((d for d in (context.scratch, context.artifacts) if disk_problem(d)), None)
    place, elsewhere = "a file", ""
    if path is not None:
        place = context.relative(path)
        if _inside(path, context.artifacts):
            option = context.names.artifacts
            elsewhere = f"give {option} a directory with room" if option else ""
        elif _inside(path, context.scratch):
            place = f"a temporary file in {tempfile.gettempdir()}"
            elsewhere = "set TMPDIR to a directory with room"
        elif _inside(path, context.cache_dir):
            elsewhere = f"give {context.names.cache_dir} another directory"
    return checks.check_environment_error(
        config, error, place=place, elsewhere=elsewhere, variant=variant
    )[0]


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def _cancelled_finding(cancelled: Cancelled, report: Report) -> Finding:
    """Say which model was cut short; the ones before it finished (total timing set)."""
    unfinished = [m.name for m in report.models if "total" not in m.timings]
    where = f" while checking {', '.join(unfinished)}" if unfinished else ""
    finished = [m.name for m in report.models if "total" in m.timings]
    done = f"; complete: {', '.join(finished)}" if finished else "; no model finished"
    return make_finding(
        "cancelled",
        f"the run was cancelled by {cancelled.signal_name}{where}{done}",
        model=unfinished[0] if len(unfinished) == 1 else None,
        details={"signal": cancelled.signal_name, "finished_models": finished},
    )


def _read_files(loaded: LoadedPolicy, workspace: Path, *more: Path) -> list[Path]:
    """Files the run reads: sources, references, data, libraries the policy names; `more`."""
    named: list[str] = []
    for settings in [loaded.policy.defaults, *loaded.policy.models]:
        if isinstance(settings, ModelSpec):
            named += [settings.source, *([settings.reference] if settings.reference else [])]
        if settings.data is not None:
            data = (settings.data.calibration, settings.data.evaluation)
            named += [value for value in data if isinstance(value, str)]
        for item in settings.runtimes or []:
            named += item.custom_op_libraries if isinstance(item, RuntimeEntry) else []
    paths = [resolve_inside(raw, workspace) for raw in named if not is_factory(raw)]
    return [*more, *(path for path in paths if path is not None)]


def _refuse_outputs_over_inputs(options: CheckOptions, loaded: LoadedPolicy) -> None:
    problems = output_path_problems(
        options.outputs,
        policy=options.policy,
        artifacts=artifacts_path(options),
        workspace=options.workspace,
        inputs=_read_files(loaded, options.workspace),
    )
    if problems:
        raise OutputPathError(problems)


def _version_findings(loaded: LoadedPolicy, indices: list[int]) -> list[Finding]:
    """Each specifier once per place it is written (a default once, not once per model)."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for index in indices:
        config = resolve_model(loaded, index)
        own = loaded.policy.models[index].versions or {}
        for name, spec in config.version_specs.items():
            where = str(spec.location)
            if where in seen:
                continue
            seen.add(where)
            findings += checks.check_version_spec(name, spec, config.name if name in own else None)
    return findings


# --------------------------------------------------------------------------- one model


def _run_model(
    config: ModelConfig, model_report: ModelReport, report: Report, context: RunContext
) -> None:
    path = None if is_factory(config.source) else resolve_inside(config.source, context.workspace)
    if path is not None and not path.exists():
        report.add(
            [
                make_finding(
                    "model-not-found",
                    f"{config.name}: {config.source} does not exist in the workspace",
                    model=config.name,
                    location=config.source_location,
                )
            ]
        )
        return
    kind = classify(config.source, path)
    if kind is None:
        report.add(
            [
                make_finding(
                    "model-load-failed",
                    f"{config.name}: {config.source} is not a supported model file; expected "
                    ".keras, .h5, .tflite, a SavedModel directory or a module:function factory",
                    model=config.name,
                    location=config.source_location,
                )
            ]
        )
        return
    special = _special_file_problem(config.source, path, context) if kind != "tflite" else None
    if special is not None:
        report.add(
            [
                make_finding(
                    "model-load-failed",
                    f"{config.name}: {special}",
                    model=config.name,
                    location=config.source_location,
                )
            ]
        )
        return
    unreadable_data = _special_data_files(config, context)
    if unreadable_data:
        report.add(unreadable_data)
        return
    model_report.source_kind = kind
    reference = _reference_source(config, report, context) if kind == "tflite" else None
    unusable = kind == "tflite" and config.reference.value is not None and reference is None
    reference_kind = reference[0] if reference else ("unusable" if unusable else None)
    misplaced = checks.check_source_keys(config, kind, reference_kind)
    report.add(misplaced)
    if misplaced or unusable:
        return
    first = len(report.findings)
    if kind == "tflite" and path is not None:
        _run_tflite(config, path, reference, model_report, report, context)
    else:
        _run_conversion(config, kind, path, model_report, report, context)
    report.add(checks.check_classification_names(config, model_report))
    report.add(checks.check_skipped_thresholds(config, model_report))
    report.add(checks.check_uncompared_thresholds(config, model_report))
    for variant in model_report.variants:  # after the runs: they say where Flex was verified
        report.add(checks.check_flex_runs(config, variant))
    report.findings[first:] = group_across_variants(report.findings[first:])


Reference = tuple[SourceKind, Path | None]  # (source kind, resolved path; None for a factory)


def _reference_source(config: ModelConfig, report: Report, context: RunContext) -> Reference | None:
    """The kind and path of a .tflite source's `reference`; None (reported) if unusable."""
    raw = config.reference.value
    if raw is None:
        return None
    path = None if is_factory(raw) else resolve_inside(raw, context.workspace)
    if path is not None and not path.exists():
        report.add(
            checks.check_reference(
                config, "does not exist in the workspace", rule="model-not-found"
            )
        )
        return None
    kind = classify(raw, path)
    if kind is None:
        report.add(
            checks.check_reference(
                config,
                "is not a supported model file; expected .tflite, .keras, .h5, a SavedModel "
                "directory or a module:function factory",
            )
        )
        return None
    special = _special_file_problem(raw, path, context) if kind != "tflite" else None
    if special is not None:
        report.add(checks.check_reference(config, special))
        return None
    return kind, path


def _special_file_problem(raw: str, path: Path | None, context: RunContext) -> str | None:
    """Why a model a worker would read (file, SavedModel, factory module) is refused unread.

    A FIFO or a device blocks the worker that opens it until its timeout; the gate
    process opens none of them, it only checks their type. (`.tflite` files are read
    by the gate itself, through `read_tflite`, which checks too.)
    """
    paths = [path] if path is not None else factory_files(raw, context.workspace)
    try:
        for each in paths:
            refuse_special_files(each)
    except SpecialFileError as error:
        return error.message
    except OSError as error:
        return unreadable_message(error)
    return None


def _special_data_files(config: ModelConfig, context: RunContext) -> list[Finding]:
    """A data generator's module that is a FIFO or a device: data-invalid at its data line."""
    findings = []
    for role, setting in (("calibration", config.calibration), ("evaluation", config.evaluation)):
        value = setting.value
        if not isinstance(value, str) or not is_factory(value):
            continue
        problem = _special_file_problem(value, None, context)
        if problem is not None:
            findings.append(
                make_finding(
                    "data-invalid",
                    f"{config.name}: {role} data: {problem}",
                    model=config.name,
                    location=checks.data_location(config, role, None),
                    details={"error": problem},
                )
            )
    return findings


def _run_tflite(
    config: ModelConfig,
    path: Path,
    reference: Reference | None,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> None:
    """An already-converted model: inspect, check, run it, and compare with its reference."""
    own = "variants" in config.key_locations  # a single as-is variant (checked before)
    variant = VariantReport(
        name=config.variants[0].name if own else AS_IS_VARIANT,
        quantization="as-is",
        io="as-is",
        status="not-converted",
        artifact=context.relative(path),
    )
    model_report.variants.append(variant)
    data = _read_tflite_source(config, variant, path, report)
    if data is None or not _inspect_and_check(
        config, variant, data, report, "model-load-failed", config.source
    ):
        return
    assert variant.inspection is not None
    model_report.loaded = True
    model_report.inputs = list(variant.inspection.inputs)
    signature = _declared_inputs(config, variant.inspection.inputs, model_report, report)
    if signature is None:
        return
    if reference is None:
        inputs = _tflite_evaluation_inputs(config, signature, report, context)
        outputs = None
    else:
        inputs, outputs = _reference_run(
            config, reference, variant, signature, model_report, report, context
        )
    if inputs is not None:  # without reference outputs the model still runs: status `ran`
        compare_runtimes = reference is None  # then the first runtime's outputs are one
        _execute_variant(
            config,
            0,
            variant,
            path,
            inputs,
            outputs,
            report,
            context,
            compare_runtimes=compare_runtimes,
        )


def _read_tflite_source(
    config: ModelConfig, variant: VariantReport, path: Path, report: Report
) -> bytes | None:
    """The source's bytes; None (reported) for a FIFO, a device or an oversized file."""
    try:
        return read_tflite(path)
    except OSError as error:
        variant.status = "invalid"
        message = unreadable_message(error)
        report.add(
            [
                make_finding(
                    "model-load-failed",
                    f"{config.name}: {config.source}: {message}",
                    model=config.name,
                    variant=variant.name,
                    location=config.source_location,
                )
            ]
        )
        return None


def _declared_inputs(
    config: ModelConfig, inputs: list[TensorInfo], model_report: ModelReport, report: Report
) -> InputSignature | None:
    """The .tflite's inputs with `input_shapes` applied; None (reported) when unusable.

    The interpreter resizes its inputs to the data's shapes, so the data is generated
    and checked against these declared shapes.
    """
    specs = [TensorSpec.from_dims(t.name, t.shape, t.dtype) for t in inputs]
    try:
        return apply_input_shapes(specs, config.input_shapes)
    except SourceError as error:
        load = LoadResult(ok=False, error=error.message, policy_key=error.policy_key)
        report.add(checks.check_load(config, load, model_report))
        return None


def _input_map(config: ModelConfig) -> dict[str, str]:
    """The policy's `input_map`: the .tflite's input name → the reference's."""
    return {entry.tflite: entry.reference for entry in config.input_map}


def _reference_run(
    config: ModelConfig,
    reference: Reference,
    variant: VariantReport,
    signature: InputSignature,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> tuple[Arrays | None, Arrays | None]:
    """Evaluation inputs (keyed by the .tflite's input names) and the reference's outputs."""
    kind, path = reference
    try:
        check_map_keys([spec.name for spec in signature], _input_map(config))
    except PairingError as error:
        report.add(checks.check_input_pairing(config, error))
        return None, None
    started = time.monotonic()
    if kind == "tflite" and path is not None:
        found = _tflite_reference(config, path, signature, report, context)
    else:
        found = _converted_reference(config, kind, path, signature, model_report, report, context)
    model_report.timings["reference"] = round(time.monotonic() - started, 3)
    if found is None:
        return None, None
    inputs, signed, outputs = found
    if outputs is None:
        return inputs, None
    assert variant.inspection is not None
    return inputs, _paired_outputs(variant.inspection.outputs, signed, outputs)


def _paired_outputs(ours: list[TensorInfo], signed: bool, outputs: Arrays) -> Arrays:
    """Reference outputs keyed as the comparison pairs them: by name, else by position.

    `signed`: the reference's outputs carry signature names. Names pair when every one
    of ours is among them; otherwise the reference's i-th output becomes our i-th.
    """
    names = [t.name for t in ours]
    if signed and set(names) <= set(outputs):
        return outputs
    if len(names) != len(outputs):
        return outputs  # the comparison reports the count mismatch
    return dict(zip(names, outputs.values(), strict=True))


def _tflite_reference(
    config: ModelConfig,
    path: Path,
    signature: InputSignature,
    report: Report,
    context: RunContext,
) -> tuple[Arrays, bool, Arrays | None] | None:
    """Run a .tflite reference on the model's first runtime (its registerers too), same inputs."""
    try:
        inspection = inspect_model(read_tflite(path))
    except InvalidModelError as error:
        report.add(checks.check_reference(config, str(error)))
        return None
    except OSError as error:
        report.add(checks.check_reference(config, unreadable_message(error)))
        return None
    ours, theirs = [spec.name for spec in signature], [t.name for t in inspection.inputs]
    try:
        pairs = pair_inputs(ours, theirs, _input_map(config))
    except PairingError as error:
        report.add(checks.check_input_pairing(config, error))
        return None
    names = pairs.names
    if pairs.by_position:
        _say_paired_by_position(config, pairs, context)
    # Data in the reference's dtypes: a float reference of an int8 model gets real values,
    # which the int8 model's run quantizes with its own scale.
    dtypes = {t.name: t.dtype for t in inspection.inputs}
    signature = [spec.model_copy(update={"dtype": dtypes[names[spec.name]]}) for spec in signature]
    inputs = _tflite_evaluation_inputs(config, signature, report, context)
    if inputs is None:
        return None
    spec = runtime_spec(config.runtimes.value[0], context.workspace)
    runtime = _runtime(spec, config, report, context)
    if runtime is None:
        return inputs, bool(inspection.signatures), None
    context.progress(f"[{config.name}] reference outputs from {config.reference.value}")
    feeds = {names[name]: value for name, value in inputs.items()}
    result = _interpret(config, spec, runtime, path, feeds, None, 0, context)
    if not result.ok:
        report.add(_reference_run_failed(config, spec.name, result))
        return inputs, bool(inspection.signatures), None
    return inputs, bool(inspection.signatures), result.outputs


def _reference_run_failed(
    config: ModelConfig, runtime: str, result: ExecutionResult
) -> list[Finding]:
    """A .tflite reference that did not run: a notice when only its ops' kernels are missing.

    Flex ops or declared custom ops are unverifiable here, like the same ops in the
    model under test; anything else (a crash, an error) is an error.
    """
    where = f" in {result.phase}" if result.phase else ""
    first = (result.message or result.status).splitlines()[0]
    unverifiable = result.status == "unsupported-flex" or (
        result.status == "unresolved-custom-op"
        and _custom_op_status(config, result.unresolved_custom_ops) == "unverifiable"
    )
    if unverifiable:
        return checks.check_reference(
            config,
            f"not executable on {runtime}, which lacks a kernel its ops need ({first}); list a "
            "runtime that has them first in `runtimes`",
            rule="threshold-not-applied",
        )
    return checks.check_reference(config, f"the reference run on {runtime} failed{where}: {first}")


def _converted_reference(
    config: ModelConfig,
    kind: SourceKind,
    path: Path | None,
    signature: InputSignature,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> tuple[Arrays, bool, Arrays | None] | None:
    """Evaluation inputs and reference outputs from TensorFlow, in a worker (no variants)."""
    request = _conversion_request(config, kind, path, context)
    request.scratch = str(context.places(config).reference_conversion)
    request.source = str(config.reference.value)
    request.input_shapes = {spec.name: sample_shape(spec.shape) for spec in signature}
    request.signature = None  # safe_mode is written on a .tflite only for a .keras reference
    request.variants = []  # reference outputs only
    request.input_map = _input_map(config)  # the worker pairs the inputs: only it loads them
    result = _convert(config, request, "reference outputs", model_report, context)
    if not result.load.ok:
        report.add(_reference_not_loaded(config, result.load))
        return None
    report.add(checks.check_evaluation(config, result.evaluation))
    feeds, outputs = _load_evaluation(result.evaluation)
    if feeds is None or outputs is None:
        return None
    ours = [spec.name for spec in signature]
    pairs = pair_inputs(ours, [spec.name for spec in result.load.inputs], _input_map(config))
    if pairs.by_position:  # paired so by the worker, which loaded the reference
        _say_paired_by_position(config, pairs, context)
    return {name: feeds[name] for name in ours}, True, outputs


def _reference_not_loaded(config: ModelConfig, load: LoadResult) -> list[Finding]:
    """Why the worker could not load the reference: its inputs, or the model itself."""
    if load.policy_key is not None and load.policy_key.startswith(INPUT_MAP_KEY):
        pairing = PairingError.from_policy_key(load.error or "", load.policy_key)
        return checks.check_input_pairing(config, pairing)
    if load.policy_key == "input_shapes":
        error = f"it does not take the .tflite's inputs: {load.error}"
        return checks.check_reference(config, error, rule="policy-invalid")
    return checks.check_reference(config, f"cannot load it: {load.error}")


def _say_paired_by_position(config: ModelConfig, pairs: InputPairs, context: RunContext) -> None:
    ((ours, theirs),) = pairs.names.items()
    context.progress(
        f"[{config.name}] the reference's input {theirs!r} is fed as the .tflite's {ours!r} "
        "(one input each, paired by position)"
    )


def _tflite_evaluation_inputs(
    config: ModelConfig, signature: InputSignature, report: Report, context: RunContext
) -> Arrays | None:
    """Evaluation data for a .tflite source, which needs no TensorFlow.

    Files and `generate` are read in this process; a generator is workspace code, so
    it runs in a worker under the model's limits.
    """
    calibration = source_spec(config.calibration.value, context.workspace)
    evaluation = source_spec(config.evaluation.value, context.workspace)
    try:
        if needs_worker(calibration, evaluation):
            return samples_in_worker(
                "evaluation",
                calibration,
                evaluation,
                signature,
                samples=config.samples.value,
                workspace=context.workspace,
                scratch=context.places(config).data,
                timeout_s=config.timeout_s.value,
                memory_mb=config.memory_mb.value,
            )
        feeds = representative_samples(
            "evaluation",
            calibration,
            evaluation,
            signature,
            samples=config.samples.value,
            workspace=context.workspace,
        )
    except DataError as error:
        report.add(
            checks.check_evaluation(
                config, EvaluationResult(ok=False, error=error.message, location=error.location)
            )
        )
        return None
    return stack(feeds)


def source_spec(value: str | GenerateSource | None, workspace: Path) -> SourceSpec | None:
    """The policy's data source as plain data for a worker."""
    if value is None:
        return None
    if isinstance(value, GenerateSource):
        options = value.generate
        return SourceSpec(
            kind="generate",
            seed=options.seed,
            count=options.count,
            low=options.low,
            high=options.high,
        )
    if is_factory(value):
        return SourceSpec(kind="generator", factory=value)
    resolved = resolve_inside(value, workspace)
    kind = "npz" if value.endswith(".npz") else "dir"
    return SourceSpec(kind=kind, path=str(resolved) if resolved else value)


def _conversion_request(
    config: ModelConfig, kind: SourceKind, path: Path | None, context: RunContext
) -> ConversionRequest:
    """What the conversion worker needs for this model, as plain data (no policy)."""
    calibration = source_spec(config.calibration.value, context.workspace)
    evaluation = source_spec(config.evaluation.value, context.workspace)
    return ConversionRequest(
        workspace=str(context.workspace.resolve()),
        scratch=str(context.places(config).conversion),
        source_kind=kind,
        source=config.source,
        source_path=str(path) if path else None,
        input_shapes=config.input_shapes,
        signature=config.signature,
        safe_mode=config.safe_mode,
        select_tf_ops=config.select_tf_ops.value,
        allow_custom_ops=bool(config.custom_ops.value),
        variants=[
            VariantRequest(
                name=v.name,
                quantization=v.quantization,
                io=v.io,
                keep_float=KeepFloat(nodes=v.keep_float.nodes, ops=v.keep_float.ops)
                if v.keep_float
                else None,
            )
            for v in config.variants
        ],
        calibration=calibration,
        evaluation=evaluation,
        samples=config.samples.value,
    )


def _run_conversion(
    config: ModelConfig,
    kind: SourceKind,
    path: Path | None,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> None:
    request = _conversion_request(config, kind, path, context)
    work = f"{len(config.variants)} variant(s)"
    result = _convert(config, request, work, model_report, context)
    reused = model_report.cache is not None and model_report.cache.status == "reused"
    model_report.timings["load+convert"] = round(result.duration_s, 3)
    load = result.load
    full = disk_problem(context.scratch) if not load.ok and load.crash_cause else None
    if full is not None:  # the worker died writing its own files, log included
        error = OSError(full, os.strerror(full), request.scratch)
        report.add([_environment_finding(error, config, context)])
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
    inputs, reference = _load_evaluation(evaluation)
    if evaluation is not None and evaluation.ok and not reused:
        model_report.timings["reference"] = round(evaluation.duration_s, 3)
    for position, spec in enumerate(config.variants):
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
        report.add(_unless_reported(conversion, evaluation))
        report.add(checks.check_converter_warnings(config, variant, outcome))
        context.progress(ResultLine(f"[{config.name}/{spec.name}] {variant.status}"))
        if not (outcome.ok and outcome.tflite_path):
            continue
        saved = _inspect_variant(config, variant, Path(outcome.tflite_path), report, context)
        if saved is not None and inputs is not None:
            _execute_variant(config, position, variant, saved, inputs, reference, report, context)
        if saved is not None and inputs is not None and reference is not None:
            _diagnose_variant(config, position, variant, saved, request, inputs, reference, context)


def _convert(
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
        _done_converting(config, context)


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


def _unless_reported(findings: list[Finding], evaluation: EvaluationResult | None) -> list[Finding]:
    """One data source serving both roles fails once: drop the calibration echo."""
    if evaluation is None or evaluation.error is None:
        return findings
    return [
        f
        for f in findings
        if not (f.rule == "data-invalid" and f.details.get("error") == evaluation.error)
    ]


def _load_evaluation(evaluation: EvaluationResult | None) -> tuple[Arrays | None, Arrays | None]:
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
        report.add([_environment_finding(error, config, context, variant=variant.name)])
        target = converted
    valid = _inspect_and_check(
        config,
        variant,
        converted.read_bytes(),
        report,
        "conversion-failed",
        f"{variant.name}: the converter wrote an invalid model",
    )
    return target if valid else None


def _inspect_and_check(
    config: ModelConfig,
    variant: VariantReport,
    data: bytes,
    report: Report,
    invalid_rule: str,
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


# --------------------------------------------------------------------------- execution


def runtime_spec(item: str | RuntimeEntry, workspace: Path) -> RuntimeSpec:
    """A policy `runtimes` entry as a runtime to prepare; `ai-edge-litert` is the gate's own.

    An entry for `ai-edge-litert` without `with` is the gate's own too (it may add a
    module or custom-op registerers, which need no environment of their own). Local
    paths are relative to the workspace, like every path in the policy.
    """
    if not isinstance(item, RuntimeEntry):
        requirement = item.strip()
        if requirement == DEFAULT_RUNTIME:
            return RuntimeSpec(name=DEFAULT_RUNTIME, requirement=None)
        if looks_like_path(requirement):
            requirement = str(resolve_inside(requirement, workspace) or requirement)
        return RuntimeSpec(name=runtime_name(item), requirement=requirement)
    requirement = item.requirement
    if looks_like_path(requirement):
        requirement = str(resolve_inside(requirement, workspace) or requirement)
    own = requirement == DEFAULT_RUNTIME and not item.with_
    return RuntimeSpec(
        name=runtime_name(item),
        requirement=None if own else requirement,
        extra=tuple(
            str(resolve_inside(extra, workspace) or extra) if looks_like_path(extra) else extra
            for extra in item.with_
        ),
        module=item.module,
        custom_op_registerers=tuple(item.custom_op_registerers),
        custom_op_libraries=tuple(
            str(resolve_inside(library, workspace) or library)
            for library in item.custom_op_libraries
        ),
    )


def _runtime(
    spec: RuntimeSpec, config: ModelConfig, report: Report, context: RunContext
) -> RuntimeEnvironment | None:
    """Prepare each runtime once per gate run; report an unavailable one once per model.

    Models checked in parallel wait for the one preparing a runtime they both need.
    """
    with context.runtime_lock:
        return _prepared_runtime(spec, config, report, context)


def _prepared_runtime(
    spec: RuntimeSpec, config: ModelConfig, report: Report, context: RunContext
) -> RuntimeEnvironment | None:
    if spec not in context.runtimes:
        context.progress(f"[runtime] preparing {spec.name}")
        try:
            context.runtimes[spec] = prepare_runtime(spec, cache_dir=context.cache_dir)
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


def _say_how_prepared(
    prepared: RuntimeEnvironment | RuntimeUnavailable, context: RunContext
) -> None:
    if isinstance(prepared, RuntimeEnvironment) and prepared.cached is not None:
        where = context.relative(prepared.cached)
        context.progress(f"[runtime] {prepared.spec.name}: reusing the cached environment {where}")


def _unusable_cache(error: OSError, context: RunContext) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return (
        f"give {context.names.cache_dir} a writable directory with room: the runtime cache "
        f"{context.relative(context.cache_dir)} is unusable: {error.strerror or error}{where}"
    )


def _execute_variant(
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
    runtimes = config.runtimes.value
    by_first = compare_runtimes and reference is None and len(runtimes) > 1
    compared_with: str | None = None
    for runtime_position, item in enumerate(runtimes):
        ours = not context.only_runtimes or runtime_name(item) in context.only_runtimes
        first = by_first and runtime_position == 0
        if not (ours or first):
            continue  # another shard's
        where = report if ours else _aside(report)
        run, result = _run_variant_on(
            config, item, runtime_position, (position, variant), model, inputs, where, context
        )
        outputs = result.outputs if result is not None and result.ok else None
        if first:
            reference, compared_with = outputs, run.label
        elif outputs is not None and reference is not None:
            _judge(run, outputs, reference, variant, config)
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
    item: str | RuntimeEntry,
    runtime_position: int,
    at: tuple[int, VariantReport],
    model: Path,
    inputs: Arrays,
    report: Report,
    context: RunContext,
) -> tuple[RuntimeRun, ExecutionResult | None]:
    """The variant (position, report) executed on one runtime, and how it went (None: not run)."""
    position, variant = at
    spec = runtime_spec(item, context.workspace)
    prepared = _runtime(spec, config, report, context)
    if prepared is None:
        return RuntimeRun(runtime=spec.name, status="unavailable"), None
    try:
        result = _interpret(
            config,
            spec,
            prepared,
            model,
            inputs,
            (position, variant.name),
            runtime_position,
            context,
        )
    except OSError as error:  # its scratch files could not be written: not run at all
        report.add([_environment_finding(error, config, context, variant.name)])
        message = f"not run: {error.strerror or error}"
        return RuntimeRun(runtime=spec.name, status="error", message=message), None
    if result.reproducer_error is not None:
        report.add([_environment_finding(result.reproducer_error, config, context, variant.name)])
    return _runtime_run(config, spec, prepared, result, variant, context), result


def _diagnose_variant(
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
    names = [runtime_name(item) for item in config.runtimes.value]
    runtime_position = names.index(broken.runtime)
    spec = runtime_spec(config.runtimes.value[runtime_position], context.workspace)
    runtime = context.runtimes.get(spec)
    if not isinstance(runtime, RuntimeEnvironment):  # it ran: prepared, unless a bug
        return
    scratch = context.places(config).diagnosis(position)
    scratch.mkdir(parents=True, exist_ok=True)
    save_npz(scratch / "inputs.npz", inputs)

    def try_model(candidate: Path, trial: int) -> RuntimeRun:
        places = (scratch / f"run-{trial}", scratch / f"reproducer-{trial}")
        result = _run_on(config, spec, runtime, candidate, inputs, context, places)
        run = _runtime_run(config, spec, runtime, result, variant, context)
        if result.ok:
            _judge(run, result.outputs, reference, variant, config)
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


def _interpret(
    config: ModelConfig,
    spec: RuntimeSpec,
    runtime: RuntimeEnvironment,
    model: Path,
    inputs: Arrays,
    variant: tuple[int, str] | None,
    runtime_position: int,
    context: RunContext,
) -> ExecutionResult:
    """Run `model` on `inputs` in an interpreter worker of `runtime`, under the limits.

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
    return _run_on(config, spec, runtime, model, inputs, context, where, latency_runs)


def _run_on(
    config: ModelConfig,
    spec: RuntimeSpec,
    runtime: RuntimeEnvironment,
    model: Path,
    inputs: Arrays,
    context: RunContext,
    where: tuple[Path, Path],
    latency_runs: int = 0,
) -> ExecutionResult:
    """`model` on `runtime` under the model's limits; `where`: (scratch, reproducer dir)."""
    return run_interpreter(
        model,
        inputs,
        python=runtime.python,
        module=runtime.module,
        scratch=where[0],
        reproducer_dir=where[1],
        timeout_s=config.interpreter_timeout_s.value,
        memory_mb=config.memory_mb.value,
        num_threads=config.num_threads,
        custom_op_registerers=spec.custom_op_registerers,
        custom_op_libraries=spec.custom_op_libraries,
        pythonpath=[str(context.workspace.resolve())],
        latency_runs=latency_runs,
        latency_threads=config.latency_threads.value,
    )


_RUN_STATUS: dict[ExecutionStatus, RunStatus] = {
    "ok": "ran",
    "error": "error",
    "unsupported-flex": "unverifiable",
    "crash": "crash",
    "timeout": "timeout",
    "import": "unavailable",
}


def _runtime_run(
    config: ModelConfig,
    spec: RuntimeSpec,
    prepared: RuntimeEnvironment,
    result: ExecutionResult,
    variant: VariantReport,
    context: RunContext,
) -> RuntimeRun:
    """How the execution went; a run that executed is `ran` until it is compared."""
    status = (
        _custom_op_status(config, result.unresolved_custom_ops)
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


def _judge(
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


def _custom_op_status(config: ModelConfig, unresolved: list[str]) -> RunStatus:
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

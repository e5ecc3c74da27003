"""Run the stages in order; the only module that knows the order.

policy → versions → for each model: source → conversion worker (variants,
evaluation data, reference outputs) → inspection → interpreter workers per
runtime → comparison → checks → Report. Every stage's failure for one model
becomes findings for that model; the others still run.
"""

from __future__ import annotations

import platform
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tflite_gate import __version__, checks
from tflite_gate.compare import OutputMismatch, compare_output, match_outputs, tightest_passing
from tflite_gate.convert import (
    ConversionRequest,
    EvaluationResult,
    VariantRequest,
    convert_model,
)
from tflite_gate.data import DataError, SourceSpec, representative_samples, stack
from tflite_gate.execute import ExecutionResult, run_interpreter
from tflite_gate.findings import Finding, Location, make_finding
from tflite_gate.inspect import InvalidModelError, inspect_model
from tflite_gate.policy import (
    GenerateSource,
    LoadedPolicy,
    ModelConfig,
    RuntimeEntry,
    is_factory,
    load_policy,
    resolve_inside,
    resolve_model,
    runtime_name,
)
from tflite_gate.report.model import (
    ConverterError,
    EnvironmentInfo,
    ModelReport,
    Report,
    RunStatus,
    RuntimeRun,
    TensorInfo,
    Tool,
    VariantReport,
    WrittenBy,
)
from tflite_gate.runtimes import (
    DEFAULT_RUNTIME,
    RuntimeEnvironment,
    RuntimeSpec,
    RuntimeUnavailable,
    default_cache_dir,
    looks_like_path,
    prepare_runtime,
)
from tflite_gate.sources import classify

Progress = Callable[[str], None]
FailOn = Literal["error", "warning", "never"]
Arrays = dict[str, np.ndarray]

ENVIRONMENT_PACKAGES = ("tensorflow", "ai-edge-litert", "keras", "numpy", "tflite-gate")


class UsageError(Exception):
    """A command-line mistake (exit 2)."""


@dataclass
class CheckOptions:
    policy: Path
    workspace: Path
    only: list[str] = field(default_factory=list)
    artifacts: Path | None = None
    fail_on: FailOn | None = None
    cache_dir: Path | None = None


@dataclass
class RunContext:
    """What every model's run shares: where things go, and runtimes prepared once."""

    workspace: Path
    artifacts: Path
    scratch: Path
    cache_dir: Path
    progress: Progress
    runtimes: dict[RuntimeSpec, RuntimeEnvironment | RuntimeUnavailable] = field(
        default_factory=dict
    )
    unavailable_reported: set[tuple[str, RuntimeSpec]] = field(default_factory=set)

    def relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.workspace.resolve()).as_posix()
        except ValueError:
            return str(path)


def environment() -> EnvironmentInfo:
    """Versions that explain a result; read from metadata, without importing TensorFlow."""
    return EnvironmentInfo(
        python=platform.python_version(),
        platform=f"{platform.system()}-{platform.machine()}",
        packages={name: checks.installed_version(name) for name in ENVIRONMENT_PACKAGES},
    )


def new_report() -> Report:
    return Report(
        tool=Tool(version=__version__),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        environment=environment(),
    )


def select_models(loaded: LoadedPolicy, only: list[str]) -> list[int]:
    names = [model.name for model in loaded.policy.models]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise UsageError(
            f"--only names unknown model(s) {', '.join(unknown)}; the policy has: "
            f"{', '.join(names)}"
        )
    return [i for i, name in enumerate(names) if not only or name in only]


def run_check(options: CheckOptions, progress: Progress) -> Report:
    """The whole gate for one policy; raises PolicyError/UsageError before any model work."""
    report = new_report()
    started = time.monotonic()
    loaded = load_policy(options.policy, options.workspace)
    report.policy = loaded.display_path
    indices = select_models(loaded, options.only)
    report.timings["policy"] = round(time.monotonic() - started, 3)

    report.add(_version_findings(loaded, indices))
    artifacts = _artifacts_directory(options)
    with tempfile.TemporaryDirectory(prefix="tflite-gate-") as scratch:
        context = RunContext(
            workspace=options.workspace,
            artifacts=artifacts,
            scratch=Path(scratch),
            cache_dir=options.cache_dir or default_cache_dir(),
            progress=progress,
        )
        for index in indices:
            config = resolve_model(loaded, index)
            model_started = time.monotonic()
            progress(f"[{config.name}] {config.source}")
            model_report = ModelReport(name=config.name, source=config.source)
            report.models.append(model_report)
            _run_model(config, model_report, report, context)
            model_report.timings["total"] = round(time.monotonic() - model_started, 3)
    report.duration_s = round(time.monotonic() - started, 3)
    report.timings["total"] = report.duration_s
    report.finalize(options.fail_on or loaded.policy.fail_on)
    return report


def _artifacts_directory(options: CheckOptions) -> Path:
    artifacts = options.artifacts or options.workspace / ".tflite-gate" / "artifacts"
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"cannot create artifacts directory {artifacts}: {error.strerror or error}"
        ) from None
    return artifacts


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
    model_report.source_kind = kind
    if kind == "tflite" and path is not None:
        _run_tflite(config, path, model_report, report, context)
    else:
        _run_conversion(config, kind, path, model_report, report, context)
    for variant in model_report.variants:  # after the runs: they say where Flex was verified
        report.add(checks.check_flex_runs(config, variant))


def _run_tflite(
    config: ModelConfig,
    path: Path,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> None:
    """An already-converted model: inspect, check, and run it (no reference to compare)."""
    variant = VariantReport(
        name="tflite",
        quantization="as-is",
        io="as-is",
        status="not-converted",
        artifact=context.relative(path),
    )
    model_report.variants.append(variant)
    if not _inspect_and_check(
        config, variant, path.read_bytes(), report, "model-load-failed", config.source
    ):
        return
    assert variant.inspection is not None
    model_report.loaded = True
    model_report.inputs = list(variant.inspection.inputs)
    inputs = _tflite_evaluation_inputs(config, variant, report, context)
    if inputs is not None:
        _execute_variant(config, variant, path, inputs, None, report, context)


def _tflite_evaluation_inputs(
    config: ModelConfig, variant: VariantReport, report: Report, context: RunContext
) -> Arrays | None:
    """Evaluation data read in this process: a .tflite source needs no TensorFlow."""
    assert variant.inspection is not None
    signature = [(t.name, t.shape, t.dtype) for t in variant.inspection.inputs]
    try:
        feeds = representative_samples(
            "evaluation",
            source_spec(config.calibration.value, context.workspace),
            source_spec(config.evaluation.value, context.workspace),
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
    config: ModelConfig, kind: str, path: Path | None, context: RunContext
) -> ConversionRequest:
    calibration = source_spec(config.calibration.value, context.workspace)
    evaluation = source_spec(config.evaluation.value, context.workspace)
    return ConversionRequest(
        workspace=str(context.workspace.resolve()),
        scratch=str(context.scratch / f"model-{config.index}"),
        source_kind=kind,
        source=config.source,
        source_path=str(path) if path else None,
        input_shapes=config.input_shapes,
        signature=config.signature,
        safe_mode=config.safe_mode,
        select_tf_ops=config.select_tf_ops.value,
        allow_custom_ops=bool(config.custom_ops.value),
        variants=[VariantRequest(v.name, v.quantization, v.io) for v in config.variants],
        calibration=asdict(calibration) if calibration else None,
        evaluation=asdict(evaluation) if evaluation else None,
        samples=config.samples.value,
    )


def _run_conversion(
    config: ModelConfig,
    kind: str,
    path: Path | None,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> None:
    request = _conversion_request(config, kind, path, context)
    context.progress(f"[{config.name}] converting {len(config.variants)} variant(s) in a worker")
    result = convert_model(
        request, timeout_s=config.timeout_s.value, memory_mb=config.memory_mb.value
    )
    model_report.timings["load+convert"] = round(result.duration_s, 3)
    load = result.load
    if load.written_by:
        model_report.written_by = WrittenBy(**load.written_by)
    report.add(checks.check_load(config, load, model_report))
    if not load.ok:
        return
    model_report.loaded = True
    model_report.inputs = [
        TensorInfo(
            name=i["name"], shape=[d if d is not None else -1 for d in i["shape"]], dtype=i["dtype"]
        )
        for i in load.inputs
    ]
    evaluation = result.evaluation
    report.add(checks.check_evaluation(config, evaluation))
    inputs, reference = _load_evaluation(evaluation)
    if evaluation is not None and evaluation.ok:
        model_report.timings["reference"] = round(evaluation.duration_s, 3)
    for spec in config.variants:
        outcome = result.variants[spec.name]
        variant = VariantReport(
            name=spec.name,
            quantization=spec.quantization,
            io=spec.io,
            status="converted" if outcome.ok else "conversion-failed",
        )
        variant.timings["convert"] = round(outcome.duration_s, 3)
        variant.converter.errors = [_converter_error(error) for error in outcome.errors]
        variant.converter.log_lines = outcome.log_lines
        model_report.variants.append(variant)
        report.add(_unless_reported(checks.check_conversion(config, variant, outcome), evaluation))
        report.add(checks.check_converter_warnings(config, variant, outcome))
        context.progress(f"[{config.name}/{spec.name}] {variant.status}")
        if not (outcome.ok and outcome.tflite_path):
            continue
        saved = _inspect_variant(config, variant, Path(outcome.tflite_path), report, context)
        if saved is not None and inputs is not None:
            _execute_variant(config, variant, saved, inputs, reference, report, context)


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


def _converter_error(error: dict[str, Any]) -> ConverterError:
    where = error.get("location")
    return ConverterError(
        code=error.get("code"),
        op=error.get("op"),
        message=str(error.get("message")),
        location=Location(path=where[0], line=where[1]) if where else None,
    )


def _inspect_variant(
    config: ModelConfig,
    variant: VariantReport,
    converted: Path,
    report: Report,
    context: RunContext,
) -> Path | None:
    """Save the artifact, inspect it, run the static checks; the saved path if valid."""
    target = context.artifacts / config.name / f"{variant.name}.tflite"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(converted, target)
    variant.artifact = context.relative(target)
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
        extra=tuple(item.with_),
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
    """Prepare each runtime once per gate run; report an unavailable one once per model."""
    if spec not in context.runtimes:
        context.progress(f"[runtime] preparing {spec.name}")
        try:
            context.runtimes[spec] = prepare_runtime(spec, cache_dir=context.cache_dir)
        except RuntimeUnavailable as error:
            context.runtimes[spec] = error
    prepared = context.runtimes[spec]
    if isinstance(prepared, RuntimeUnavailable):
        if (config.name, spec) not in context.unavailable_reported:
            context.unavailable_reported.add((config.name, spec))
            report.add(checks.check_unavailable_runtime(config, spec.name, str(prepared)))
        return None
    return prepared


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or "runtime"


def _execute_variant(
    config: ModelConfig,
    variant: VariantReport,
    model: Path,
    inputs: Arrays,
    reference: Arrays | None,
    report: Report,
    context: RunContext,
) -> None:
    """Run the variant on every runtime of the policy and compare with the reference."""
    for item in config.runtimes.value:
        spec = runtime_spec(item, context.workspace)
        prepared = _runtime(spec, config, report, context)
        if prepared is None:
            variant.runs.append(RuntimeRun(runtime=spec.name, status="unavailable"))
            continue
        slug = _slug(spec.name)
        result = run_interpreter(
            model,
            inputs,
            python=prepared.python,
            module=prepared.module,
            scratch=context.scratch / f"model-{config.index}" / variant.name / slug,
            reproducer_dir=context.artifacts / config.name / variant.name / slug / "reproducer",
            timeout_s=config.interpreter_timeout_s.value,
            memory_mb=config.memory_mb.value,
            num_threads=config.num_threads,
            custom_op_registerers=spec.custom_op_registerers,
            custom_op_libraries=spec.custom_op_libraries,
            pythonpath=[str(context.workspace.resolve())],
        )
        run = _runtime_run(config, spec, prepared, result, variant, reference, context)
        variant.runs.append(run)
        findings = checks.check_run(config, variant, run) + checks.check_divergence(
            config, variant, run
        )
        if run.status == "passed" and any(f.rule == "divergence" for f in findings):
            run.status = "diverged"
        report.add(findings)
        context.progress(f"[{config.name}/{variant.name}] {spec.name}: {_summary(run)}")


def _runtime_run(
    config: ModelConfig,
    spec: RuntimeSpec,
    prepared: RuntimeEnvironment,
    result: ExecutionResult,
    variant: VariantReport,
    reference: Arrays | None,
    context: RunContext,
) -> RuntimeRun:
    status = {
        "ok": "passed",
        "error": "error",
        "unsupported-flex": "unverifiable",
        "unresolved-custom-op": _custom_op_status(config, result.unresolved_custom_ops),
        "crash": "crash",
        "timeout": "timeout",
        "import": "unavailable",
    }[result.status]
    inspection = variant.inspection
    custom = [op.name for op in inspection.ops if op.kind == "custom"] if inspection else []
    run = RuntimeRun(
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
        custom_op_registerers=list(spec.custom_op_registerers),
        custom_ops_executed=custom if result.ok else [],
        unresolved_custom_ops=result.unresolved_custom_ops,
    )
    if result.ok and reference is not None:
        _compare(run, result.outputs, reference, variant)
    return run


def _custom_op_status(config: ModelConfig, unresolved: list[str]) -> RunStatus:
    """Declared custom ops the runtime has no kernel for: not a failure, just not verifiable.

    The app registers them; the gate cannot run them without their kernels. An op the
    policy does not declare stays an error (the static `custom-op` check names it).
    """
    declared = set(config.custom_ops.value)
    return "unverifiable" if unresolved and set(unresolved) <= declared else "error"


def _compare(run: RuntimeRun, outputs: Arrays, reference: Arrays, variant: VariantReport) -> None:
    by_order = variant.inspection is not None and not variant.inspection.signatures
    try:
        pairs = match_outputs(reference, outputs, by_order=by_order)
        run.metrics = [compare_output(name, ref, act) for name, ref, act in pairs]
    except (OutputMismatch, ValueError) as error:
        run.status = "mismatch"
        run.message = str(error)
        run.metrics = []
        return
    run.tightest = {metrics.output: tightest_passing(metrics) for metrics in run.metrics}


def _summary(run: RuntimeRun) -> str:
    if not run.metrics:
        return run.status + (f" ({run.message.splitlines()[0]})" if run.message else "")
    worst = max(run.metrics, key=lambda m: m.max_abs)
    return (
        f"{run.status}, {run.samples} samples, worst output {worst.output!r}: "
        f"max_abs {worst.max_abs:.3g}, cosine {worst.cosine:.6f}"
    )

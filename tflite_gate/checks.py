"""Facts → findings: one small function per rule.

Checks read a model's resolved policy (`ModelConfig`) and what the pipeline
recorded in the report, and return findings. They never print and never
decide the verdict. A finding caused by a policy setting points at that
setting; one caused by model code points at the code.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from tflite_gate.compare import MAX_METRICS, violations
from tflite_gate.convert import EvaluationResult, LoadResult, VariantResult
from tflite_gate.findings import Finding, Location, Severity, make_finding
from tflite_gate.policy import ModelConfig, Setting
from tflite_gate.report.model import ModelReport, RuntimeRun, VariantReport
from tflite_gate.runtime_versions import ops_newer_than, runtime_version_less


def _where(setting: Setting[Any], config: ModelConfig) -> Location:
    return setting.location or config.source_location


def _crash_location(cause: str | None, config: ModelConfig) -> Location:
    """A worker killed at a limit points at that limit's setting, where one is written."""
    if cause == "timeout":
        return _where(config.timeout_s, config)
    if cause == "memory":
        return _where(config.memory_mb, config)
    return config.source_location


# --------------------------------------------------------------------------- versions


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def check_version_spec(name: str, spec: Setting[str], model: str | None) -> list[Finding]:
    """`versions: {dist: specifier}` against what is installed where the gate runs."""
    installed = installed_version(name)
    if installed is None:
        return [
            make_finding(
                "version-mismatch",
                f"{name} is not installed, but the policy requires {name}{spec.value}",
                model=model,
                location=spec.location,
                details={"package": name, "specifier": spec.value, "installed": None},
            )
        ]
    try:
        satisfied = SpecifierSet(spec.value).contains(Version(installed), prereleases=True)
    except InvalidVersion:
        satisfied = False
    if satisfied:
        return []
    return [
        make_finding(
            "version-mismatch",
            f"{name} {installed} is installed, the policy requires {name}{spec.value}",
            model=model,
            location=spec.location,
            details={"package": name, "specifier": spec.value, "installed": installed},
        )
    ]


# --------------------------------------------------------------------------- loading


def check_load(config: ModelConfig, load: LoadResult, report: ModelReport) -> list[Finding]:
    """A model that cannot be loaded, with the versions that wrote it and that read it."""
    if load.ok:
        return []
    if load.policy_key:
        return [
            make_finding(
                "policy-invalid",
                f"{config.name}: {load.error}",
                model=config.name,
                location=config.key_locations.get(load.policy_key, config.source_location),
                details={"key": load.policy_key},
            )
        ]
    location = (
        Location(path=load.location[0], line=load.location[1])
        if load.location
        else _crash_location(load.crash_cause, config)
    )
    message = f"{config.name}: cannot load {config.source}: {load.error}"
    written = report.written_by
    if written and (written.tensorflow or written.keras):
        wrote = ", ".join(
            f"{lib} {version}"
            for lib, version in (("TensorFlow", written.tensorflow), ("Keras", written.keras))
            if version
        )
        now = ", ".join(
            f"{lib} {installed_version(dist) or 'not installed'}"
            for lib, dist in (
                ("TensorFlow", "tensorflow"),
                ("Keras", "keras"),
                ("tf-keras", "tf-keras"),
            )
        )
        message += f" (written by {wrote}; installed: {now})"
    return [
        make_finding(
            "model-load-failed",
            message,
            model=config.name,
            location=location,
            details={
                "error": load.error,
                "written_by": written.model_dump() if written else None,
            },
        )
    ]


# --------------------------------------------------------------------------- conversion


def data_location(config: ModelConfig, role: str, code: Any) -> Location:
    """A generator's own line if it raised, else the policy's data setting for `role`."""
    if isinstance(code, list | tuple) and len(code) == 2:
        return Location(path=str(code[0]), line=int(code[1]))
    own = config.calibration if role == "calibration" else config.evaluation
    other = config.evaluation if role == "calibration" else config.calibration
    return own.location or other.location or config.source_location


def _code_location(error: dict[str, object]) -> Location | None:
    where = error.get("location")
    if isinstance(where, list | tuple) and len(where) == 2:
        return Location(path=str(where[0]), line=int(str(where[1])))
    return None


def _flex_name(tf_op: str | None) -> str | None:
    return f"Flex{tf_op.removeprefix('tf.')}" if tf_op else None


def check_conversion(
    config: ModelConfig, variant: VariantReport, result: VariantResult
) -> list[Finding]:
    """Converter failures, at the user's line of model code when the converter knows it."""
    if result.data_error:
        return [
            make_finding(
                "data-invalid",
                f"{config.name}/{variant.name}: calibration data: {result.data_error}",
                location=data_location(config, "calibration", result.data_location),
                details={"error": result.data_error},
                model=config.name,
                variant=variant.name,
            )
        ]
    if result.crash:
        return [
            make_finding(
                "conversion-failed",
                f"{config.name}/{variant.name}: {result.crash}",
                location=_crash_location(result.crash_cause, config),
                details={"crash": result.crash, "log_tail": result.log_lines},
                model=config.name,
                variant=variant.name,
            )
        ]
    findings = []
    for error in result.errors:
        op = error.get("op")
        flex = _flex_name(str(op)) if op else None
        code_location = _code_location(error)
        details = {"error_code": error.get("code"), "op": op, "converter": error.get("message")}
        if flex and error.get("code") == "ERROR_NEEDS_FLEX_OPS":
            findings.append(
                make_finding(
                    "flex-op",
                    f"{config.name}/{variant.name}: {op} needs Select TF ops ({flex}), which "
                    f"the policy does not allow (ops.select_tf_ops: false); conversion failed",
                    location=code_location or _where(config.select_tf_ops, config),
                    details={**details, "flex_op": flex},
                    model=config.name,
                    variant=variant.name,
                )
            )
            continue
        what = f"{op} is not supported" if op else str(error.get("message"))
        if op and error.get("code") == "ERROR_NEEDS_CUSTOM_OPS":
            what = (
                f"{op} is neither a TFLite builtin nor a Select TF op; implement it as a "
                "custom op and list it in ops.custom, or replace it"
            )
        findings.append(
            make_finding(
                "conversion-failed",
                f"{config.name}/{variant.name}: {what} ({error.get('code') or 'converter error'})",
                location=code_location or config.source_location,
                details=details,
                model=config.name,
                variant=variant.name,
            )
        )
    return findings


def check_converter_warnings(
    config: ModelConfig, variant: VariantReport, result: VariantResult
) -> list[Finding]:
    """Log lines that survived noise filtering: often a silent fallback.

    A failed conversion's log repeats its error, which the error findings already
    report at the right line; its log stays in the report, not in the findings.
    """
    if not result.ok:
        return []
    accepted_flex = config.select_tf_ops.value
    return [
        make_finding(
            "converter-warning",
            f"{config.name}/{variant.name}: {line.splitlines()[0]}",
            model=config.name,
            variant=variant.name,
            location=config.source_location,
            details={"log": line},
        )
        for line in result.log_lines
        if not (accepted_flex and "Flex" in line)  # the flex-op notice says it already
    ]


# --------------------------------------------------------------------------- ops


def check_ops_allowed(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Builtin ops outside `ops.allow`, or inside `ops.deny`."""
    if variant.inspection is None:
        return []
    allow, deny = config.allow_ops.value, config.deny_ops.value
    findings = []
    for op in variant.inspection.ops:
        if op.kind != "builtin":
            continue
        setting: Setting[Any]
        if op.name in deny:
            setting, why = config.deny_ops, "is listed in ops.deny"
        elif allow is not None and op.name not in allow:
            setting, why = config.allow_ops, "is not in ops.allow"
        else:
            continue
        findings.append(
            make_finding(
                "op-not-allowed",
                f"{config.name}/{variant.name}: {op.name} (v{op.version}, used {op.count}x) {why}",
                model=config.name,
                variant=variant.name,
                location=_where(setting, config),
                details={"op": op.name, "version": op.version, "count": op.count},
            )
        )
    return findings


def check_flex_ops(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Select TF (Flex) ops in the flatbuffer: an error unless the policy accepts them."""
    if variant.inspection is None:
        return []
    flex = [op for op in variant.inspection.ops if op.kind == "flex"]
    if not flex:
        return []
    names = ", ".join(op.name for op in flex)
    allowed = config.select_tf_ops.value
    message = (
        f"{config.name}/{variant.name}: uses Select TF ops {names}; the app must link the "
        "Flex delegate, and numerics cannot be verified with the plain interpreter"
        if allowed
        else f"{config.name}/{variant.name}: uses Select TF ops {names}, which the policy "
        "does not allow (ops.select_tf_ops: false)"
    )
    return [
        make_finding(
            "flex-op",
            message,
            severity=Severity.NOTICE if allowed else None,
            model=config.name,
            variant=variant.name,
            location=_where(config.select_tf_ops, config),
            details={"ops": [op.name for op in flex]},
        )
    ]


def check_custom_ops(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Custom ops the policy does not list as implemented in the app."""
    if variant.inspection is None:
        return []
    accepted = set(config.custom_ops.value)
    return [
        make_finding(
            "custom-op",
            f"{config.name}/{variant.name}: custom op {op.name} is not listed in ops.custom",
            model=config.name,
            variant=variant.name,
            location=_where(config.custom_ops, config),
            details={"op": op.name, "count": op.count},
        )
        for op in variant.inspection.ops
        if op.kind == "custom" and op.name not in accepted
    ]


def check_runtime(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """The model needs a newer runtime than `versions.target_runtime`, and which ops say so."""
    target = config.target_runtime.value
    inspection = variant.inspection
    if target is None or inspection is None:
        return []
    builtin = [(op.name, op.version) for op in inspection.ops if op.kind == "builtin"]
    newer = ops_newer_than(builtin, target)
    metadata_value = inspection.metadata_min_runtime
    metadata_newer = metadata_value is not None and _safe_less(target, metadata_value)
    if not newer and not metadata_newer:
        return []
    needed = newer[0].min_runtime if newer else metadata_value
    reasons = ", ".join(str(requirement) for requirement in newer) or (
        f"the converter's min_runtime_version metadata says {metadata_value}"
    )
    return [
        make_finding(
            "runtime-too-old",
            f"{config.name}/{variant.name}: needs runtime {needed}, target_runtime is "
            f"{target}: {reasons}",
            model=config.name,
            variant=variant.name,
            location=_where(config.target_runtime, config),
            details={
                "target_runtime": target,
                "required_runtime": needed,
                "metadata_min_runtime": metadata_value,
                "ops": [
                    {"op": r.op, "version": r.version, "min_runtime": r.min_runtime} for r in newer
                ],
            },
        )
    ]


def _safe_less(a: str, b: str) -> bool:
    try:
        return runtime_version_less(a, b)
    except ValueError:
        return False


VARIANT_CHECKS = (check_ops_allowed, check_flex_ops, check_custom_ops, check_runtime)


# --------------------------------------------------------------------------- execution


def _runtime_location(config: ModelConfig, runtime: str | None = None) -> Location:
    """The runtime's own entry in `runtimes`, else the list, else the model's source."""
    if runtime is not None and runtime in config.runtime_locations:
        return config.runtime_locations[runtime]
    return _where(config.runtimes, config)


def check_run(config: ModelConfig, variant: VariantReport, run: RuntimeRun) -> list[Finding]:
    """A variant that could not be executed on a runtime: crash, hang, error, or Flex."""
    where = f"{config.name}/{variant.name} on {run.runtime}"
    at = f" in {run.phase}" + (f" (sample {run.sample})" if run.sample is not None else "")
    repro = f"; reproducer: {run.reproducer}" if run.reproducer else ""
    details = {
        "phase": run.phase,
        "sample": run.sample,
        "signal": run.signal,
        "runtime_version": run.runtime_version,
        "reproducer": run.reproducer,
        "message": run.message,
    }
    common: dict[str, Any] = {"model": config.name, "variant": variant.name, "runtime": run.runtime}
    if run.status == "crash":
        cause = run.signal or "a non-zero exit"
        return [
            make_finding(
                "interpreter-crash",
                f"{where}: the interpreter crashed with {cause}{at}{repro}",
                location=_runtime_location(config, run.runtime),
                details=details,
                **common,
            )
        ]
    if run.status == "timeout":
        return [
            make_finding(
                "interpreter-timeout",
                f"{where}: no result within {config.interpreter_timeout_s.value:g} s{at}{repro}",
                location=_where(config.interpreter_timeout_s, config),
                details=details,
                **common,
            )
        ]
    if run.status == "error":
        static = _static_runtime_verdict(variant, run.runtime_version)
        agreement = f" (the static check agrees: {static})" if static else ""
        return [
            make_finding(
                "interpreter-error",
                f"{where}: {_one_line(run.message)}{at}{agreement}{repro}",
                location=_runtime_location(config, run.runtime),
                details={**details, "static_check": static},
                **common,
            )
        ]
    if run.status == "unavailable":  # installed, but the worker could not import it
        return check_unavailable_runtime(config, run.runtime, run.message or "import failed")
    if run.status == "unverifiable":
        return [
            make_finding(
                "flex-op",
                f"{where}: not executable here (the interpreter has no Flex delegate); "
                "numerics not verified",
                severity=Severity.NOTICE,
                location=_where(config.select_tf_ops, config),
                details=details,
                **common,
            )
        ]
    if run.status == "mismatch":
        return [
            make_finding(
                "output-mismatch",
                f"{where}: {run.message}",
                location=config.source_location,
                details=details,
                **common,
            )
        ]
    return []


def _one_line(text: str | None, limit: int = 400) -> str:
    """Runtime messages span lines; a finding's message is one (details keep the rest)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _static_runtime_verdict(variant: VariantReport, runtime_version: str | None) -> str | None:
    """What TF's op-version table says about this runtime version, if it predicts failure."""
    if variant.inspection is None or runtime_version is None:
        return None
    builtin = [(op.name, op.version) for op in variant.inspection.ops if op.kind == "builtin"]
    try:
        newer = ops_newer_than(builtin, runtime_version)
    except ValueError:
        return None
    return ", ".join(str(requirement) for requirement in newer) or None


def check_unavailable_runtime(config: ModelConfig, runtime: str, error: str) -> list[Finding]:
    return [
        make_finding(
            "runtime-unavailable",
            f"{config.name}: runtime {runtime} is unavailable: {_one_line(error)}",
            model=config.name,
            runtime=runtime,
            location=_runtime_location(config, runtime),
            details={"error": error},
        )
    ]


def check_divergence(config: ModelConfig, variant: VariantReport, run: RuntimeRun) -> list[Finding]:
    """Each broken threshold, at the policy line that set it, with the worst sample."""
    plan = config.thresholds.get(variant.name)
    findings: list[Finding] = []
    for metrics in run.metrics:
        common: dict[str, Any] = {
            "model": config.name,
            "variant": variant.name,
            "runtime": run.runtime,
        }
        if metrics.non_finite:
            findings.append(
                make_finding(
                    "non-finite",
                    f"{config.name}/{variant.name} on {run.runtime}: output {metrics.output!r} "
                    f"has {metrics.non_finite} NaN/Inf value(s) where the source model has none",
                    location=config.source_location,
                    details={"output": metrics.output, "count": metrics.non_finite},
                    **common,
                )
            )
        settings = plan.for_output(metrics.output) if plan else {}
        thresholds = {key: setting.value for key, setting in settings.items()}
        for violation in violations(metrics, thresholds):
            comparison = "above" if violation.threshold_key in MAX_METRICS else "below"
            sample = (
                f", worst sample {violation.worst_sample}"
                if violation.worst_sample is not None
                else ""
            )
            findings.append(
                make_finding(
                    "divergence",
                    f"{config.name}/{variant.name} on {run.runtime}: output {metrics.output!r} "
                    f"{violation.metric} {violation.value:.6g} is {comparison} "
                    f"{violation.threshold_key} {violation.threshold:g}{sample} "
                    f"(tightest passing: {violation.threshold_key}: "
                    f"{run.tightest.get(metrics.output, {}).get(violation.threshold_key)})",
                    location=settings[violation.threshold_key].location or config.source_location,
                    details={
                        "output": metrics.output,
                        "metric": violation.metric,
                        "value": violation.value,
                        "threshold_key": violation.threshold_key,
                        "threshold": violation.threshold,
                        "worst_sample": violation.worst_sample,
                        "tightest": run.tightest.get(metrics.output, {}),
                    },
                    **common,
                )
            )
    return findings


def check_evaluation(config: ModelConfig, evaluation: EvaluationResult | None) -> list[Finding]:
    """Evaluation data or reference outputs that could not be produced: nothing to compare."""
    if evaluation is None or evaluation.ok:
        return []
    location = (
        _crash_location(evaluation.crash_cause, config)
        if evaluation.crash_cause
        else data_location(config, "evaluation", evaluation.location)
    )
    return [
        make_finding(
            "data-invalid",
            f"{config.name}: evaluation data: {evaluation.error}; outputs not compared",
            model=config.name,
            location=location,
            details={"error": evaluation.error},
        )
    ]

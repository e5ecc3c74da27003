"""Run the stages in order; the only module that knows the order.

policy → versions → for each model: source → conversion worker → inspection →
checks → Report. Every stage's failure for one model becomes findings for that
model; the others still run.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tflite_gate import __version__, checks
from tflite_gate.convert import ConversionRequest, VariantRequest, convert_model
from tflite_gate.data import SourceSpec
from tflite_gate.findings import Finding, Location, make_finding
from tflite_gate.inspect import InvalidModelError, inspect_model
from tflite_gate.policy import (
    GenerateSource,
    LoadedPolicy,
    ModelConfig,
    is_factory,
    load_policy,
    resolve_inside,
    resolve_model,
)
from tflite_gate.report.model import (
    ConverterError,
    EnvironmentInfo,
    ModelReport,
    Report,
    TensorInfo,
    Tool,
    VariantReport,
    WrittenBy,
)
from tflite_gate.sources import classify

Progress = Callable[[str], None]
FailOn = Literal["error", "warning", "never"]

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
    with tempfile.TemporaryDirectory(prefix="tflite-gate-") as scratch_root:
        for index in indices:
            config = resolve_model(loaded, index)
            model_started = time.monotonic()
            progress(f"[{config.name}] {config.source}")
            model_report = ModelReport(name=config.name, source=config.source)
            report.models.append(model_report)
            _run_model(
                config,
                model_report,
                report,
                options.workspace,
                Path(scratch_root),
                artifacts,
                progress,
            )
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
        for name, spec in config.version_specs.items():
            where = str(spec.location)
            if where in seen:
                continue
            seen.add(where)
            written_in_model = loaded.policy.models[index].versions is not None and name in (
                loaded.policy.models[index].versions or {}
            )
            findings += checks.check_version_spec(
                name, spec, config.name if written_in_model else None
            )
    return findings


def _run_model(
    config: ModelConfig,
    model_report: ModelReport,
    report: Report,
    workspace: Path,
    scratch_root: Path,
    artifacts: Path,
    progress: Progress,
) -> None:
    path = None if is_factory(config.source) else resolve_inside(config.source, workspace)
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
        _run_tflite(config, path, model_report, report, workspace)
        return
    _run_conversion(
        config,
        kind,
        path,
        model_report,
        report,
        workspace,
        scratch_root / f"m{config.index}",
        artifacts,
        progress,
    )


def _run_tflite(
    config: ModelConfig, path: Path, model_report: ModelReport, report: Report, workspace: Path
) -> None:
    variant = VariantReport(
        name="tflite",
        quantization="as-is",
        io="as-is",
        status="not-converted",
        artifact=path.relative_to(workspace.resolve()).as_posix(),
    )
    model_report.variants.append(variant)
    started = time.monotonic()
    try:
        variant.inspection = inspect_model(path.read_bytes())
    except InvalidModelError as exc:
        variant.status = "invalid"
        report.add(
            [
                make_finding(
                    "model-load-failed",
                    f"{config.name}: {config.source}: {exc}",
                    model=config.name,
                    variant=variant.name,
                    location=config.source_location,
                )
            ]
        )
        return
    model_report.loaded = True
    model_report.inputs = list(variant.inspection.inputs)
    variant.timings["inspect"] = round(time.monotonic() - started, 3)
    for check in checks.VARIANT_CHECKS:
        report.add(check(config, variant))


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
    config: ModelConfig, kind: str, path: Path | None, workspace: Path, scratch: Path
) -> ConversionRequest:
    calibration = source_spec(config.calibration.value, workspace)
    evaluation = source_spec(config.evaluation.value, workspace)
    return ConversionRequest(
        workspace=str(workspace.resolve()),
        scratch=str(scratch),
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
    workspace: Path,
    scratch: Path,
    artifacts: Path,
    progress: Progress,
) -> None:
    request = _conversion_request(config, kind, path, workspace, scratch)
    progress(f"[{config.name}] converting {len(config.variants)} variant(s) in a worker")
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
        report.add(checks.check_conversion(config, variant, outcome))
        report.add(checks.check_converter_warnings(config, variant, outcome))
        if outcome.ok and outcome.tflite_path:
            _inspect_variant(
                config, variant, Path(outcome.tflite_path), report, workspace, artifacts
            )
        progress(f"[{config.name}/{spec.name}] {variant.status}")


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
    workspace: Path,
    artifacts: Path,
) -> None:
    target = artifacts / config.name / f"{variant.name}.tflite"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(converted, target)
    try:
        variant.artifact = target.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        variant.artifact = str(target)
    started = time.monotonic()
    try:
        variant.inspection = inspect_model(converted.read_bytes())
    except InvalidModelError as exc:
        variant.status = "invalid"
        report.add(
            [
                make_finding(
                    "conversion-failed",
                    f"{config.name}/{variant.name}: the converter wrote an invalid model: {exc}",
                    model=config.name,
                    variant=variant.name,
                    location=config.source_location,
                )
            ]
        )
        return
    variant.timings["inspect"] = round(time.monotonic() - started, 3)
    for check in checks.VARIANT_CHECKS:
        report.add(check(config, variant))

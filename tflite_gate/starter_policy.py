"""`tflite-gate init`: a first policy, measured on the model, that passes as written.

The model is checked once with a probe policy that sets no limit (the variants asked
for, any builtin op, no thresholds), through the same pipeline as `check`, so the
conversions land in the cache the next `check` reuses. The starter policy then
writes down what was measured: the builtin ops used as `ops.allow`, the newest
runtime they need as `target_runtime`, and per variant the measured divergence,
loosened by the margin, as `max_divergence`. Nothing is guessed: an input whose
sizes are unknown stops `init` with the question, and a model that does not convert
or run stops it with the findings. The text is loaded and its thresholds checked
against the probe's metrics before it replaces anything.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tflite_gate.files import write_text_atomic
from tflite_gate.findings import Finding, Severity
from tflite_gate.json_schemas import schema_text
from tflite_gate.layout import GATE_DIRECTORY
from tflite_gate.policy import (
    NAME_PATTERN,
    PolicyError,
    display_path_for,
    load_policy,
    resolve_model,
)
from tflite_gate.policy_yaml import load_yaml_with_marks
from tflite_gate.report.model import (
    MetricName,
    ModelReport,
    OutputMetrics,
    Report,
    VariantReport,
)
from tflite_gate.run_options import CheckOptions, Progress, margin_text
from tflite_gate.runtime_versions import parse_runtime_version
from tflite_gate.suggest import loosened, still_broken

SCHEMA_FILE_NAME = ".tflite-gate.schema.json"
QUANTIZATIONS = ("float", "dynamic", "float16", "int8", "int16x8")
MODEL_SUFFIXES = (".keras", ".h5", ".tflite")
# Float kernels of two CPUs can differ where one measured no error at all: a starting
# threshold never sits below these (before the margin).
REL_RMSE_FLOOR = 1e-5
COSINE_GAP_FLOOR = 1e-7
STARTER_KEYS = ("rel_rmse", "min_cosine")
_SKIPPED_DIRECTORIES = {GATE_DIRECTORY, "node_modules", "site-packages", "__pycache__"}
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class StarterError(Exception):
    """The starter policy does not pass on the data it was made from: a bug in `init`."""


class InitError(Exception):
    """What `init` cannot do as asked (exit 2); the message says what to pass instead."""


@dataclass
class InitRequest:
    workspace: Path
    policy: Path
    source: str | None = None
    name: str | None = None
    variants: list[str] = field(default_factory=lambda: ["float"])
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    margin: float = 1.0
    force: bool = False
    cache_dir: Path | None = None


# --------------------------------------------------------------------------- the request


def find_sources(workspace: Path) -> list[str]:
    """Model files and SavedModel directories in the workspace, relative to it.

    Hidden directories, virtual environments and the gate's own directory are skipped:
    a model inside `.venv` is a dependency's, not the repository's.
    """
    found: list[str] = []
    for directory, subdirectories, files in os.walk(workspace):
        here = Path(directory)
        if (here / "saved_model.pb").is_file():
            found.append(here.relative_to(workspace).as_posix() or ".")
            subdirectories.clear()
            continue
        subdirectories[:] = sorted(
            d
            for d in subdirectories
            if not d.startswith(".")
            and d not in _SKIPPED_DIRECTORIES
            and not (here / d / "pyvenv.cfg").exists()
        )
        found += [
            (here / name).relative_to(workspace).as_posix()
            for name in sorted(files)
            if name.endswith(MODEL_SUFFIXES)
        ]
    return sorted(found)


def _source(request: InitRequest) -> str:
    if request.source:
        return request.source
    found = find_sources(request.workspace)
    if len(found) == 1:
        return found[0]
    if not found:
        raise InitError(
            "pass --source PATH (a .keras, .h5, SavedModel directory or .tflite) or "
            f"package.module:function: no model file is in {request.workspace}"
        )
    raise InitError(f"pass --source with the model to check, one of: {', '.join(found)}")


_GENERIC_FACTORIES = {
    "build",
    "build_model",
    "create",
    "create_model",
    "get_model",
    "make",
    "model",
}


def model_name(source: str) -> str:
    """A policy name from a source: `models/Classifier v2.keras` → `Classifier_v2`,
    `zoo.gram:build` → `gram` (a factory's function name, unless it says nothing)."""
    if ":" in source:
        module, _, function = source.rpartition(":")
        stem = module.rsplit(".", 1)[-1] if function in _GENERIC_FACTORIES else function
    else:
        stem = Path(source.rstrip("/")).stem
    name = _NAME.sub("_", stem).strip("._-")
    return name if name and name[0].isalnum() else f"model{('_' + name) if name else ''}"


def _variant_entries(variants: Sequence[str]) -> list[tuple[str, str]]:
    """(name, quantization) per `--variants` word: `float` is quantization `none`."""
    entries = []
    for word in variants:
        mode = "none" if word in ("float", "none") else word
        if word not in (*QUANTIZATIONS, "none"):
            raise InitError(
                f"pass --variants with some of {', '.join(QUANTIZATIONS)}: {word!r} is not one"
            )
        entries.append(("float" if mode == "none" else mode, mode))
    return list(dict.fromkeys(entries))


# --------------------------------------------------------------------------- the probe


_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def _quoted(text: str) -> str:
    """A YAML scalar that reads back as this string: plain when it is safe, else quoted
    (double-quoted with YAML's own escapes, which round-trip every character; `true`,
    `1.0` or `null` would not read back as strings)."""
    if _PLAIN.fullmatch(text) and load_yaml_with_marks(text)[0] == text:
        return text
    return yaml.safe_dump(text, default_style='"', allow_unicode=False, width=1 << 30).rstrip("\n")


def _number(value: float) -> str:
    """`2e-05` is a string to YAML 1.1 readers (and the policy schema): write `2.0e-05`."""
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def _shapes_text(shapes: dict[str, list[int]]) -> str:
    inner = ", ".join(
        f"{_quoted(name)}: [{', '.join(map(str, dims))}]" for name, dims in shapes.items()
    )
    return "{" + inner + "}"


def probe_policy(
    name: str, source: str, variants: list[tuple[str, str]], shapes: dict[str, list[int]]
) -> str:
    """The policy `init` checks the model with: the variants, and no limit at all."""
    lines = [
        "version: 1",
        "models:",
        f"  - name: {_quoted(name)}",
        f"    source: {_quoted(source)}",
    ]
    if shapes:
        lines.append(f"    input_shapes: {_shapes_text(shapes)}")
    if not source.endswith(".tflite"):
        lines.append("    variants:")
        lines += [
            f"      - {{name: {_quoted(v)}, quantization: {_quoted(q)}}}" for v, q in variants
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the starter


def _starting_value(key: str, measured: float, margin: float) -> float:
    if key == "rel_rmse":
        return loosened("rel_rmse", max(measured, REL_RMSE_FLOOR), margin)
    return loosened("min_cosine", min(measured, 1.0 - COSINE_GAP_FLOOR), margin)


_STARTERS: tuple[tuple[str, MetricName], ...] = (("rel_rmse", "rel_rmse"), ("min_cosine", "cosine"))


def _output_thresholds(metrics: list[OutputMetrics], margin: float) -> dict[str, float]:
    """Starting thresholds for one output, from its worst value over the runtimes."""
    found: dict[str, float] = {}
    for key, metric in _STARTERS:
        values = [m.value(metric) for m in metrics]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if not finite or len(finite) < len(values):
            continue  # an all-zero reference: no relative error to start from
        measured = max(finite) if key == "rel_rmse" else min(finite)
        found[key] = _starting_value(key, measured, margin)
    return found


def variant_thresholds(variant: VariantReport, margin: float) -> dict[str, dict[str, float]]:
    """Output name → starting thresholds, over every run of the variant."""
    by_output: dict[str, list[OutputMetrics]] = {}
    for run in variant.runs:
        for metrics in run.metrics:
            by_output.setdefault(metrics.output, []).append(metrics)
    return {name: _output_thresholds(found, margin) for name, found in by_output.items()}


def _flow(thresholds: dict[str, float]) -> str:
    return "{" + ", ".join(f"{key}: {_number(value)}" for key, value in thresholds.items()) + "}"


def _divergence_lines(per_output: dict[str, dict[str, float]], indent: str) -> Iterator[str]:
    written = {name: t for name, t in per_output.items() if t}
    if not written:
        return
    if len(per_output) == 1:
        yield f"{indent}max_divergence: {_flow(next(iter(written.values())))}"
        return
    yield f"{indent}max_divergence:"
    yield f"{indent}  per_output:"
    for name, thresholds in written.items():
        yield f"{indent}    {_quoted(name)}: {_flow(thresholds)}"


def _used_ops(model: ModelReport) -> list[str]:
    return sorted(
        {
            op.name
            for variant in model.variants
            if variant.inspection
            for op in variant.inspection.ops
            if op.kind == "builtin"
        }
    )


def _needed_runtime(model: ModelReport) -> str | None:
    needed = [v.inspection.required_runtime for v in model.variants if v.inspection]
    known = [version for version in needed if version]
    return max(known, key=parse_runtime_version) if known else None


def _header(source: str, report: Report, margin: float) -> list[str]:
    packages = report.environment.packages
    samples = max((run.samples for v in report.models[0].variants for run in v.runs), default=0)
    day = datetime.now(UTC).date().isoformat()
    tensorflow = packages.get("tensorflow") or "?"
    litert = packages.get("ai-edge-litert") or "?"
    return [
        f"# yaml-language-server: $schema={SCHEMA_FILE_NAME}",
        f"# Written by `tflite-gate init` on {day} from {json.dumps(source)}, measured with",
        f"# TensorFlow {tensorflow} and ai-edge-litert {litert} on {samples} generated evaluation",
        "# samples in [-1, 1): point data.evaluation at real ones (README: Representative",
        "# data) and run `tflite-gate check` again. Thresholds are the measured divergence",
        f"# with a {margin_text(margin)} margin (the error may grow by that share). A broken one:",
        "# `tflite-gate suggest`; what a finding means: `tflite-gate explain RULE`.",
    ]


def starter_policy(
    name: str,
    source: str,
    variants: list[tuple[str, str]],
    shapes: dict[str, list[int]],
    report: Report,
    margin: float,
) -> str:
    """The commented policy text: what the probe measured, written down with a margin."""
    model = report.models[0]
    lines = [*_header(source, report, margin), "version: 1", "models:"]
    lines += [f"  - name: {_quoted(name)}", f"    source: {_quoted(source)}"]
    if shapes:
        lines.append(f"    input_shapes: {_shapes_text(shapes)}")
    ops = _used_ops(model)
    lines += [
        "    ops:",
        "      # The builtin ops the converted model uses: a new one fails the gate until listed.",
        f"      allow: [{', '.join(ops)}]",
    ]
    runtime = _needed_runtime(model)
    if runtime:
        lines += [
            "    versions:",
            "      # The oldest TFLite/LiteRT runtime these ops load on; set the one your app",
            "      # ships: a change that needs a newer one then fails the gate.",
            f"      target_runtime: {_quoted(runtime)}",
        ]
    by_name = {variant.name: variant for variant in model.variants}
    if source.endswith(".tflite"):
        lines.append("    # Add `reference:` (the source model) to compare its outputs as well.")
        return "\n".join(lines) + "\n"
    lines.append("    variants:")
    for variant, mode in variants:
        entry = f"      - name: {_quoted(variant)}"
        lines.append(entry if mode == "none" else f"{entry}\n        quantization: {_quoted(mode)}")
        lines += _divergence_lines(variant_thresholds(by_name[variant], margin), "        ")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- checking it


def _probe_problem(report: Report) -> tuple[int, str] | None:
    """Why the probe's result cannot become a policy (exit code, message), or None."""
    shapes = [
        f
        for f in report.findings
        if f.rule == "policy-invalid" and f.details.get("key") == "input_shapes"
    ]
    if shapes:
        return 2, (
            "pass the sizes your app feeds as --input-shape NAME=1,D1,D2,... (repeat it per "
            f"input): {shapes[0].message}"
        )
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    return (1, _errors_text(errors)) if errors else None


def _errors_text(errors: list[Finding]) -> str:
    listed = "\n".join(f"  {f.rule}: {f.message}" for f in errors)
    return (
        "fix these first (or choose other --variants): init writes a policy for a model "
        f"that converts and runs, and this one did not:\n{listed}"
    )


def check_starter(policy: Path, workspace: Path, report: Report) -> None:
    """The written text loads, and every threshold in it passes on the probe's metrics."""
    loaded = load_policy(policy, workspace)
    broken = still_broken(report.models[0], resolve_model(loaded, 0), finite_only=False)
    if broken:
        raise StarterError(f"the starter policy breaks on its own data: {broken[0]}")


# --------------------------------------------------------------------------- init


@dataclass
class InitOutcome:
    exit_code: int
    messages: list[str] = field(default_factory=list)  # stderr
    written: Path | None = None
    summary: str = ""  # stdout


def _refuse_overwrite(request: InitRequest) -> None:
    if request.policy.is_dir():
        raise InitError(f"pass --policy a file path: {request.policy} is a directory")
    if request.policy.exists() and not request.force:
        raise InitError(f"pass --force to replace {request.policy}: it exists")


def _checked_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InitError(
            "pass --name with letters, digits and _ . - only, starting with a letter or a "
            f"digit: {name!r} cannot name a model (it is a file name in the artifacts)"
        )
    return name


def run_init(request: InitRequest, progress: Progress) -> InitOutcome:
    """Probe the model, write the starter policy (and its schema beside it), or say why not."""
    from tflite_gate.gate import run_gate  # the pipeline: only once the request is sound

    try:
        _refuse_overwrite(request)
        source = _source(request)
        name = _checked_name(request.name or model_name(source))
        variants = _variant_entries(request.variants)
        if source.endswith(".tflite") and request.variants != ["float"]:
            raise InitError("leave out --variants for a .tflite source: it is checked as it is")
    except InitError as error:
        return InitOutcome(2, [str(error)])
    with tempfile.TemporaryDirectory(prefix="tflite-gate-init-") as scratch:
        probe = Path(scratch) / "probe.yml"
        probe.write_text(
            probe_policy(name, source, variants, request.input_shapes), encoding="utf-8"
        )
        options = CheckOptions(
            policy=probe, workspace=request.workspace, cache_dir=request.cache_dir
        )
        outcome = run_gate(options, progress)
    report = outcome.report
    if outcome.exit_code not in (0, 1) or not report.models:
        return InitOutcome(
            outcome.exit_code or 2, outcome.messages or [_errors_text(report.findings)]
        )
    problem = _probe_problem(report)
    if problem:
        return InitOutcome(problem[0], [problem[1]])
    text = starter_policy(name, source, variants, request.input_shapes, report, request.margin)
    with tempfile.TemporaryDirectory(prefix="tflite-gate-init-") as scratch:
        candidate = Path(scratch) / "tflite-gate.yml"
        candidate.write_text(text, encoding="utf-8")
        try:
            check_starter(candidate, request.workspace, report)
        except (StarterError, PolicyError) as error:
            return InitOutcome(3, [f"internal error: {error} (a bug; please report it)"])
    try:
        request.policy.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(request.policy, text)
        write_text_atomic(request.policy.parent / SCHEMA_FILE_NAME, schema_text("policy"))
    except OSError as error:
        return InitOutcome(4, [f"make {request.policy.parent} writable: {error.strerror or error}"])
    shown = display_path_for(request.policy, request.workspace)
    ops = len(_used_ops(report.models[0]))
    return InitOutcome(
        0,
        written=request.policy,
        summary=f"Wrote {shown} ({len(variants)} variant(s), {ops} ops allowed, target_runtime "
        f"{_needed_runtime(report.models[0]) or '-'}) and {SCHEMA_FILE_NAME} beside it; "
        "it passes on this machine: run `tflite-gate check`",
    )

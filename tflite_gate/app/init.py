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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tflite_gate.app.schema import schema_text
from tflite_gate.findings import Finding, Severity
from tflite_gate.judge.suggest import (
    Defect,
    SuggestionError,
    loosened,
    merge,
    metrics_by_output,
    output_defect,
    policy_loosenings,
    policy_mapping,
    still_broken,
    suggest_thresholds,
)
from tflite_gate.policy.edit import EditError, add_variants, block_lines
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import LoadedPolicy, display_path_for, load_policy
from tflite_gate.policy.positions import load_yaml_with_marks
from tflite_gate.policy.resolve import ModelConfig, resolve_model
from tflite_gate.policy.schema import NAME_PATTERN, VariantSpec
from tflite_gate.report.model import (
    FLOAT_ROUNDING_REL_RMSE,
    MetricName,
    ModelReport,
    OutputMetrics,
    Report,
    ThresholdKey,
    VariantReport,
)
from tflite_gate.support.files import write_text_atomic
from tflite_gate.support.layout import GATE_DIRECTORY
from tflite_gate.support.lifetime import owned_scratch
from tflite_gate.support.run_options import CheckOptions, Progress, margin_text
from tflite_gate.tflite.runtime_versions import parse_runtime_version

SCHEMA_FILE_NAME = ".tflite-gate.schema.json"
QUANTIZATIONS = ("float", "dynamic", "float16", "int8", "int16x8")
MODEL_SUFFIXES = (".keras", ".h5", ".tflite")
# Float kernels of two CPUs can differ where one measured no error at all: a starting
# threshold never sits below these (before the margin).
REL_RMSE_FLOOR = FLOAT_ROUNDING_REL_RMSE
COSINE_GAP_FLOOR = 1e-7
STARTER_KEYS: tuple[ThresholdKey, ...] = ("rel_rmse", "min_cosine")
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
    variants: list[str] | None = None  # None: float; with an existing policy, none to add
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
    by_output = metrics_by_output(variant)
    return {name: _output_thresholds(found, margin) for name, found in by_output.items()}


def variant_entry(name: str, mode: str, per_output: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A `variants:` list entry: the name, its quantization and its thresholds (one set
    for a single output, else `per_output`)."""
    entry: dict[str, Any] = {"name": name}
    if mode != "none":
        entry["quantization"] = mode
    written = {output: thresholds for output, thresholds in per_output.items() if thresholds}
    if written and len(per_output) == 1:
        entry["max_divergence"] = next(iter(written.values()))
    elif written:
        entry["max_divergence"] = {"per_output": written}
    return entry


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
    entries = [
        variant_entry(variant, mode, variant_thresholds(by_name[variant], margin))
        for variant, mode in variants
    ]
    lines += ["    variants:", *block_lines(entries, 6)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- checking it


def probe_problem(
    report: Report, margin: float, *, kept_thresholds: bool = False
) -> tuple[int, str] | None:
    """Why the probe's result cannot become a policy (exit code, message), or None.

    Besides sizes to ask for and error findings, a variant whose starting thresholds
    would check nothing (`suggest.output_defect`: a min_cosine at or below 0, a rel_rmse
    at or above 1, a collapsed output) is refused: the policy would pass it as written.
    With `kept_thresholds` (the probe kept the policy's own), a finite divergence is
    measured, to be loosened, and no problem.
    """
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
    errors = [
        f
        for f in report.findings
        if f.severity is Severity.ERROR
        and not (kept_thresholds and f.rule == "divergence" and not f.details.get("infinite"))
    ]
    if errors:
        return 1, _errors_text(errors)
    defects = [defect.text() for defect in _defects(report.models[0], margin)]
    if defects:
        listed = "\n".join(f"  {defect}" for defect in defects)
        return 1, (
            "fix these first (or choose other --variants): init writes thresholds that "
            f"check something, and none would for these:\n{listed}"
        )
    return None


def _defects(model: ModelReport, margin: float) -> Iterator[Defect]:
    for variant in model.variants:
        for output, measured in metrics_by_output(variant).items():
            why = output_defect(measured, margin, None, STARTER_KEYS)
            if why is not None:
                yield Defect(model.name, variant.name, output, why)
                break


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
        raise InitError(
            f"pass --force to replace {request.policy}, or --variants to add variants to it: "
            "it exists"
        )


def _checked_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InitError(
            "pass --name with letters, digits and _ . - only, starting with a letter or a "
            f"digit: {name!r} cannot name a model (it is a file name in the artifacts)"
        )
    return name


def run_init(request: InitRequest, progress: Progress) -> InitOutcome:
    """Probe the model, write the starter policy (and its schema beside it), or say why not.

    With `--variants` and an existing policy (no `--force`), add those variants to it
    instead (`add_variants_to_policy`).
    """
    if request.variants is not None and request.policy.is_file() and not request.force:
        return add_variants_to_policy(request, progress)
    try:
        _refuse_overwrite(request)
        source = _source(request)
        name = _checked_name(request.name or model_name(source))
        variants = _variant_entries(request.variants or ["float"])
        if source.endswith(".tflite") and request.variants not in (None, ["float"]):
            raise InitError("leave out --variants for a .tflite source: it is checked as it is")
    except InitError as error:
        return InitOutcome(2, [str(error)])
    probed = _probe(request, probe_policy(name, source, variants, request.input_shapes), progress)
    if isinstance(probed, InitOutcome):
        return probed
    report = probed
    text = starter_policy(name, source, variants, request.input_shapes, report, request.margin)
    with owned_scratch("tflite-gate-init-") as scratch:
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


def _probe(
    request: InitRequest, policy_text: str, progress: Progress, *, kept_thresholds: bool = False
) -> Report | InitOutcome:
    """The probe's report, checked with `policy_text`; or why it cannot become a policy."""
    from tflite_gate.app.gate import run_gate  # the pipeline: only once the request is sound

    with owned_scratch("tflite-gate-init-") as scratch:
        probe = Path(scratch) / "probe.yml"
        probe.write_text(policy_text, encoding="utf-8")
        options = CheckOptions(
            policy=probe, workspace=request.workspace, cache_dir=request.cache_dir
        )
        outcome = run_gate(options, progress)
    report = outcome.report
    if outcome.exit_code not in (0, 1) or not report.models:
        return InitOutcome(
            outcome.exit_code or 2, outcome.messages or [_errors_text(report.findings)]
        )
    problem = probe_problem(report, request.margin, kept_thresholds=kept_thresholds)
    if problem:
        return InitOutcome(problem[0], [problem[1]])
    return report


# --------------------------------------------------------------------------- init --variants


def add_variants_to_policy(request: InitRequest, progress: Progress) -> InitOutcome:
    """Add `--variants` to a model of the existing policy, measured as `init` measures.

    The model is checked with the policy's own settings (data, runtimes, limits,
    thresholds) minus `ops.allow` and `target_runtime`. The new entries are inserted
    into the file as text, so the user's comments and edits stay. What the new variants
    need beyond `ops.allow` and `target_runtime` is said, not written: those are the
    user's decisions, and `tflite-gate suggest` offers them marked as loosenings.
    """
    try:
        loaded = load_policy(request.policy, request.workspace)
    except PolicyError as error:
        return InitOutcome(2, [str(issue) for issue in error.issues])
    try:
        index = _model_to_extend(loaded, request)
        config = resolve_model(loaded, index)
        added = _new_variants(config, request.variants or [], loaded.display_path)
    except InitError as error:
        return InitOutcome(2, [str(error)])
    probe = _extension_probe(loaded, index, added)
    probed = _probe(request, probe, progress, kept_thresholds=True)
    if isinstance(probed, InitOutcome):
        return probed
    try:
        text = _with_new_variants(request, loaded, index, added, probed)
    except EditError as error:
        return InitOutcome(2, [f"{error} in {loaded.display_path}, then run init again"])
    except (SuggestionError, PolicyError) as error:
        return InitOutcome(3, [f"internal error: {error} (a bug; please report it)"])
    problem = _extension_problem(text, request, loaded, index, probed)
    if problem is not None:
        return problem
    try:
        write_text_atomic(request.policy, text)
    except OSError as error:
        return InitOutcome(4, [f"make {request.policy} writable: {error.strerror or error}"])
    return InitOutcome(
        0, written=request.policy, summary=_added_summary(loaded, config, added, probed)
    )


def _with_new_variants(
    request: InitRequest,
    loaded: LoadedPolicy,
    index: int,
    added: list[tuple[str, str]],
    probed: Report,
) -> str:
    """The policy text with the new variants' entries: starting thresholds, and a
    loosened value where they break one they inherit from the model or `defaults`
    (placed as `suggest` places it)."""
    by_name = {variant.name: variant for variant in probed.models[0].variants}
    entries = [
        variant_entry(name, mode, variant_thresholds(by_name[name], request.margin))
        for name, mode in added
    ]
    config = resolve_model(loaded, index)
    own = loaded.policy.models[index].variants is not None
    inherited = [] if own else [_as_written(spec) for spec in config.variants]
    original = request.policy.read_text(encoding="utf-8")
    text = add_variants(original, index, entries, inherited)
    suggestion = suggest_thresholds(probed, _load_text(text, request), request.margin)
    if suggestion is None:
        return text
    model = next(
        m for m in yaml.safe_load(suggestion.snippet)["models"] if m["name"] == config.name
    )
    placed = {entry["name"]: entry for entry in model["variants"]}
    entries = [merge(entry, placed.get(entry["name"], {})) for entry in entries]
    return add_variants(original, index, entries, inherited)


def _load_text(text: str, request: InitRequest) -> LoadedPolicy:
    """`text` loaded as the policy would be (PolicyError if it is not one)."""
    with owned_scratch("tflite-gate-init-") as scratch:
        candidate = Path(scratch) / request.policy.name
        candidate.write_text(text, encoding="utf-8")
        return load_policy(candidate, request.workspace)


def _model_to_extend(loaded: LoadedPolicy, request: InitRequest) -> int:
    """The model named by --name (or whose source is --source), or the only one."""
    names = [model.name for model in loaded.policy.models]
    if request.name is not None:
        if request.name not in names:
            raise InitError(
                f"pass --name with one of {', '.join(names)}: {loaded.display_path} has no "
                f"model {request.name!r}"
            )
        return names.index(request.name)
    sources = [model.source for model in loaded.policy.models]
    if request.source is not None and sources.count(request.source) == 1:
        return sources.index(request.source)
    if len(names) == 1:
        return 0
    raise InitError(f"pass --name with the model to add variants to, one of: {', '.join(names)}")


def _new_variants(config: ModelConfig, words: list[str], shown: str) -> list[tuple[str, str]]:
    if config.source.endswith(".tflite"):
        raise InitError(
            f"leave out --variants for {config.name}: a .tflite source is checked as it is"
        )
    have = [variant.name for variant in config.variants]
    added = [(name, mode) for name, mode in _variant_entries(words) if name not in have]
    if not added:
        raise InitError(
            f"pass --variants with a variant {config.name} does not have yet: {shown} lists "
            f"{', '.join(have)}"
        )
    return added


def _extension_probe(loaded: LoadedPolicy, index: int, added: list[tuple[str, str]]) -> str:
    """The policy as the user wrote it, for this model and its new variants only, without
    the limits the new variants may need loosened (`ops.allow`, `target_runtime`). The
    thresholds they inherit stay: the runs record which ones they break."""
    mapping = policy_mapping(loaded.policy)
    model = mapping["models"][index]
    model["variants"] = [variant_entry(name, mode, {}) for name, mode in added]
    for block in (mapping.get("defaults") or {}, model):
        (block.get("ops") or {}).pop("allow", None)
        (block.get("versions") or {}).pop("target_runtime", None)
    mapping["models"] = [model]
    return yaml.safe_dump(mapping, sort_keys=False)


def _as_written(spec: VariantSpec) -> dict[str, Any]:
    written: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return written


def _extension_problem(
    text: str, request: InitRequest, loaded: LoadedPolicy, index: int, probed: Report
) -> InitOutcome | None:
    """The edited text must load, keep everything but the model's variants, and pass
    its thresholds on the probe's metrics."""
    try:
        edited = _load_text(text, request)
    except PolicyError as error:
        return InitOutcome(3, [f"internal error: {error} (a bug; please report it)"])
    before, after = policy_mapping(loaded.policy), policy_mapping(edited.policy)
    for mapping in (before, after):
        mapping["models"][index].pop("variants", None)
    if before != after:
        return InitOutcome(3, ["internal error: adding variants changed other settings (a bug)"])
    broken = still_broken(probed.models[0], resolve_model(edited, index), finite_only=False)
    if broken:
        return InitOutcome(
            1,
            [
                "fix these first (or choose other --variants): the new variants break "
                f"thresholds no value passes: {broken[0]}"
            ],
        )
    return None


def _added_summary(
    loaded: LoadedPolicy, config: ModelConfig, added: list[tuple[str, str]], probed: Report
) -> str:
    names = ", ".join(name for name, _ in added)
    summary = (
        f"Added {names} to {loaded.display_path} for model {config.name}, with thresholds "
        "measured as init measures them; nothing else in the file changed"
    )
    if loaded.policy.models[config.index].variants is None:
        copied = ", ".join(variant.name for variant in config.variants)
        summary += f" (its inherited variants {copied} are now listed in the model)"
    needs = policy_loosenings(probed, loaded)
    if not needs:
        return f"{summary}: run `tflite-gate check`"
    listed = "\n".join(f"  {need.comment}" for need in needs)
    return (
        f"{summary}.\nRun `tflite-gate check`, then `tflite-gate suggest` for the snippet, "
        f"if the app can take what the new variants need and the policy does not allow "
        f"yet:\n{listed}"
    )

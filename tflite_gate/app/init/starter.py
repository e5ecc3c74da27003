"""The starter policy `init` writes: what the probe measured, written down with a margin.

The builtin ops the converted model uses become `ops.allow`, the oldest runtime
they load on `target_runtime`, and per variant the measured divergence, loosened by
the margin, `max_divergence`. The text is YAML written by hand (with comments that
say what each value is for); `check_starter` loads it back and checks its thresholds
against the probe's own metrics before `init` replaces anything with it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tflite_gate.judge.suggest import loosened, metrics_by_output, still_broken
from tflite_gate.policy.edit import block_lines
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.positions import load_yaml_with_marks
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.report.model import (
    FLOAT_ROUNDING_REL_RMSE,
    MetricName,
    ModelReport,
    OutputMetrics,
    Report,
    VariantReport,
)
from tflite_gate.support.run_options import margin_text
from tflite_gate.tflite.runtime_versions import parse_runtime_version

SCHEMA_FILE_NAME = ".tflite-gate.schema.json"
# Float kernels of two CPUs can differ where one measured no error at all: a starting
# threshold never sits below these (before the margin).
REL_RMSE_FLOOR = FLOAT_ROUNDING_REL_RMSE
COSINE_GAP_FLOOR = 1e-7


class StarterError(Exception):
    """The starter policy does not pass on the data it was made from: a bug in `init`."""


_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def quoted(text: str) -> str:
    """A YAML scalar that reads back as this string: plain when it is safe, else quoted
    (double-quoted with YAML's own escapes, which round-trip every character; `true`,
    `1.0` or `null` would not read back as strings)."""
    if _PLAIN.fullmatch(text) and load_yaml_with_marks(text)[0] == text:
        return text
    return yaml.safe_dump(text, default_style='"', allow_unicode=False, width=1 << 30).rstrip("\n")


def shapes_text(shapes: dict[str, list[int]]) -> str:
    """`input_shapes` as a one-line flow mapping, so the policy shows it as `--input-shape`
    gave it."""
    inner = ", ".join(
        f"{quoted(name)}: [{', '.join(map(str, dims))}]" for name, dims in shapes.items()
    )
    return "{" + inner + "}"


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


def used_ops(model: ModelReport) -> list[str]:
    """The builtin ops any variant uses: the `ops.allow` a new op must be added to."""
    return sorted(
        {
            op.name
            for variant in model.variants
            if variant.inspection
            for op in variant.inspection.ops
            if op.kind == "builtin"
        }
    )


def needed_runtime(model: ModelReport) -> str | None:
    """The newest runtime any variant needs: the oldest `target_runtime` that loads them all."""
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
    lines += [f"  - name: {quoted(name)}", f"    source: {quoted(source)}"]
    if shapes:
        lines.append(f"    input_shapes: {shapes_text(shapes)}")
    ops = used_ops(model)
    lines += [
        "    ops:",
        "      # The builtin ops the converted model uses: a new one fails the gate until listed.",
        f"      allow: [{', '.join(ops)}]",
    ]
    runtime = needed_runtime(model)
    if runtime:
        lines += [
            "    versions:",
            "      # The oldest TFLite/LiteRT runtime these ops load on; set the one your app",
            "      # ships: a change that needs a newer one then fails the gate.",
            f"      target_runtime: {quoted(runtime)}",
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


def check_starter(policy: Path, workspace: Path, report: Report) -> None:
    """The written text loads, and every threshold in it passes on the probe's metrics."""
    loaded = load_policy(policy, workspace)
    broken = still_broken(report.models[0], resolve_model(loaded, 0), finite_only=False)
    if broken:
        raise StarterError(f"the starter policy breaks on its own data: {broken[0]}")

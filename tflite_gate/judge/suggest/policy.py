"""`tflite-gate suggest`: thresholds, `ops.allow` additions and a `target_runtime`
as one snippet, each loosening marked as what it is, checked before it is offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from tflite_gate.findings import Finding, Location
from tflite_gate.judge.checks import check_ops_allowed, check_runtime
from tflite_gate.judge.suggest.defects import Defect, find_defects
from tflite_gate.judge.suggest.measure import SuggestionError, configured_models, measured_text
from tflite_gate.judge.suggest.snippet import PathKey, block_in, merge, pasted_policy, yaml_text
from tflite_gate.judge.suggest.thresholds import suggest_thresholds, verify
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import (
    ModelReport,
    Report,
    ThresholdSuggestion,
)
from tflite_gate.support.run_options import DEFAULT_MARGIN, margin_text
from tflite_gate.tflite.runtime_versions import parse_runtime_version, runtime_version_less


@dataclass(frozen=True)
class Loosening:
    """A setting other than a threshold that the variants need loosened, said as such."""

    model: str
    entry: PathKey  # the model's block, where the snippet writes it
    rule: str  # the finding it removes
    ops: tuple[str, ...]  # op-not-allowed: the ops it allows
    block: dict[str, Any]  # what it writes in the model's block
    comment: str

    def fixes(self, finding: Finding) -> bool:
        """Whether `finding` goes away with this loosening."""
        if finding.model != self.model or finding.rule != self.rule:
            return False
        return not self.ops or finding.op in self.ops


def policy_loosenings(report: Report, loaded: LoadedPolicy) -> list[Loosening]:
    """The `ops.allow` additions and the `target_runtime` the report's variants need.

    Written in the model's own block, so other models keep their limits. An op in
    `ops.deny` is never allowed: denying it was a decision, not a limit found too tight.
    """
    found = []
    for model, config in configured_models(report, loaded):
        for loosening in (_allowing_more(model, config), _newer_runtime(model, config)):
            if loosening is not None:
                found.append(loosening)
    return found


def _allowing_more(model: ModelReport, config: ModelConfig) -> Loosening | None:
    allow, deny = config.allow_ops.value, config.deny_ops.value
    if allow is None:
        return None
    users: dict[str, list[str]] = {}
    for variant in model.variants:
        for op in variant.inspection.ops if variant.inspection else []:
            if op.kind == "builtin" and op.name not in allow and op.name not in deny:
                users.setdefault(op.name, []).append(variant.name)
    if not users:
        return None
    added = sorted(users)
    variants = ", ".join(dict.fromkeys(name for op in added for name in users[op]))
    return Loosening(
        model.name,
        ("models", config.index),
        "op-not-allowed",
        tuple(added),
        {"ops": {"allow": [*allow, *added]}},
        f"{model.name}: ops.allow + {', '.join(added)} (used by {variants}; "
        f"{_written_at(config.allow_ops.location)}): keep it only if the app's runtime has them",
    )


def _newer_runtime(model: ModelReport, config: ModelConfig) -> Loosening | None:
    target = config.target_runtime.value
    if target is None:
        return None
    needs: dict[str, list[str]] = {}  # runtime version → the variants that need it
    for variant in model.variants:
        inspection = variant.inspection
        known = (inspection.required_runtime, inspection.metadata_min_runtime) if inspection else ()
        for version in known:
            if version is not None and _newer_than(version, target):
                needs.setdefault(version, []).append(variant.name)
    if not needs:
        return None
    needed = max(needs, key=parse_runtime_version)
    variants = ", ".join(dict.fromkeys(name for names in needs.values() for name in names))
    return Loosening(
        model.name,
        ("models", config.index),
        "runtime-too-old",
        (),
        {"versions": {"target_runtime": needed}},
        f"{model.name}: target_runtime {target} -> {needed} (needed by {variants}; "
        f"{_written_at(config.target_runtime.location)}): keep it only if every device the "
        f"app ships to runs {needed} or newer",
    )


def _newer_than(version: str, target: str) -> bool:
    try:
        return runtime_version_less(target, version)
    except ValueError:  # metadata no version parser reads: check_runtime ignores it too
        return False


@dataclass(frozen=True)
class PolicySuggestion:
    """What `tflite-gate suggest` offers: thresholds, ops and a runtime, as one snippet."""

    thresholds: ThresholdSuggestion | None
    loosenings: list[Loosening]
    defects: list[Defect]
    snippet: str  # empty when nothing can be loosened

    def covers(self, finding: Finding) -> bool:
        """Whether the suggestion answers `finding`: a loosening removes it, or it is a
        finite divergence (a threshold loosened, or a variant listed in `defects`)."""
        if finding.rule == "divergence":
            return finding.infinite is None
        return any(loosening.fixes(finding) for loosening in self.loosenings)


def suggest_policy(
    report: Report, loaded: LoadedPolicy, margin: float = DEFAULT_MARGIN
) -> PolicySuggestion:
    """Every loosening the report's variants need, merged into one snippet and checked.

    Raises SuggestionError if the snippet, merged into the policy, leaves a threshold
    (`verify`) or a finding a loosening claims to remove: a bug, never shown as advice.
    """
    thresholds = suggest_thresholds(report, loaded, margin)
    loosenings = policy_loosenings(report, loaded)
    tree: dict[str, Any] = {}
    for loosening in loosenings:
        block = block_in(tree, loosening.entry, loaded)
        block.update(merge(block, loosening.block))
    if thresholds is not None:
        tree = merge(tree, yaml.safe_load(thresholds.snippet))
    snippet = yaml_text(tree) if tree else ""
    defects = find_defects(report, loaded, margin)
    if snippet:
        verify(snippet, report, loaded, defects)
        _verify_loosenings(pasted_policy(snippet, loaded), report, loosenings)
    return PolicySuggestion(thresholds, loosenings, defects, snippet)


def _verify_loosenings(pasted: LoadedPolicy, report: Report, loosenings: list[Loosening]) -> None:
    """Raise SuggestionError if the pasted policy still gives a finding a loosening fixes."""
    for model, config in configured_models(report, pasted):
        for variant in model.variants:
            for finding in check_ops_allowed(config, variant) + check_runtime(config, variant):
                if any(loosening.fixes(finding) for loosening in loosenings):
                    raise SuggestionError(f"{finding.message}, with the snippet")


_SAFE_COMMENT = re.compile(r"[^\x20-\x7e]")


def annotated_snippet(suggestion: PolicySuggestion, policy_path: str) -> str:
    """The snippet with a comment per loosening: what it loosens, where, what was measured."""
    header = f"# Merge into {policy_path} (list entries by name)."
    thresholds = suggestion.thresholds
    if thresholds is not None:
        header += (
            f" Margin {margin_text(thresholds.margin)}: the measured error may grow by that share."
        )
    lines = [header, *(f"# loosens {item.comment}" for item in suggestion.loosenings)]
    for item in thresholds.thresholds if thresholds else []:
        output = f" output {item.output!r}" if item.output else ""
        measured = measured_text(item.measured, item.threshold, item.value)
        lines.append(
            f"# loosens {item.model}/{item.variant}{output}: {item.key} {item.threshold!r} "
            f"({_written_at(item.location)}) measured {measured} -> {item.value!r}"
        )
    return "\n".join(_SAFE_COMMENT.sub("?", line) for line in lines) + "\n" + suggestion.snippet


def _written_at(location: Location | None) -> str:
    return f"{location.path}:{location.line}" if location and location.line else "default"

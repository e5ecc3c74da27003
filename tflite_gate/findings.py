"""Findings: what the gate saw, in the one shape every reporter reads.

Rule ids are a stable contract (scripts and users grep for them): add new ones,
never rename one. `RuleId` lists them; `tflite_gate.rules` gives each its severity,
title, fix hint and explanation (a test keeps the two equal).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RuleId = Literal[
    "policy-invalid",
    "model-not-found",
    "model-load-failed",
    "conversion-failed",
    "converter-warning",
    "op-not-allowed",
    "flex-op",
    "custom-op",
    "runtime-too-old",
    "version-mismatch",
    "data-invalid",
    "runtime-unavailable",
    "unfrozen-variables",
    "interpreter-error",
    "interpreter-crash",
    "interpreter-timeout",
    "output-mismatch",
    "divergence",
    "non-finite",
    "threshold-not-applied",
    "size-budget",
    "latency-budget",
    "baseline-regression",
    "internal-error",
    "environment-error",
    "cancelled",
    "shard-missing",
    "usage-error",
]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"

    @property
    def rank(self) -> int:
        """Higher is more severe; used to order findings and apply `fail_on`."""
        return {Severity.ERROR: 2, Severity.WARNING: 1, Severity.NOTICE: 0}[self]


class Location(BaseModel):
    """Where a reviewer would change something; `path` is relative to the workspace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class Finding(BaseModel):
    """One observation that may fail the gate."""

    model_config = ConfigDict(extra="forbid")

    rule: RuleId
    severity: Severity
    message: str
    model: str | None = None
    variant: str | None = None
    runtime: str | None = None
    location: Location | None = None
    details: dict[str, Any] = Field(default_factory=dict)


# Divergence findings carry each run's own numbers and worst sample: one per run.
_UNGROUPED_RULES = frozenset({"divergence"})


def _variant_free_key(finding: Finding) -> tuple[object, ...] | None:
    """What a finding says with its variant's name taken out; None if it has no variant."""
    if finding.variant is None or finding.rule in _UNGROUPED_RULES:
        return None
    prefix = f"{finding.model}/{finding.variant}" if finding.model else finding.variant
    message = finding.message.replace(prefix, finding.model or "", 1)
    return (
        finding.rule,
        finding.severity,
        finding.model,
        finding.runtime,
        finding.location,
        message,
    )


def group_across_variants(findings: list[Finding]) -> list[Finding]:
    """One finding per problem: the same finding for several variants becomes one.

    Findings equal but for the variant name (rule, severity, model, runtime, location
    and message) merge into the first one's place, with `variant` None, the variants
    listed in `details["variants"]`, and a message naming them. A finding that only
    one variant has is kept as it is.
    """
    groups: dict[tuple[object, ...], list[Finding]] = {}
    order: list[tuple[object, ...] | Finding] = []
    for finding in findings:
        key = _variant_free_key(finding)
        if key is None:
            order.append(finding)
            continue
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(finding)
    result: list[Finding] = []
    for item in order:
        if isinstance(item, Finding):
            result.append(item)
            continue
        group = groups[item]
        if len(group) == 1:
            result.append(group[0])
            continue
        variants = [str(f.variant) for f in group]
        first = group[0]
        result.append(
            first.model_copy(
                update={
                    "variant": None,
                    "message": f"{item[-1]} (in variants {', '.join(variants)})",
                    "details": {**first.details, "variants": variants},
                }
            )
        )
    return result


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by model and variant; stable so checks keep their order."""
    return sorted(
        findings,
        key=lambda f: (-f.severity.rank, f.model or "", f.variant or ""),
    )

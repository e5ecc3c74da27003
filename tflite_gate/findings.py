"""Findings: what the gate saw, in the one shape every reporter reads.

Rule ids are a stable contract (scripts and users grep for them): add new ones,
never rename one. `RuleId` lists them; `tflite_gate.rules` gives each its severity,
title, fix hint and explanation (a test keeps the two equal).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal, TypedDict

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


Infinity = Literal["inf", "-inf"]


class Subject(TypedDict, total=False):
    """What a finding is about, as typed fields: the facts that code reads back.

    `make_finding` takes them as keywords; everything else a check records for people
    and scripts goes in `details`.
    """

    key: str | None
    op: str | None
    flex_op: str | None
    package: str | None
    output: str | None
    metric: str | None
    threshold_key: str | None
    infinite: Infinity | None
    error: str | None
    errno: str | None
    hint: str | None
    variants: list[str] | None


SUBJECT_FIELDS: tuple[str, ...] = tuple(Subject.__annotations__)
"""The typed fields that were `details` keys in report schema version 1, in order."""


class Finding(BaseModel):
    """One observation that may fail the gate.

    The typed fields after `location` say what the finding is about where code needs to
    know it (the verdict, `suggest`, `init`, SARIF fingerprints, JUnit cases); `details`
    holds the rest of what the check recorded, for people and scripts.
    """

    model_config = ConfigDict(extra="forbid")

    rule: RuleId
    severity: Severity
    message: str
    model: str | None = None
    variant: str | None = None
    runtime: str | None = None
    location: Location | None = None
    key: str | None = Field(
        default=None,
        description="The policy key the finding is about (e.g. `input_shapes`, "
        "`variants[1].quantization`, a `regression` key such as `max_size_increase`).",
    )
    op: str | None = Field(
        default=None,
        description="The op it is about: a builtin, custom or Flex op, or the TensorFlow op "
        "the converter named.",
    )
    flex_op: str | None = Field(
        default=None, description="The Select TF op (FlexXxx) a TensorFlow op would need."
    )
    package: str | None = Field(
        default=None, description="The installed package a version requirement is about."
    )
    output: str | None = Field(default=None, description="The model output it is about.")
    metric: str | None = Field(default=None, description="The metric of a broken threshold.")
    threshold_key: str | None = Field(
        default=None, description="The threshold (max_abs, min_cosine, ...) broken or skipped."
    )
    infinite: Infinity | None = Field(
        default=None,
        description="A broken threshold's measured value is infinite, and which way: no "
        "threshold passes it.",
    )
    error: str | None = Field(
        default=None, description="The error text the finding reports (a load, data, runtime)."
    )
    errno: str | None = Field(
        default=None,
        description="The errno name (ENOSPC, EROFS, ...) of a file the gate could not write.",
    )
    hint: str | None = Field(
        default=None, description="A concrete fix the check worked out (e.g. a fixed batch)."
    )
    variants: list[str] | None = Field(
        default=None,
        description="The variants this finding stands for, when the same finding for several "
        "variants was reported once (its `variant` is then null).",
    )
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
    listed in `variants`, and a message naming them. A finding that only
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
                    "variants": variants,
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

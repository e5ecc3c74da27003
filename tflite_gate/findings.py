"""Findings: what the gate saw, in the one shape every reporter reads.

Rule ids are a stable contract (scripts and users grep for them): add new ones,
never rename one. Each rule carries a title and a fix hint so reporters can tell
the user what to do, not only what went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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

    rule: str
    severity: Severity
    message: str
    model: str | None = None
    variant: str | None = None
    runtime: str | None = None
    location: Location | None = None
    details: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    hint: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "policy-invalid",
            Severity.ERROR,
            "The policy file is invalid",
            "Do what the message says, in the policy file (at its line and column when the "
            "message has them); unknown keys are errors so a typo cannot silently disable a "
            "check.",
        ),
        Rule(
            "model-not-found",
            Severity.ERROR,
            "The model source does not exist",
            "Check `source` in the policy: paths are relative to the workspace root; a factory "
            "is written `package.module:function`.",
        ),
        Rule(
            "model-load-failed",
            Severity.ERROR,
            "The model could not be loaded",
            "Apply the fix the message leads with: it names what loading the model needs (a "
            "module or package to install, a factory for a weights-only .h5) or the limit "
            "the load ran into. `tflite-gate explain model-load-failed` lists every cause "
            "and its fix.",
        ),
        Rule(
            "conversion-failed",
            Severity.ERROR,
            "The TFLite converter failed",
            "Apply the fix the message leads with: it names what to change for the cause the "
            "converter reported (an op to replace at the annotated line, a fixed batch, "
            "another quantization, a limit to raise). `tflite-gate explain conversion-failed` "
            "lists every cause and its fix.",
        ),
        Rule(
            "converter-warning",
            Severity.WARNING,
            "The converter warned",
            "Read the converter's message: such warnings often mean an op fell back to "
            "float, to Flex, or to a custom op.",
        ),
        Rule(
            "op-not-allowed",
            Severity.ERROR,
            "An op outside the policy's op list",
            "Add the op to `ops.allow` if the target runtime supports it, or change the model "
            "so it avoids the op. QUANTIZE and DEQUANTIZE come from a quantized variant with "
            "float32 inputs and outputs (`io: int8` leaves them out); SHAPE, PACK and "
            "STRIDED_SLICE from a dynamic batch (a fixed one in `input_shapes` leaves them out).",
        ),
        Rule(
            "flex-op",
            Severity.ERROR,
            "The model needs Select TF (Flex) ops",
            "Flex ops need the Flex delegate linked into the app (several MB) and do not run "
            "on microcontrollers: replace the op, or set `ops.select_tf_ops: true`.",
        ),
        Rule(
            "custom-op",
            Severity.ERROR,
            "The model contains a custom op",
            "A custom op must be implemented and registered in the app: list it in "
            "`ops.custom` once it is, or replace it with builtin ops. To verify its numerics, "
            "give a runtime the kernels with `custom_op_registerers`.",
        ),
        Rule(
            "runtime-too-old",
            Severity.ERROR,
            "The model needs a newer runtime than the target",
            "Raise `versions.target_runtime` if the devices run a newer runtime, or avoid the "
            "op versions named (for example another quantization mode).",
        ),
        Rule(
            "version-mismatch",
            Severity.ERROR,
            "An installed package is outside its required version range",
            "Install a version inside the specifier, or update the specifier in `versions`.",
        ),
        Rule(
            "data-invalid",
            Severity.ERROR,
            "Representative data does not fit the model",
            "Give one array per model input, keyed by input name, first axis = samples, "
            "with the model's dtype and sample shape and finite values.",
        ),
        Rule(
            "runtime-unavailable",
            Severity.ERROR,
            "A runtime could not be installed or imported",
            "Check the runtime's requirement string and its extra requirements.",
        ),
        Rule(
            "unfrozen-variables",
            Severity.ERROR,
            "The model reads variables nothing initialises",
            "Convert from the Keras model or a SavedModel holding the variables, so the "
            "converter freezes them into constants or initialises them (CALL_ONCE).",
        ),
        Rule(
            "interpreter-error",
            Severity.ERROR,
            "The interpreter raised an error",
            "Read the runtime's message: \"Didn't find op for builtin opcode ... version N\" "
            "means the runtime is older than the converter (see `runtime-too-old`); "
            '"unresolved custom op" means no kernel is registered for it (see `custom-op`).',
        ),
        Rule(
            "interpreter-crash",
            Severity.ERROR,
            "The interpreter crashed",
            "Run the saved reproducer; report the crash to the runtime with it.",
        ),
        Rule(
            "interpreter-timeout",
            Severity.ERROR,
            "The interpreter did not finish in time",
            "Raise the timeout if the model is just slow, otherwise run the reproducer.",
        ),
        Rule(
            "output-mismatch",
            Severity.ERROR,
            "Converted outputs do not match the source model's outputs",
            "Check output names and shapes of the source model and the converted model.",
        ),
        Rule(
            "divergence",
            Severity.ERROR,
            "Outputs diverge from the source model beyond the threshold",
            "Improve calibration data or quantization settings, or loosen the threshold to "
            "the reported minimum if the accuracy is acceptable.",
        ),
        Rule(
            "non-finite",
            Severity.ERROR,
            "Outputs contain NaN or Inf",
            "Look for overflow after quantization or a division that the float model avoided.",
        ),
        Rule(
            "threshold-not-applied",
            Severity.NOTICE,
            "A threshold from the policy was not applied",
            "A model-wide `min_top1` gates classification outputs only: list the outputs in "
            "the model's `classification:`, or write `min_top1` under `per_output`. A "
            "`.tflite` source without `reference:` has nothing to compare with: add one (on "
            "several runtimes, the first one's outputs are the others' reference).",
        ),
        Rule(
            "size-budget",
            Severity.ERROR,
            "The model is larger than its budget",
            "Quantize, prune, or raise the size budget.",
        ),
        Rule(
            "latency-budget",
            Severity.ERROR,
            "The model is slower than its budget",
            "Quantize, simplify the model, or raise the latency budget.",
        ),
        Rule(
            "baseline-regression",
            Severity.ERROR,
            "Worse than the baseline report",
            "Compare with the base branch's report and fix the regression.",
        ),
        Rule(
            "internal-error",
            Severity.ERROR,
            "tflite-gate hit an internal error",
            "This is a bug in tflite-gate: please report it with the JSON report attached.",
        ),
        Rule(
            "environment-error",
            Severity.ERROR,
            "The gate could not read or write a file it needed",
            "Not a bug and not the model: free disk space or fix the permissions where the "
            "message points (artifacts: --artifacts; runtime environments: --cache-dir; "
            "temporary files: TMPDIR), then run the gate again. Results that need the file "
            "are missing from the report; the other models were checked.",
        ),
        Rule(
            "cancelled",
            Severity.ERROR,
            "The run was cancelled",
            "The job was cancelled (SIGTERM or SIGINT) before every model was checked: the "
            "report holds only what finished; run the gate again for a verdict.",
        ),
        Rule(
            "shard-missing",
            Severity.ERROR,
            "A shard's report is missing from the merge",
            "The matrix job for this model (and runtime) did not upload its report: fix that "
            "job (it failed before writing one) or the artifact names `merge` reads; the "
            "merged verdict needs every shard.",
        ),
        Rule(
            "usage-error",
            Severity.ERROR,
            "The gate was called with an option it cannot use",
            "Fix the command-line option or Action input named in the message; no model was "
            "checked.",
        ),
    )
}


def make_finding(
    rule: str,
    message: str,
    *,
    severity: Severity | None = None,
    model: str | None = None,
    variant: str | None = None,
    runtime: str | None = None,
    location: Location | None = None,
    details: dict[str, Any] | None = None,
) -> Finding:
    """Build a finding with the rule's default severity, refusing unknown rule ids."""
    if rule not in RULES:
        raise KeyError(f"unknown rule id {rule!r}")
    return Finding(
        rule=rule,
        severity=severity or RULES[rule].severity,
        message=message,
        model=model,
        variant=variant,
        runtime=runtime,
        location=location,
        details=details or {},
    )


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

"""The registry of rules: every rule id with its default severity, title and fix hint.

Rule ids are a stable contract (scripts and users grep for them): add new ones, never
rename one. Every id of `findings.RuleId` has its `Rule` here (a test enforces it), and
findings are made through `make_finding`, which gives them their rule's severity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Unpack

from tflite_gate.findings import Finding, Location, RuleId, Severity, Subject


@dataclass(frozen=True)
class Rule:
    """A rule id with its default severity, a title and a one-line fix hint."""

    id: RuleId
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
    rule: RuleId,
    message: str,
    *,
    severity: Severity | None = None,
    model: str | None = None,
    variant: str | None = None,
    runtime: str | None = None,
    location: Location | None = None,
    details: dict[str, Any] | None = None,
    **subject: Unpack[Subject],
) -> Finding:
    """Build a finding with the rule's default severity, refusing unknown rule ids.

    `subject` (`op=`, `key=`, `error=`, ...) is what code may read back; `details` is
    for people and scripts only.
    """
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
        **subject,
    )

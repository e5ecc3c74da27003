"""Checks of a variant's runs: crashes, hangs, errors, runtimes that are unavailable,
custom and Flex ops that could not be verified, and the latency budget.
"""

from __future__ import annotations

from typing import Any

from tflite_gate.findings import Finding, Location, Severity
from tflite_gate.judge.checks.common import raise_limit, setting_location
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import (
    RuntimeRun,
    VariantReport,
)
from tflite_gate.rules import make_finding
from tflite_gate.tflite.runtime_versions import ops_newer_than


def _runtime_location(config: ModelConfig, runtime: str | None = None) -> Location:
    """The runtime's own entry in `runtimes`, else the list, else the model's source."""
    if runtime is not None and runtime in config.runtime_locations:
        return config.runtime_locations[runtime]
    return setting_location(config.runtimes, config)


def _run_stage(run: RuntimeRun) -> str:
    """Where a run stopped, for a message. A worker killed before it reported any phase
    stopped while starting up; an error without a phase says nothing rather than "None"."""
    if run.phase:
        stage = f" in {run.phase}"
    elif run.status in ("crash", "timeout"):
        stage = " during start-up"
    else:
        stage = ""
    return stage + (f" (sample {run.sample})" if run.sample is not None else "")


def check_run(config: ModelConfig, variant: VariantReport, run: RuntimeRun) -> list[Finding]:
    """A variant that could not be executed on a runtime: crash, hang, error, or Flex."""
    where = f"{config.name}/{variant.name} on {run.runtime}"
    at = _run_stage(run)
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
        raise_it = raise_limit(
            "limits.interpreter_timeout_s",
            config.interpreter_timeout_s,
            "s",
            "if the model is just slow on this runtime",
        )
        return [
            make_finding(
                "interpreter-timeout",
                f"{where}: {raise_it}: no result within "
                f"{config.interpreter_timeout_s.value:g} s{at}{repro}",
                location=setting_location(config.interpreter_timeout_s, config),
                details=details,
                **common,
            )
        ]
    if run.status == "error":
        static = _static_runtime_verdict(variant, run.runtime_version)
        agreement = f" (the static check agrees: {static})" if static else ""
        cause = _unregistered_cause(config, run)
        return [
            make_finding(
                "interpreter-error",
                f"{where}: {cause}{_one_line(run.message)}{at}{agreement}{repro}",
                location=_runtime_location(config, run.runtime),
                details={**details, "static_check": static},
                **common,
            )
        ]
    if run.status == "unavailable":  # installed, but the worker could not import it
        return check_unavailable_runtime(config, run.runtime, run.message or "import failed")
    if run.status == "unverifiable":  # Flex: one notice per variant, from check_flex_runs
        return check_custom_op_run(config, variant, run)
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


def check_custom_op_run(
    config: ModelConfig, variant: VariantReport, run: RuntimeRun
) -> list[Finding]:
    """A run stopped only by declared custom ops: a notice that says how to verify them.

    The runtime names the first op it has no kernel for and stops there, so the notice
    names every custom op of the model too: none of them ran.
    """
    if run.status != "unverifiable" or not run.unresolved_custom_ops:
        return []
    ops = ", ".join(run.unresolved_custom_ops)
    in_model = [
        op.name
        for op in (variant.inspection.ops if variant.inspection else [])
        if op.kind == "custom"
    ]
    not_run = list(dict.fromkeys([*run.unresolved_custom_ops, *in_model]))
    stopped = (
        f"; the runtime stops there, so the model's custom ops {', '.join(not_run)} did not run"
        if len(not_run) > len(run.unresolved_custom_ops)
        else ""
    )
    if run.custom_op_registerers:
        how = (
            f"the registerers {', '.join(run.custom_op_registerers)} did not register it; "
            "register its kernel there"
        )
    else:
        how = (
            "to verify them, register the kernels on a runtime: `custom_op_registerers` "
            "(and `custom_op_libraries`) in its `runtimes` entry"
        )
    return [
        make_finding(
            "custom-op",
            f"{config.name}/{variant.name} on {run.runtime}: no kernel for custom op {ops} "
            f"(declared in ops.custom){stopped}; numerics not verified; {how}",
            severity=Severity.NOTICE,
            model=config.name,
            variant=variant.name,
            runtime=run.runtime,
            location=setting_location(config.custom_ops, config),
            details={
                "unresolved": run.unresolved_custom_ops,
                "not_run": not_run,
                "registerers": run.custom_op_registerers,
                "message": run.message,
            },
        )
    ]


def _unregistered_cause(config: ModelConfig, run: RuntimeRun) -> str:
    """An unresolved custom op is a missing kernel, never an old runtime: say which."""
    undeclared = [op for op in run.unresolved_custom_ops if op not in config.custom_ops.value]
    if not undeclared:
        return ""
    return (
        f"no kernel for custom op {', '.join(undeclared)}, which ops.custom does not declare "
        "(register it, or replace it): "
    )


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
    """Led by the error's own first line (pip's `ERROR:`, the exception); details keep all."""
    headline = next((line for line in error.splitlines() if line.strip()), error)
    return [
        make_finding(
            "runtime-unavailable",
            f"{config.name}: runtime {runtime} is unavailable: {_one_line(headline)}",
            model=config.name,
            runtime=runtime,
            location=_runtime_location(config, runtime),
            error=error,
        )
    ]


# A runtime whose interpreter links the Flex delegate (TensorFlow <= 2.18; 2.20+ and
# ai-edge-litert 2.x do not).
FLEX_RUNTIME_SUGGESTION = 'runtimes: [ai-edge-litert, {requirement: "tensorflow==2.18.1"}]'


def check_flex_runs(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Accepted Flex ops: one notice per variant saying where the numerics were verified.

    Runs that compared outputs verified them; runs without the Flex delegate could not
    execute. When none verified them, name a runtime that would.
    """
    if variant.inspection is None or not config.select_tf_ops.value:
        return []
    flex = [op.name for op in variant.inspection.ops if op.kind == "flex"]
    if not flex:
        return []
    runs = variant.runs
    verified = [run.label for run in runs if run.status == "passed"]
    failed = [run.label for run in runs if run.status in {"diverged", "non-finite", "mismatch"}]
    executed = [run.label for run in runs if run.status == "ran"]
    without = [
        run.label for run in runs if run.status == "unverifiable" and not run.unresolved_custom_ops
    ]
    head = (
        f"{config.name}/{variant.name}: uses Select TF ops {', '.join(flex)}; the app must "
        "link the Flex delegate"
    )
    if verified:
        message = f"{head}; numerics verified on {', '.join(verified)}"
    elif executed:
        message = f"{head}; executed on {', '.join(executed)} (no reference to compare with)"
    else:
        message = f"{head}; numerics not verified"
    if failed:
        message += f"; compared on {', '.join(failed)} without passing (see its findings)"
    if without:
        message += f"; not executable on {', '.join(without)} (no Flex delegate)"
    suggestion = None
    reached = [run for run in runs if run.status != "unavailable"]
    if without and len(without) == len(reached):  # no runtime that ran has the Flex delegate
        suggestion = FLEX_RUNTIME_SUGGESTION
        message += (
            "; to verify them, add a runtime whose interpreter links the Flex delegate "
            f"(TensorFlow <= 2.18): {suggestion}"
        )
    return [
        make_finding(
            "flex-op",
            message,
            severity=Severity.NOTICE,
            model=config.name,
            variant=variant.name,
            location=setting_location(config.select_tf_ops, config),
            details={
                "ops": flex,
                "verified_on": verified,
                "compared_without_passing_on": failed,
                "executed_on": executed,
                "not_executable_on": without,
                "suggestion": suggestion,
            },
        )
    ]


def check_latency_budget(
    config: ModelConfig, variant: VariantReport, run: RuntimeRun
) -> list[Finding]:
    """A median invoke slower than `budgets.max_latency_ms`, at the budget's severity.

    A warning unless the policy says otherwise: a shared CI runner is noisy, and its
    CPU is not the device's, so the number is a trend to watch more than a verdict.
    """
    budget = config.max_latency_ms
    if budget.value is None or run.latency_ms is None or run.latency_ms <= budget.value:
        return []
    return [
        make_finding(
            "latency-budget",
            f"{config.name}/{variant.name} on {run.runtime}: make the model cheaper or raise "
            f"budgets.max_latency_ms: the median invoke took {run.latency_ms:.2f} ms "
            f"({run.latency_runs} runs, {run.latency_threads} thread(s)), over the budget "
            f"of {budget.value:g} ms",
            severity=Severity(config.latency_severity.value),
            location=setting_location(budget, config),
            details={
                "latency_ms": run.latency_ms,
                "max_latency_ms": budget.value,
                "latency_runs": run.latency_runs,
                "num_threads": run.latency_threads,
            },
            model=config.name,
            variant=variant.name,
            runtime=run.runtime,
        )
    ]

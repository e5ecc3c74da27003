"""Checks of a variant's runs: a crash, a hang or an error led by where it stopped, a
runtime that could not be had led by its own error line, custom and Flex ops that could
not be verified, and the latency budget."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.support.check_facts import (
    line_of,
    op,
    resolved_model,
    resolved_models,
    runtime_run,
    variant,
)
from tests.support.tflite_builder import SIGNATURE_INPUT_NAME, build_model, builtin
from tflite_gate.judge import checks
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import RuntimeRun
from tflite_gate.run.interpreter import run_interpreter
from tflite_gate.run.runtimes import RuntimeSpec, RuntimeUnavailable, prepare_runtime

RUNTIMES = textwrap.dedent(
    """\
    version: 1
    models:
      - name: m
        source: pkg.mod:build
        runtimes: [ai-edge-litert, {requirement: "tflite-runtime==0.0.1"}]
    """
)


@pytest.fixture
def config(tmp_path: Path) -> ModelConfig:
    """`m` on the installed interpreter and on a runtime no index has."""
    return resolved_model(tmp_path, RUNTIMES)


OLD = "tflite-runtime==0.0.1"


def _stopped(status: str, **fields: object) -> RuntimeRun:
    return RuntimeRun(runtime=OLD, status=status, **fields)  # type: ignore[arg-type]


def test_a_crash_says_with_what_where_and_how_to_reproduce_it(config: ModelConfig) -> None:
    crash = _stopped("crash", signal="SIGSEGV", phase="invoke", sample=3, reproducer="repro/m-v.py")
    [finding] = checks.check_run(config, variant(), crash)
    assert finding.rule == "interpreter-crash"
    assert finding.message == (
        f"m/v on {OLD}: the interpreter crashed with SIGSEGV in invoke (sample 3); "
        "reproducer: repro/m-v.py"
    )
    assert finding.location is not None and finding.location.line == line_of("runtimes", RUNTIMES)
    assert (finding.runtime, finding.details["sample"]) == (OLD, 3)


def test_a_worker_killed_before_any_phase_stopped_while_starting_up(
    config: ModelConfig,
) -> None:
    [finding] = checks.check_run(config, variant(), _stopped("crash"))
    assert finding.message == (
        f"m/v on {OLD}: the interpreter crashed with a non-zero exit during start-up"
    )


def test_a_hang_leads_with_the_limit_to_raise(config: ModelConfig) -> None:
    [finding] = checks.check_run(config, variant(), _stopped("timeout", phase="allocate"))
    seconds = config.interpreter_timeout_s.value
    assert finding.rule == "interpreter-timeout"
    assert finding.message == (
        f"m/v on {OLD}: raise limits.interpreter_timeout_s ({seconds:g} s, the default) if the "
        f"model is just slow on this runtime: no result within {seconds:g} s in allocate"
    )
    assert finding.location == config.source_location  # the default is written nowhere


def test_an_error_on_an_old_runtime_says_the_static_check_agrees(config: ModelConfig) -> None:
    dense = variant(op("FULLY_CONNECTED", version=12))
    error = _stopped(
        "error",
        runtime_version="2.14.0",
        phase="load",
        message="Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'.\n"
        "Registration failed.",
    )
    [finding] = checks.check_run(config, dense, error)
    assert finding.rule == "interpreter-error"
    assert finding.message == (
        f"m/v on {OLD}: Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. "
        "Registration failed. in load (the static check agrees: FULLY_CONNECTED v12 needs "
        "runtime 2.17.0)"
    )
    assert finding.details["static_check"] == "FULLY_CONNECTED v12 needs runtime 2.17.0"


def test_a_long_error_is_one_line_of_at_most_400_characters(config: ModelConfig) -> None:
    error = _stopped("error", message="x" * 1000 + "\nsecond line")
    [finding] = checks.check_run(config, variant(), error)
    said = finding.message.removeprefix(f"m/v on {OLD}: ")
    assert said == "x" * 399 + "…"
    assert finding.details["message"] == error.message  # the details keep it all


def test_an_undeclared_custom_op_is_a_missing_kernel_not_an_old_runtime(
    config: ModelConfig,
) -> None:
    error = _stopped("error", message="Encountered unresolved custom op: Other.")
    error.unresolved_custom_ops = ["Other"]
    [finding] = checks.check_run(config, variant(), error)
    assert finding.message == (
        f"m/v on {OLD}: no kernel for custom op Other, which ops.custom does not declare "
        "(register it, or replace it): Encountered unresolved custom op: Other."
    )


def test_an_output_mismatch_and_a_run_that_passed(config: ModelConfig) -> None:
    mismatch = _stopped("mismatch", message="output 'y' has shape [1, 3], the source's [1, 4]")
    [finding] = checks.check_run(config, variant(), mismatch)
    assert (finding.rule, finding.message) == (
        "output-mismatch",
        f"m/v on {OLD}: output 'y' has shape [1, 3], the source's [1, 4]",
    )
    assert checks.check_run(config, variant(), _stopped("passed")) == []


def test_a_runtime_the_worker_could_not_import_is_unavailable(config: ModelConfig) -> None:
    gone = _stopped("unavailable", message="ImportError: libfoo.so: cannot open")
    [finding] = checks.check_run(config, variant(), gone)
    assert finding.rule == "runtime-unavailable"
    assert (
        finding.message == f"m: runtime {OLD} is unavailable: ImportError: libfoo.so: cannot open"
    )
    assert finding.location is not None and finding.location.line == line_of("runtimes", RUNTIMES)


def test_an_unavailable_runtime_leads_with_the_first_line_of_its_error(
    config: ModelConfig,
) -> None:
    error = "\n\nERROR: No matching distribution found\nmore pip output"
    [finding] = checks.check_unavailable_runtime(config, OLD, error)
    assert (
        finding.message == f"m: runtime {OLD} is unavailable: ERROR: No matching distribution found"
    )
    assert finding.error == error


CUSTOM = """\
    version: 1
    models:
      - name: m
        source: m.keras
        ops: {custom: [MyNms, Other]}
    """


def test_declared_custom_ops_without_a_kernel_are_a_notice_naming_all_that_did_not_run(
    tmp_path: Path,
) -> None:
    config = resolved_model(tmp_path, CUSTOM)
    customs = variant(op("MyNms", "custom"), op("Other", "custom"), op("ADD"))
    stopped = runtime_run("ai-edge-litert", "unverifiable")
    stopped.unresolved_custom_ops = ["MyNms"]
    [notice] = checks.check_run(config, customs, stopped)
    assert (notice.rule, notice.severity.value) == ("custom-op", "notice")
    assert notice.message == (
        "m/v on ai-edge-litert: no kernel for custom op MyNms (declared in ops.custom); the "
        "runtime stops there, so the model's custom ops MyNms, Other did not run; numerics not "
        "verified; to verify them, register the kernels on a runtime: `custom_op_registerers` "
        "(and `custom_op_libraries`) in its `runtimes` entry"
    )
    assert notice.location is not None and notice.location.line == line_of("custom:", CUSTOM)
    assert notice.details["not_run"] == ["MyNms", "Other"]


def test_registerers_that_did_not_register_a_kernel_are_named(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, CUSTOM)
    stopped = runtime_run("ai-edge-litert", "unverifiable")
    stopped.unresolved_custom_ops = ["MyNms"]
    stopped.custom_op_registerers = ["pkg.ops:register"]
    [notice] = checks.check_custom_op_run(config, variant(op("MyNms", "custom")), stopped)
    assert notice.message.endswith(
        "numerics not verified; the registerers pkg.ops:register did not register it; "
        "register its kernel there"
    )
    assert "the runtime stops there" not in notice.message  # the only custom op
    ran = runtime_run("ai-edge-litert", "ran")
    assert checks.check_custom_op_run(config, variant(op("MyNms", "custom")), ran) == []


def test_accepted_flex_notice_names_where_numerics_were_verified(
    configs: list[ModelConfig],
) -> None:
    flex = variant(op("FlexErf", "flex"))
    flex.runs = [
        runtime_run("ai-edge-litert", "unverifiable", "2.3.0"),
        runtime_run("tensorflow==2.18.1", "passed", "2.18.1", compared=True),
    ]
    assert checks.check_flex_runs(configs[0], flex) == []  # not accepted: check_flex_ops
    [notice] = checks.check_flex_runs(configs[1], flex)
    assert (notice.rule, notice.severity.value) == ("flex-op", "notice")
    assert notice.message == (
        "flexible/v: uses Select TF ops FlexErf; the app must link the Flex delegate; numerics "
        "verified on tensorflow==2.18.1; not executable on ai-edge-litert 2.3.0 (no Flex "
        "delegate)"
    )
    assert notice.location is not None and notice.location.line == line_of("select_tf_ops")
    assert notice.details["verified_on"] == ["tensorflow==2.18.1"]
    assert notice.details["suggestion"] is None


def test_accepted_flex_notice_suggests_a_runtime_with_the_flex_delegate(
    configs: list[ModelConfig],
) -> None:
    flex = variant(op("FlexErf", "flex"))
    flex.runs = [runtime_run("ai-edge-litert", "unverifiable", "2.3.0")]
    [notice] = checks.check_flex_runs(configs[1], flex)
    assert "numerics not verified" in notice.message
    assert notice.message.endswith(
        "add a runtime whose interpreter links the Flex delegate (TensorFlow <= 2.18): "
        'runtimes: [ai-edge-litert, {requirement: "tensorflow==2.18.1"}]'
    )
    assert notice.details["suggestion"] == checks.FLEX_RUNTIME_SUGGESTION
    # the run itself adds nothing: one flex notice per variant
    assert checks.check_run(configs[1], flex, flex.runs[0]) == []


def test_flex_notice_tells_executed_from_verified(configs: list[ModelConfig]) -> None:
    """A run with nothing to compare with executed the Flex ops; it verified no numbers."""
    flex = variant(op("FlexErf", "flex"))
    flex.runs = [
        runtime_run("tensorflow==2.18.1", "ran", "2.18.1"),
        runtime_run("tensorflow==2.17.1", "diverged", "2.17.1", compared=True),
    ]
    [notice] = checks.check_flex_runs(configs[1], flex)
    assert "executed on tensorflow==2.18.1 (no reference to compare with)" in notice.message
    assert "compared on tensorflow==2.17.1 without passing" in notice.message
    assert notice.details["verified_on"] == []


def test_flex_notice_does_not_blame_the_flex_delegate_for_custom_ops(
    configs: list[ModelConfig],
) -> None:
    flex = variant(op("FlexErf", "flex"), op("MyNms", "custom"))
    stopped = runtime_run("ai-edge-litert", "unverifiable", "2.3.0")
    stopped.unresolved_custom_ops = ["MyNms"]
    flex.runs = [stopped]
    [notice] = checks.check_flex_runs(configs[1], flex)
    assert "no Flex delegate" not in notice.message
    assert notice.details["suggestion"] is None


def test_no_runtime_suggested_while_an_unavailable_one_might_have_the_delegate(
    configs: list[ModelConfig],
) -> None:
    """Only runs that were reached count: one whose runtime could not be had proves nothing."""
    flex = variant(op("FlexErf", "flex"))
    flex.runs = [
        runtime_run("ai-edge-litert", "unverifiable", "2.3.0"),
        runtime_run("tensorflow==2.18.1", "unverifiable", "2.18.1"),
        runtime_run("tensorflow==2.17.1", "unavailable"),
    ]
    [notice] = checks.check_flex_runs(configs[1], flex)
    assert notice.details["suggestion"] == checks.FLEX_RUNTIME_SUGGESTION
    flex.runs[1] = runtime_run("tensorflow==2.18.1", "ran", "2.18.1")
    [notice] = checks.check_flex_runs(configs[1], flex)
    assert notice.details["suggestion"] is None
    assert notice.details["not_executable_on"] == ["ai-edge-litert 2.3.0"]


LATENCY = """\
    version: 1
    models:
      - name: m
        source: m.keras
        budgets: {max_latency_ms: 5, latency_runs: 20}
      - name: strict
        source: m.keras
        budgets: {max_latency_ms: 5, latency_severity: error}
    """


def _timed(latency_ms: float) -> RuntimeRun:
    timed = runtime_run("ai-edge-litert", "passed")
    timed.latency_ms, timed.latency_runs, timed.latency_threads = latency_ms, 20, 2
    return timed


def test_a_slow_median_invoke_is_a_warning_unless_the_policy_says_otherwise(
    tmp_path: Path,
) -> None:
    """A shared runner's timing is a trend to watch: the policy decides what it fails."""
    warned, strict = resolved_models(tmp_path, LATENCY)
    [finding] = checks.check_latency_budget(warned, variant(), _timed(7.5))
    assert (finding.rule, finding.severity.value) == ("latency-budget", "warning")
    assert finding.message == (
        "m/v on ai-edge-litert: make the model cheaper or raise budgets.max_latency_ms: the "
        "median invoke took 7.50 ms (20 runs, 2 thread(s)), over the budget of 5 ms"
    )
    assert finding.location is not None and finding.location.line == line_of("5, lat", LATENCY)
    [failing] = checks.check_latency_budget(strict, variant(), _timed(7.5))
    assert failing.severity.value == "error"


def test_a_median_within_the_budget_or_not_measured_passes(tmp_path: Path) -> None:
    warned, _ = resolved_models(tmp_path, LATENCY)
    assert checks.check_latency_budget(warned, variant(), _timed(5.0)) == []
    untimed = runtime_run("ai-edge-litert", "passed")
    assert checks.check_latency_budget(warned, variant(), untimed) == []


@pytest.mark.slow
def test_unresolvable_pip_requirement_leads_with_pips_error(
    tmp_path: Path, config: ModelConfig
) -> None:
    spec = RuntimeSpec("tflite-runtime==0.0.1", "tflite-runtime==0.0.1")
    with pytest.raises(RuntimeUnavailable) as caught:
        prepare_runtime(spec, cache_dir=tmp_path / "cache")
    [finding] = checks.check_unavailable_runtime(config, spec.name, str(caught.value))
    assert finding.message.startswith(
        "m: runtime tflite-runtime==0.0.1 is unavailable: ERROR: Could not find a version "
        "that satisfies the requirement tflite-runtime==0.0.1"
    )
    assert "check the runtime's requirement" in finding.message
    assert finding.error is not None and "pip install" in finding.error
    assert finding.location is not None and finding.location.line == 5


@pytest.mark.slow
def test_worker_without_numpy_leads_with_the_exception_line(
    tmp_path: Path, config: ModelConfig
) -> None:
    """A real environment without numpy: the worker's first import fails."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    model = tmp_path / "relu.tflite"
    model.write_bytes(build_model([builtin("RELU")]))
    result = run_interpreter(
        model,
        {SIGNATURE_INPUT_NAME: np.zeros((1, 1, 4), np.float32)},
        python=str(venv / "bin" / "python"),
        module="ai_edge_litert.interpreter",
        scratch=tmp_path / "scratch",
        reproducer_dir=tmp_path / "repro",
        timeout_s=60,
        memory_mb=None,
    )
    assert (result.status, result.message) == (
        "import",
        "ModuleNotFoundError: No module named 'numpy'",
    )
    [finding] = checks.check_unavailable_runtime(config, "bare", result.message or "")
    assert finding.message == (
        "m: runtime bare is unavailable: ModuleNotFoundError: No module named 'numpy'"
    )


@pytest.mark.slow
def test_pips_context_line_does_not_hide_its_error(tmp_path: Path, config: ModelConfig) -> None:
    """pip first says which versions need another Python; the error is the line after."""
    spec = RuntimeSpec("scipy==1.7.0", "scipy==1.7.0", module="scipy")
    with pytest.raises(RuntimeUnavailable) as caught:
        prepare_runtime(spec, cache_dir=tmp_path / "cache")
    assert "ERROR: Ignored the following versions" in str(caught.value)
    assert str(caught.value).startswith(
        "ERROR: Could not find a version that satisfies the requirement scipy==1.7.0"
    )
    [finding] = checks.check_unavailable_runtime(config, spec.name, str(caught.value))
    assert finding.message.startswith(
        "m: runtime scipy==1.7.0 is unavailable: ERROR: Could not find a version"
    )

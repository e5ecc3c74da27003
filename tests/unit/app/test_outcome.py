"""How a command ends: the report and exit code of a bad policy, a bad option, a bug."""

from __future__ import annotations

from pathlib import Path

from tflite_gate.app.outcome import (
    EXIT_INTERNAL,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    GateOutcome,
    exit_code_of_signal,
    internal_error_outcome,
    policy_error_outcome,
    usage_outcome,
)
from tflite_gate.policy.errors import PolicyError, PolicyIssue
from tflite_gate.support.output_paths import Output, PathProblem
from tflite_gate.support.run_options import CheckOptions


def _options(tmp_path: Path) -> CheckOptions:
    return CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)


def test_a_policy_error_is_a_finding_at_each_issues_line() -> None:
    error = PolicyError(
        [
            PolicyIssue("tflite-gate.yml", 3, 5, "unknown key 'modles'"),
            PolicyIssue("tflite-gate.yml", None, None, "no models"),
        ]
    )
    outcome = policy_error_outcome(error)
    assert outcome.exit_code == EXIT_USAGE
    assert outcome.messages == [
        "tflite-gate.yml:3:5: unknown key 'modles'",
        "tflite-gate.yml: no models",
    ]
    first, second = outcome.report.findings
    assert (first.rule, first.location and first.location.line) == ("policy-invalid", 3)
    assert second.location is None
    assert outcome.report.verdict == "error" and outcome.report.policy == "tflite-gate.yml"


def test_a_usage_error_refuses_only_the_outputs_that_are_the_problem(tmp_path: Path) -> None:
    bad, good = Output("json", "--report", tmp_path), Output("junit", "--junit", tmp_path / "j")
    outcome = usage_outcome(
        ["give --report a file path"], _options(tmp_path), [PathProblem(bad, "x")]
    )
    assert outcome.exit_code == EXIT_USAGE
    assert [f.rule for f in outcome.report.findings] == ["usage-error"]
    assert outcome.refused == [bad]
    assert not outcome.wrote(bad) and outcome.wrote(good)


def test_an_unwritten_output_is_not_claimed(tmp_path: Path) -> None:
    output = Output("json", "--report", tmp_path / "r.json")
    outcome = GateOutcome(usage_outcome(["x"], _options(tmp_path)).report, 0, unwritten=[output])
    assert not outcome.wrote(output)


def test_a_bug_is_reported_with_its_traceback(tmp_path: Path) -> None:
    try:
        raise TypeError("unsupported operand")
    except TypeError as error:
        outcome = internal_error_outcome(error, _options(tmp_path))
    assert outcome.exit_code == EXIT_INTERNAL
    assert outcome.messages == [
        "internal error: TypeError: unsupported operand (a bug; the traceback is in the "
        "report's internal_error)"
    ]
    assert outcome.report.internal_error and "Traceback" in outcome.report.internal_error


def test_a_cancelled_run_exits_as_a_shell_reports_the_signal() -> None:
    assert exit_code_of_signal("SIGINT") == EXIT_SIGINT == 130
    assert exit_code_of_signal("SIGTERM") == EXIT_SIGTERM == 143
    assert exit_code_of_signal("SIGHUP") == EXIT_SIGTERM

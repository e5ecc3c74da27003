"""The engine's front door, shared by the CLI and the GitHub Action.

It runs the pipeline and turns every way a run can end into a Report and a
stable exit code: 0 pass · 1 the gate failed · 2 usage or policy error ·
3 internal error (a bug; the report is still written, with the traceback) ·
130/143 cancelled by SIGINT/SIGTERM (128 + the signal, as a shell reports it; the
partial report is still written).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tflite_gate.cancel import Cancelled, cancellable
from tflite_gate.findings import Location, make_finding
from tflite_gate.pipeline import CheckOptions, Progress, UsageError, new_report, run_check
from tflite_gate.policy import PolicyError, PolicyIssue, display_path_for
from tflite_gate.report.json_report import write_json_report
from tflite_gate.report.junit import write_junit
from tflite_gate.report.model import Report
from tflite_gate.report.sarif import write_sarif

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
EXIT_CANCELLED = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}


@dataclass
class GateOutcome:
    """What a run produced: a report (None only for a usage error) and the exit code."""

    report: Report | None
    exit_code: int
    messages: list[str] = field(default_factory=list)  # for stderr: what went wrong, where


def _issue_location(issue: PolicyIssue) -> Location | None:
    if issue.line is None:
        return None
    return Location(path=issue.path, line=issue.line, column=issue.column)


def _policy_error_report(error: PolicyError) -> Report:
    report = new_report()
    report.policy = error.issues[0].path if error.issues else None
    report.add(
        [
            make_finding("policy-invalid", issue.message, location=_issue_location(issue))
            for issue in error.issues
        ]
    )
    report.finalize("error")
    return report


def _internal_error_report(error: Exception, options: CheckOptions) -> Report:
    report = new_report()
    report.policy = display_path_for(options.policy, options.workspace)
    report.internal_error = "".join(traceback.format_exception(error))
    report.add([make_finding("internal-error", f"{type(error).__name__}: {error}")])
    report.finalize(options.fail_on or "error")
    return report


def _cancelled_outcome(cancelled: Cancelled, options: CheckOptions) -> GateOutcome:
    report = cancelled.report
    if report is None:  # before the pipeline had a report, or after it returned one
        report = new_report()
        report.policy = display_path_for(options.policy, options.workspace)
        report.add([make_finding("cancelled", f"the run was cancelled by {cancelled.signal_name}")])
        report.finalize(options.fail_on or "error")
    return GateOutcome(
        report,
        EXIT_CANCELLED.get(cancelled.signal_name, EXIT_SIGTERM),
        [f"cancelled by {cancelled.signal_name}: the report holds what finished"],
    )


def run_gate(options: CheckOptions, progress: Progress) -> GateOutcome:
    """Run the gate; never raises for bad input, and a bug still yields a report.

    Cancellation (`Cancelled`, raised by the signal handler of `tflite_gate.cancel`
    while inside `cancellable()`) also ends in a report, with its own exit code.
    """
    if not options.workspace.is_dir():
        return GateOutcome(None, EXIT_USAGE, [f"workspace {options.workspace} is not a directory"])
    try:
        with cancellable():
            report = run_check(options, progress)
    except Cancelled as cancelled:
        return _cancelled_outcome(cancelled, options)
    except PolicyError as error:
        return GateOutcome(
            _policy_error_report(error), EXIT_USAGE, [str(issue) for issue in error.issues]
        )
    except UsageError as error:
        return GateOutcome(None, EXIT_USAGE, [str(error)])
    except Exception as error:  # a bug in tflite-gate: report it, with the traceback
        return GateOutcome(
            _internal_error_report(error, options),
            EXIT_INTERNAL,
            [
                f"internal error: {type(error).__name__}: {error} (a bug; the traceback is in "
                "the report's internal_error)"
            ],
        )
    return GateOutcome(report, EXIT_FAIL if report.verdict == "fail" else EXIT_PASS)


def write_reports(
    report: Report,
    *,
    json_path: Path,
    sarif_path: Path | None = None,
    junit_path: Path | None = None,
) -> None:
    """The machine-readable reports a run was asked for; JSON always."""
    write_json_report(report, json_path)
    if sarif_path is not None:
        write_sarif(report, sarif_path)
    if junit_path is not None:
        write_junit(report, junit_path)

"""How a command ends: its report, its exit code, and the messages for the person who ran it.

app/ is the only layer that knows exit codes (stable, README lists them):
0 pass · 1 the gate failed · 2 usage or policy error · 3 internal error (a bug; the
report is still written, with the traceback) · 4 passed, but a requested report could
not be written · 130/143 cancelled by SIGINT/SIGTERM (128 + the signal, as a shell
reports it; the partial report is still written).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tflite_gate.findings import Location
from tflite_gate.policy.errors import PolicyError, PolicyIssue
from tflite_gate.policy.load import display_path_for
from tflite_gate.report.model import Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding
from tflite_gate.support.output_paths import Output, PathProblem
from tflite_gate.support.run_options import CheckOptions

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL, EXIT_OUTPUT = 0, 1, 2, 3, 4
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
EXIT_CANCELLED = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}


@dataclass
class GateOutcome:
    """What a run produced: a report and the exit code (`refused`: outputs not to write)."""

    report: Report
    exit_code: int
    messages: list[str] = field(default_factory=list)  # for stderr: what went wrong, where
    refused: list[Output] = field(default_factory=list)  # outputs whose path is unusable
    unwritten: list[Output] = field(default_factory=list)  # outputs whose write failed

    def wrote(self, output: Output) -> bool:
        """Whether `output` is on disk (or stdout) now: a summary never names one that is not."""
        return output not in self.refused and output not in self.unwritten


def exit_code_of_signal(signal_name: str) -> int:
    """The exit code of a run cancelled by `signal_name` (SIGTERM's for any other)."""
    return EXIT_CANCELLED.get(signal_name, EXIT_SIGTERM)


def _issue_location(issue: PolicyIssue) -> Location | None:
    if issue.line is None:
        return None
    return Location(path=issue.path, line=issue.line, column=issue.column)


def policy_error_outcome(error: PolicyError) -> GateOutcome:
    """A policy that cannot be used: one `policy-invalid` finding per issue, at its line."""
    report = new_report()
    report.policy = error.issues[0].path if error.issues else None
    report.add(
        [
            make_finding("policy-invalid", issue.message, location=_issue_location(issue))
            for issue in error.issues
        ]
    )
    report.stopped = "policy"
    report.finalize("error")
    return GateOutcome(report, EXIT_USAGE, [str(issue) for issue in error.issues])


def internal_error_message(finding: str) -> str:
    """What stderr says about a bug: the report holds the traceback."""
    return f"internal error: {finding} (a bug; the traceback is in the report's internal_error)"


def internal_error_outcome(error: Exception, options: CheckOptions) -> GateOutcome:
    """A bug in tflite-gate outside any model: a report with the traceback, exit 3."""
    report = new_report()
    report.policy = display_path_for(options.policy, options.workspace)
    report.add_internal_error(error)
    report.finalize(options.fail_on or "error")
    message = internal_error_message(f"{type(error).__name__}: {error}")
    return GateOutcome(report, EXIT_INTERNAL, [message])


def usage_outcome(
    messages: list[str], options: CheckOptions, problems: Sequence[PathProblem] = ()
) -> GateOutcome:
    """A usage error still makes a report (verdict `error`), written where its path is usable.

    CI artifacts and dashboards read the JSON report, and the Action's outputs and
    summary are made from it; a run that never started must say why there too, but
    never through an output whose own path is the problem (those are `refused`).
    """
    refused = [problem.output for problem in problems]
    report = new_report()
    report.policy = display_path_for(options.policy, options.workspace)
    report.add([make_finding("usage-error", message) for message in messages])
    report.stopped = "usage"
    report.finalize(options.fail_on or "error")
    return GateOutcome(report, EXIT_USAGE, messages, refused)

"""Every reporter of a finished run, listed in one place for the CLI and the Action.

A run's report reaches people through the report files (JSON, SARIF, JUnit), the
summary in the log, GitHub's annotations, job summary and step outputs, and the
sticky pull-request comment. The CLI and the Action say who is listening (an
`Audience`); `publish` makes the reporters in a fixed order and publishes them with
the one failure policy of `report/reporters.py`:

1. the report files, first: the summary names the JSON report only once it is there,
   and a file that cannot be written turns a pass into exit 4 (an output is missing),
   never into "the gate failed";
2. the JSON report on stdout (`--format json`) and the summary;
3. on GitHub: annotations, job summary and step outputs, then a warning per failure;
4. the sticky comment, last: it waits on the network, and everything above is in the
   log and the files by then, whatever happens to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from tflite_gate.app.outcome import EXIT_OUTPUT, EXIT_PASS, GateOutcome
from tflite_gate.report.github import Annotations, plain_lines, runner_reporters, workflow_command
from tflite_gate.report.model import Report
from tflite_gate.report.reporters import (
    PublishFailure,
    Reporter,
    ReportFile,
    publish_each,
    report_file,
)
from tflite_gate.report.terminal import TerminalSummary
from tflite_gate.support.output_paths import STDOUT, Output

CommentFactory = Callable[[str], Reporter]
"""The sticky comment's reporter, given the JSON report's path ("" when not written)."""


@dataclass(frozen=True)
class Audience:
    """Who reads a run's results besides the report files, as the CLI or the Action decided."""

    report_name: str  # the JSON report as its reader names it: `--report`'s value, a repo path
    summary: TextIO | None = None  # where the summary goes; None: no summary
    colour: bool = False
    github: TextIO | None = None  # a runner's log: commands go there; None: not on GitHub
    annotate: bool = True  # on GitHub: annotations for the findings
    env: Mapping[str, str] = field(default_factory=dict)  # GITHUB_STEP_SUMMARY, GITHUB_OUTPUT
    repository_prefix: str = ""  # the workspace's path in the repository (SARIF, GitHub)
    json_to_stdout: bool = False  # `--format json`: the JSON report on stdout as well
    errors: TextIO | None = None  # failures as plain error lines (the CLI's stderr)
    comment: CommentFactory | None = None


def publish_files(
    outcome: GateOutcome, outputs: Sequence[Output], *, sarif_prefix: str = ""
) -> list[PublishFailure]:
    """Write every requested report file but the refused; the failures.

    A write failure after a completed run is not a verdict: a pass becomes exit 4
    (an output is missing), anything else keeps its code, so "the gate failed" (1)
    still means a finding and never a full disk.
    """
    wanted = [output for output in outputs if output not in outcome.refused]
    failures = publish_each(
        outcome.report, [report_file(output, sarif_prefix=sarif_prefix) for output in wanted]
    )
    outcome.unwritten += [
        failure.reporter.output for failure in failures if isinstance(failure.reporter, ReportFile)
    ]
    if failures and outcome.exit_code == EXIT_PASS:
        outcome.exit_code = EXIT_OUTPUT
    return failures


def _json_written(outcome: GateOutcome, outputs: Sequence[Output]) -> Output | None:
    """The JSON report's output if it was written; None if not (or not asked for)."""
    json_output = next((output for output in outputs if output.format == "json"), None)
    return json_output if json_output is not None and outcome.wrote(json_output) else None


def _log_reporters(audience: Audience, report_place: str) -> list[Reporter]:
    """The JSON report on stdout and the summary, as the audience asked."""
    reporters: list[Reporter] = []
    if audience.json_to_stdout:
        reporters.append(report_file(Output("json", "--format json", STDOUT)))
    if audience.summary is not None:
        guarded = audience.github is not None
        summary = TerminalSummary(audience.summary, report_place, audience.colour, guarded)
        reporters.append(summary)
    return reporters


def _github_reporters(audience: Audience, github: TextIO, report_path: str) -> list[Reporter]:
    """Annotations, job summary and step outputs, where the runner asks for them."""
    annotations = [Annotations(github, report_path)] if audience.annotate else []
    return [*annotations, *runner_reporters(report_path, audience.env)]


def _tell(audience: Audience, failures: Sequence[PublishFailure]) -> None:
    if audience.errors is not None:
        for failure in failures:
            print(plain_lines(f"tflite-gate: error: {failure.message}"), file=audience.errors)


def _warn(github: TextIO, failures: Sequence[PublishFailure], title: str) -> None:
    for failure in failures:
        github.write(workflow_command("warning", failure.message, {"title": title}) + "\n")


def publish(outcome: GateOutcome, outputs: Sequence[Output], audience: Audience) -> None:
    """Publish the outcome's report with every reporter the audience asked for, in order.

    May raise only what a signal handler raises (`Cancelled`, while the comment waits).
    """
    report: Report = outcome.report
    file_failures = publish_files(outcome, outputs, sarif_prefix=audience.repository_prefix)
    _tell(audience, file_failures)
    written = _json_written(outcome, outputs)
    shown = "" if written is None else "stdout" if written.to_stdout else audience.report_name
    _tell(audience, publish_each(report, _log_reporters(audience, shown or "not written")))
    github = audience.github
    if github is None:
        return
    report_path = "" if written is None else audience.report_name
    repository_view = report.with_path_prefix(audience.repository_prefix)
    channels = _github_reporters(audience, github, report_path)
    _warn(github, publish_each(repository_view, channels), "tflite-gate")
    _warn(github, file_failures, "tflite-gate output")
    if audience.comment is not None:
        comment = audience.comment(report_path)
        _warn(github, publish_each(repository_view, [comment]), "tflite-gate comment")

"""Every way a finished report reaches someone, behind one protocol and one failure policy.

A reporter is a file (the JSON report, SARIF, JUnit), the summary in the log, the
GitHub annotations, job summary and step outputs, or the sticky pull-request
comment. The CLI and the Action list theirs in one place (`app/publish.py`) and hand
the list to `publish_each`, so a full disk or a missing directory is told the same
way everywhere: the failing reporter is named, the others are still published, and
nobody claims a report that is not there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tflite_gate.report.json_report import json_text
from tflite_gate.report.junit import to_junit_xml
from tflite_gate.report.model import Report
from tflite_gate.report.sarif import sarif_text
from tflite_gate.support.files import write_text_atomic
from tflite_gate.support.output_paths import Output, ReportFormat


class Reporter(Protocol):
    """One way the report reaches someone; `publish` may raise OSError or `ReporterSkipped`."""

    @property
    def name(self) -> str:
        """How the user asked for it (`--sarif`, `the job summary`), for failure messages."""
        ...

    @property
    def place(self) -> str:
        """Where it goes (a path), for failure messages."""
        ...

    def publish(self, report: Report) -> None:
        """Show or write `report`."""
        ...


class ReporterSkipped(Exception):  # noqa: N818 -- not an error: a report left out on purpose
    """A reporter left unpublished on purpose (a job summary with no room left), and why."""


@dataclass(frozen=True)
class PublishFailure:
    """A reporter that could not publish, and the message that says so."""

    reporter: Reporter
    message: str


def publish_each(report: Report, reporters: Sequence[Reporter]) -> list[PublishFailure]:
    """Publish with every reporter; a failure names it, and the others are still published.

    The one failure policy of every reporter (files, job summary, step outputs, the
    log), so the CLI and the Action cannot drift apart; the caller shows the messages
    its way and never claims a failed one as published.
    """
    failures: list[PublishFailure] = []
    for reporter in reporters:
        try:
            reporter.publish(report)
        except ReporterSkipped as skipped:
            message = f"did not write {reporter.name} {reporter.place}: {skipped}"
            failures.append(PublishFailure(reporter, message))
        except OSError as error:
            message = (
                f"could not write {reporter.name} {reporter.place}: {error.strerror or error}; "
                "free space or fix permissions there and run again"
            )
            failures.append(PublishFailure(reporter, message))
    return failures


@dataclass(frozen=True)
class ReportFile:
    """A report file written atomically (no reader sees half of it), or stdout for `-`."""

    output: Output
    render: Callable[[Report], str]

    @property
    def name(self) -> str:
        return self.output.option

    @property
    def place(self) -> str:
        return str(self.output.path)

    def publish(self, report: Report) -> None:
        """Write the rendered report where the output asks."""
        text = self.render(report)
        if self.output.to_stdout:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_text_atomic(self.output.path, text)


def report_file(output: Output, *, sarif_prefix: str = "") -> ReportFile:
    """The reporter of one requested report file.

    `sarif_prefix` is the workspace's path in the repository: code scanning reads
    SARIF locations from the repository root (the Action's working-directory).
    """

    def sarif(report: Report) -> str:
        return sarif_text(report.with_path_prefix(sarif_prefix))

    renderers: dict[ReportFormat, Callable[[Report], str]] = {
        "json": json_text,
        "sarif": sarif,
        "junit": to_junit_xml,
    }
    return ReportFile(output, renderers[output.format])

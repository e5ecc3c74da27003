"""Every reporter of a finished run, published in one order with one failure policy.

Real reporters writing real files; the places that fail are ones that fail for root
too (a path under a regular file). The sticky comment is stood in for by a reporter
that records what it was given, as the Action's own would receive it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tflite_gate.app.outcome import EXIT_FAIL, EXIT_OUTPUT, EXIT_PASS, GateOutcome
from tflite_gate.app.publish import Audience, publish, publish_files
from tflite_gate.findings import Location
from tflite_gate.report.model import Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding
from tflite_gate.support.cancel import Cancelled
from tflite_gate.support.output_paths import Output, report_outputs


def _report(*, failing: bool = False) -> Report:
    report = new_report()
    report.policy = "tflite-gate.yml"
    if failing:
        where = Location(path="tflite-gate.yml", line=3, column=5)
        report.add([make_finding("divergence", "probs diverged", location=where)])
    report.finalize("error")
    return report


def _outputs(tmp_path: Path, *, sarif: Path | None = None) -> list[Output]:
    return report_outputs(
        json_path=tmp_path / "report.json",
        sarif_path=sarif,
        junit_path=tmp_path / "junit.xml",
        names={"json": "--report", "sarif": "--sarif", "junit": "--junit"},
    )


@dataclass
class RecordingComment:
    """Stands for the sticky comment: records the report path and report it was given."""

    report_path: str
    seen: list[Report] = field(default_factory=list)
    name: str = "the comment"
    place: str = "the pull request"

    def publish(self, report: Report) -> None:
        self.seen.append(report)


def _recorder(comments: list[RecordingComment]) -> Callable[[str], RecordingComment]:
    """The comment factory: each comment made is kept, to be looked at after publishing."""

    def make(report_path: str) -> RecordingComment:
        comments.append(RecordingComment(report_path))
        return comments[-1]

    return make


def test_every_report_file_is_written(tmp_path: Path) -> None:
    outcome = GateOutcome(_report(), EXIT_PASS)
    outputs = _outputs(tmp_path, sarif=tmp_path / "report.sarif")

    assert publish_files(outcome, outputs) == []

    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "pass"
    assert json.loads((tmp_path / "report.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")
    assert all(outcome.wrote(output) for output in outputs)


def test_a_file_that_cannot_be_written_turns_a_pass_into_exit_4(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    outputs = _outputs(tmp_path, sarif=blocker / "report.sarif")  # ENOTDIR, even for root
    outcome = GateOutcome(_report(), EXIT_PASS)

    [failure] = publish_files(outcome, outputs)

    assert failure.message.startswith(f"could not write --sarif {blocker / 'report.sarif'}: ")
    assert outcome.exit_code == EXIT_OUTPUT
    assert outcome.unwritten == [outputs[1]]
    assert (tmp_path / "report.json").exists() and (tmp_path / "junit.xml").exists()


def test_a_failed_gate_stays_a_failed_gate_when_a_file_fails(tmp_path: Path) -> None:
    outputs = _outputs(tmp_path)
    (tmp_path / "junit.xml").mkdir()  # a directory where the file should go
    outcome = GateOutcome(_report(failing=True), EXIT_FAIL)

    assert len(publish_files(outcome, outputs)) == 1
    assert outcome.exit_code == EXIT_FAIL


def test_refused_outputs_are_not_written(tmp_path: Path) -> None:
    outputs = _outputs(tmp_path)
    outcome = GateOutcome(_report(), EXIT_PASS, refused=[outputs[0]])

    assert publish_files(outcome, outputs) == []
    assert not (tmp_path / "report.json").exists()
    assert (tmp_path / "junit.xml").exists()


def test_the_summary_names_the_report_only_once_it_is_written(tmp_path: Path) -> None:
    outputs = _outputs(tmp_path)
    for refused, place in [([], "ci/report.json"), (outputs[:1], "not written")]:
        log = io.StringIO()
        outcome = GateOutcome(_report(), EXIT_PASS, refused=list(refused))
        publish(outcome, outputs, Audience(report_name="ci/report.json", summary=log))
        assert log.getvalue().rstrip().endswith(f"report: {place}"), log.getvalue()


def test_on_github_the_order_is_summary_annotations_files_warnings_then_comment(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    outputs = _outputs(tmp_path, sarif=blocker / "x.sarif")
    env = {"GITHUB_STEP_SUMMARY": str(blocker / "summary.md")}  # fails too
    comments: list[RecordingComment] = []
    log = io.StringIO()
    audience = Audience(
        report_name="ml/report.json",
        summary=log,
        github=log,
        env=env,
        repository_prefix="ml",
        comment=_recorder(comments),
    )

    publish(GateOutcome(_report(failing=True), EXIT_FAIL), outputs, audience)

    lines = log.getvalue().splitlines()
    stop = lines[0].removeprefix("::stop-commands::")
    end = lines.index(f"::{stop}::")
    assert any(line.startswith("Verdict: FAIL") for line in lines[1:end])
    assert lines[end + 1].startswith("::error ") and "file=ml/tflite-gate.yml" in lines[end + 1]
    assert lines[end + 2].startswith("::warning title=tflite-gate::could not write the job summary")
    assert lines[end + 3].startswith("::warning title=tflite-gate output::could not write --sarif")
    assert len(lines) == end + 4
    [comment] = comments
    assert comment.report_path == "ml/report.json"
    [seen] = comment.seen
    assert seen.findings[0].location is not None
    assert seen.findings[0].location.path == "ml/tflite-gate.yml"  # the repository's view


def test_a_report_not_written_is_not_named_on_github(tmp_path: Path) -> None:
    outputs = _outputs(tmp_path)
    step_outputs = tmp_path / "output.txt"
    comments: list[RecordingComment] = []
    audience = Audience(
        report_name="report.json",
        github=io.StringIO(),
        env={"GITHUB_OUTPUT": str(step_outputs)},
        comment=_recorder(comments),
    )

    publish(GateOutcome(_report(), EXIT_PASS, refused=outputs[:1]), outputs, audience)

    assert "report-path<<" in step_outputs.read_text()
    assert "\nreport.json\n" not in step_outputs.read_text()
    assert comments[0].report_path == ""


def test_the_json_report_on_stdout_and_failures_as_error_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    outputs = _outputs(tmp_path, sarif=blocker / "x.sarif")
    errors = io.StringIO()

    publish(
        GateOutcome(_report(), EXIT_PASS),
        outputs,
        Audience(report_name="r.json", json_to_stdout=True, errors=errors),
    )

    assert json.loads(capsys.readouterr().out)["verdict"] == "pass"
    assert errors.getvalue().startswith("tflite-gate: error: could not write --sarif ")


def test_a_signal_while_the_comment_waits_ends_publishing(tmp_path: Path) -> None:
    class Interrupted:
        name, place = "the comment", "the pull request"

        def publish(self, report: Report) -> None:
            raise Cancelled("SIGTERM")

    audience = Audience(
        report_name="r.json", github=io.StringIO(), comment=lambda _p: Interrupted()
    )

    with pytest.raises(Cancelled):
        publish(GateOutcome(_report(), EXIT_PASS), _outputs(tmp_path), audience)
    assert (tmp_path / "report.json").exists()  # the files came first

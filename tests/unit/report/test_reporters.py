"""The one failure policy of every reporter, and the report files it writes.

Real files in a temporary directory; places that fail do so for root too (a path under
a regular file, a directory where a file should go).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tflite_gate.findings import Location
from tflite_gate.report.model import Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.report.reporters import (
    ReporterSkipped,
    ReportFile,
    publish_each,
    report_file,
)
from tflite_gate.rules import make_finding
from tflite_gate.support.output_paths import STDOUT, Output


def _report() -> Report:
    report = new_report()
    where = Location(path="model.py", line=4, column=1)
    report.add([make_finding("flex-op", "tf.Erf needs Select TF ops", location=where)])
    report.finalize("error")
    return report


@dataclass
class Skipping:
    name: str = "the job summary"
    place: str = "summary.md"

    def publish(self, report: Report) -> None:
        raise ReporterSkipped("the job summary is full (1 MiB)")


def test_each_failure_names_its_reporter_and_the_others_still_publish(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    broken = report_file(Output("sarif", "--sarif", blocker / "x.sarif"))
    fine = report_file(Output("json", "--report", tmp_path / "r.json"))

    failures = publish_each(_report(), [broken, Skipping(), fine])

    assert [failure.reporter for failure in failures] == [broken, Skipping()]
    assert failures[0].message.startswith(f"could not write --sarif {blocker / 'x.sarif'}: ")
    assert failures[0].message.endswith("; free space or fix permissions there and run again")
    assert failures[1].message == (
        "did not write the job summary summary.md: the job summary is full (1 MiB)"
    )
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "fail"


def test_a_report_file_replaces_the_old_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    target.write_text("the previous run's report")

    report_file(Output("json", "--report", target)).publish(_report())

    assert json.loads(target.read_text())["summary"]["errors"] == 1
    assert [path.name for path in tmp_path.iterdir()] == ["r.json"]  # no temporary left


def test_a_report_file_of_dash_goes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    report_file(Output("junit", "--junit", STDOUT)).publish(_report())
    assert capsys.readouterr().out.startswith("<?xml")


def test_sarif_locations_get_the_repository_prefix(tmp_path: Path) -> None:
    target = tmp_path / "r.sarif"
    reporter = report_file(Output("sarif", "sarif", target), sarif_prefix="ml")

    reporter.publish(_report())

    [result] = json.loads(target.read_text())["runs"][0]["results"]
    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "ml/model.py"


def test_a_report_file_is_named_as_the_user_asked_for_it(tmp_path: Path) -> None:
    reporter = report_file(Output("json", "report", tmp_path / "r.json"))
    assert isinstance(reporter, ReportFile)
    assert (reporter.name, reporter.place) == ("report", str(tmp_path / "r.json"))

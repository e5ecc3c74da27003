"""The Report model: verdicts from fail_on, the shipped schema, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.support.harness import REPO
from tflite_gate.cli import main
from tflite_gate.findings import Severity
from tflite_gate.report.json_report import SCHEMA_FILE, report_schema, write_json_report
from tflite_gate.report.model import StopReason
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding


def test_shipped_schema_is_generated_from_the_model() -> None:
    shipped = json.loads(SCHEMA_FILE.read_text())
    assert shipped == report_schema(), "run: python -m tflite_gate.app.schema"


def test_schema_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == report_schema()


@pytest.mark.parametrize(
    ("severities", "fail_on", "verdict"),
    [
        ([], "error", "pass"),
        ([Severity.WARNING, Severity.NOTICE], "error", "pass"),
        ([Severity.WARNING], "warning", "fail"),
        ([Severity.ERROR], "error", "fail"),
        ([Severity.ERROR], "never", "pass"),
        ([Severity.NOTICE], "warning", "pass"),
    ],
)
def test_verdict_follows_fail_on(severities: list[Severity], fail_on: str, verdict: str) -> None:
    report = new_report()
    report.add([make_finding("converter-warning", "m", severity=s) for s in severities])
    report.finalize(fail_on)  # type: ignore[arg-type]
    assert report.verdict == verdict
    assert report.summary.errors == severities.count(Severity.ERROR)
    assert report.summary.warnings == severities.count(Severity.WARNING)


def test_internal_error_verdict() -> None:
    report = new_report()
    report.internal_error = "Traceback ..."
    report.finalize("never")
    assert report.verdict == "error"


def test_unknown_rule_ids_are_refused() -> None:
    with pytest.raises(KeyError):
        make_finding("no-such-rule", "x")


def test_written_report_validates_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    report = new_report()
    report.add([make_finding("flex-op", "m/v: uses FlexFoo", model="m", variant="v")])
    report.finalize("error")
    target = tmp_path / "out" / "report.json"
    write_json_report(report, target)
    jsonschema.validate(json.loads(target.read_text()), json.loads(SCHEMA_FILE.read_text()))
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_shipped_report_schema_matches_the_report_model() -> None:
    """The schema in the package is what scripts validate against: it must not drift."""
    import json

    from tflite_gate.report.json_report import report_schema

    shipped = REPO / "tflite_gate" / "schemas"
    written = json.loads((shipped / "report.schema.json").read_text())
    assert written == report_schema(), (
        "regenerate it: tflite-gate schema > tflite_gate/schemas/report.schema.json"
    )


def test_container_paths_become_repository_paths_everywhere() -> None:

    report = new_report()
    report.add(
        [
            make_finding(
                "runtime-unavailable",
                "m: custom-op library /github/workspace/ml/lib/x.so does not exist",
                error="in /github/workspace",
            )
        ]
    )
    shown = report.with_paths_relative_to("/github/workspace")
    assert shown.findings[0].message == "m: custom-op library ml/lib/x.so does not exist"
    assert shown.findings[0].error == "in ."
    assert report.findings[0].message.endswith("/github/workspace/ml/lib/x.so does not exist")
    untouched = report.with_paths_relative_to("/")  # a root that every path is under
    assert untouched.findings[0].message == report.findings[0].message


@pytest.mark.parametrize(
    ("stopped", "verdict"), [("usage", "error"), ("policy", "error"), ("cancelled", "cancelled")]
)
def test_the_verdict_of_a_stopped_run_comes_from_its_stop_reason(
    stopped: StopReason, verdict: str
) -> None:
    report = new_report()
    report.stopped = stopped
    report.finalize("never")
    assert report.verdict == verdict


def test_the_verdict_never_reads_rule_ids_back() -> None:
    """A finding with a stopping rule's id is a finding: the run did not stop for it."""
    report = new_report()
    report.add([make_finding(rule, rule) for rule in ("usage-error", "policy-invalid")])
    report.add([make_finding("cancelled", "cancelled")])
    report.finalize("error")
    assert report.verdict == "fail"

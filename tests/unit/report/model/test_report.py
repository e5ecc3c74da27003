"""The Report model: verdicts from fail_on or the stop reason, and paths as users see them."""

from __future__ import annotations

import pytest

from tflite_gate.findings import Severity
from tflite_gate.report.model import StopReason
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding


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

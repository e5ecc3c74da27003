"""The summary `tflite-gate check` prints: plain in logs, coloured for a person."""

from __future__ import annotations

import re

from tests.support.example_reports import example_report
from tflite_gate.report.terminal import render
from tflite_gate.rules import make_finding

SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_without_colour_there_is_no_escape_sequence() -> None:
    assert "\x1b" not in render(example_report(), "r.json")


def test_colour_marks_severities_statuses_and_the_verdict_and_changes_nothing_else() -> None:
    report = example_report()
    plain = render(report, "r.json")
    coloured = render(report, "r.json", colour=True)
    assert SGR.sub("", coloured) == plain
    lines = coloured.splitlines()
    [verdict] = [line for line in lines if "Verdict" in line]
    assert verdict.startswith(f"Verdict: \x1b[1;31m{report.verdict.upper()}\x1b[0m")
    assert any(line.startswith("  \x1b[1;31merror\x1b[0m") for line in lines), coloured
    assert any(": \x1b[32mpassed\x1b[0m" in line for line in lines), coloured
    assert any(": \x1b[31mdiverged\x1b[0m" in line for line in lines), coloured
    assert any(line.startswith("\x1b[2m") and "hint:" in line for line in lines), coloured


def test_text_from_the_model_or_policy_cannot_draw_on_the_terminal() -> None:
    report = example_report(
        extra_findings=[
            make_finding("model-load-failed", "m: cannot load \x1b[2J\x1b[32mPASS", model="m")
        ]
    )
    coloured = render(report, "r.json", colour=True)
    assert "\x1b[2J" not in coloured and "\\x1b[2J\\x1b[32mPASS" in coloured
    assert all(
        match
        in {"\x1b[0m", "\x1b[1;31m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m", "\x1b[2m"}
        for match in SGR.findall(coloured)
    )


def test_a_run_failing_on_ops_or_runtime_points_to_suggest() -> None:
    """After `init`, an added int8 variant fails on QUANTIZE and its runtime only."""
    report = example_report(
        extra_findings=[
            make_finding("op-not-allowed", "m/int8: QUANTIZE (v1) is not in ops.allow", model="m")
        ]
    )
    report.suggestion = None
    shown = render(report, "r.json")
    assert "The ops.allow and target_runtime these variants need" in shown
    assert shown.count("tflite-gate suggest") == 1

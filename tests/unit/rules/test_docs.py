"""`tflite-gate explain` and docs/rules.md: every rule explained, and findings link there."""

from __future__ import annotations

import pytest

from tests.support.harness import REPO
from tflite_gate.cli import main
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.report.sarif import to_sarif
from tflite_gate.report.terminal import render
from tflite_gate.rules import (
    DOCS_PATH,
    RULES,
    explain,
    make_finding,
    rule_url,
    rules_document,
)

DOCS_FILE = REPO / DOCS_PATH


def test_docs_rules_md_is_generated_from_the_explanations() -> None:
    assert DOCS_FILE.read_text() == rules_document(), "run: python -m tflite_gate.rules"
    for rule in RULES:
        assert f"\n## {rule}\n" in DOCS_FILE.read_text()


def test_explain_prints_one_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "flex-op"]) == 0
    out = capsys.readouterr().out
    assert out == explain("flex-op")
    assert out.startswith("## flex-op\n") and "How to fix:" in out and "```yaml" in out


def test_explain_without_a_rule_lists_them_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(RULES)


def test_an_unknown_rule_is_a_usage_error_naming_the_close_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain", "divergance"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "did you mean divergence?" in captured.err


def _report_with(rule: str) -> Report:
    report = new_report()
    report.add([make_finding(rule, "m/int8: cosine 0.9 is below 0.99", model="m")])
    return report


def test_findings_link_to_their_explanation() -> None:
    report = _report_with("divergence")
    sarif = to_sarif(report)
    [descriptor] = [
        r for r in sarif["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "divergence"
    ]
    assert descriptor["helpUri"] == rule_url("divergence")
    assert explain("divergence") in descriptor["help"]["markdown"]
    summary = render_markdown(report, max_chars=100_000)
    assert f"]({rule_url('divergence')})" in summary
    assert "tflite-gate explain RULE (e.g. divergence)" in render(report)

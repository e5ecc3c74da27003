"""`tflite-gate explain`: every rule explained, examples the gate accepts, findings link to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.harness import REPO
from tflite_gate.cli import main
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import load_policy
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.report.sarif import to_sarif
from tflite_gate.report.terminal import render
from tflite_gate.rules import (
    DOCS_PATH,
    EXPLANATIONS,
    RULES,
    explain,
    make_finding,
    rule_url,
    rules_document,
)

DOCS_FILE = REPO / DOCS_PATH
MODEL = "models: [{name: m, source: model.keras}]"


def test_every_rule_has_an_explanation_and_every_explanation_a_rule() -> None:
    assert set(EXPLANATIONS) == set(RULES)


def test_docs_rules_md_is_generated_from_the_explanations() -> None:
    assert DOCS_FILE.read_text() == rules_document(), "run: python -m tflite_gate.rules"
    for rule in RULES:
        assert f"\n## {rule}\n" in DOCS_FILE.read_text()


def _as_policy(fragment: str) -> str | None:
    """The example inside a whole policy, or None for a comment-only example."""
    body = "\n".join(line for line in fragment.splitlines() if not line.startswith("#"))
    if not body.strip():
        return None
    if body.startswith("models:"):
        return f"version: 1\n{body}\n"
    if body.startswith(("defaults:", "fail_on:")):
        return f"version: 1\n{body}\n{MODEL}\n"
    if body.startswith(("variants:", "runtimes:")):
        nested = "\n".join(f"    {line}" for line in body.splitlines())
        return f"version: 1\nmodels:\n  - name: m\n    source: model.keras\n{nested}\n"
    raise AssertionError(f"an example the test cannot place: {fragment!r}")


@pytest.mark.parametrize("rule", list(RULES))
def test_the_example_is_a_policy_the_gate_reads_as_explained(tmp_path: Path, rule: str) -> None:
    example = EXPLANATIONS[rule].example
    yaml.safe_load(example)  # every example is YAML
    text = _as_policy(example)
    if text is None:
        return
    (tmp_path / "tflite-gate.yml").write_text(text)
    if rule == "policy-invalid":  # its example is the mistake it explains
        with pytest.raises(PolicyError, match="quantize"):
            load_policy(tmp_path / "tflite-gate.yml", tmp_path)
    else:
        load_policy(tmp_path / "tflite-gate.yml", tmp_path)


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


def test_every_rule_has_an_emitter() -> None:
    """No rule id is reserved: each is written by some check (by its quoted id)."""
    package = REPO / "tflite_gate"
    declaring = [package / "findings.py", *(package / "rules").rglob("*.py")]
    source = "\n".join(path.read_text() for path in package.rglob("*.py") if path not in declaring)
    silent = [rule for rule in RULES if f'"{rule}"' not in source]
    assert silent == []


def test_the_op_not_allowed_hint_names_each_origin_with_its_fix() -> None:
    """Shown under every op-not-allowed finding: QUANTIZE is no dynamic-batch op."""
    hint = RULES["op-not-allowed"].hint
    assert "QUANTIZE and DEQUANTIZE come from a quantized variant with float32 inputs" in hint
    assert "(`io: int8` leaves them out)" in hint
    assert "SHAPE, PACK and STRIDED_SLICE from a dynamic batch" in hint
    causes = " ".join(EXPLANATIONS["op-not-allowed"].causes)
    assert "QUANTIZE and DEQUANTIZE" in causes

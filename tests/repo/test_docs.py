"""The README documents every rule id the gate can emit."""

from __future__ import annotations

from tests.support.harness import REPO
from tflite_gate.rules import RULES


def test_every_rule_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    missing = [rule for rule in RULES if f"`{rule}`" not in readme]
    assert missing == []


def test_every_rule_has_a_hint() -> None:
    assert all(rule.hint.strip() and rule.title.strip() for rule in RULES.values())


def test_the_readme_performance_table_is_what_the_benchmark_printed() -> None:
    """README's Performance section holds benchmarks/RESULTS.md, as `speed.py` wrote it."""
    readme = (REPO / "README.md").read_text()
    results = (REPO / "benchmarks" / "RESULTS.md").read_text()
    assert "python benchmarks/speed.py" in results
    assert results.strip() in readme

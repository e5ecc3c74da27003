"""Messages lead with what to do: grouping across variants, runtime failures' headlines."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from tests.support.tflite_builder import SIGNATURE_INPUT_NAME, build_model, builtin
from tflite_gate.findings import Finding, Location, group_across_variants
from tflite_gate.judge import checks
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.resolve import ModelConfig, resolve_model
from tflite_gate.report.github import annotation_commands
from tflite_gate.report.junit import to_junit_xml
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import (
    ConverterDiagnostics,
    ConverterError,
    ModelReport,
    Report,
    TensorInfo,
    VariantReport,
)
from tflite_gate.report.model.stamp import new_report
from tflite_gate.report.sarif import to_sarif
from tflite_gate.rules import make_finding
from tflite_gate.run.interpreter import run_interpreter
from tflite_gate.run.runtimes import RuntimeSpec, RuntimeUnavailable, prepare_runtime

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


@pytest.fixture
def config(tmp_path: Path) -> ModelConfig:
    (tmp_path / "tflite-gate.yml").write_text(
        textwrap.dedent(
            """\
            version: 1
            models:
              - name: m
                source: pkg.mod:build
                runtimes: [ai-edge-litert, {requirement: "tflite-runtime==0.0.1"}]
            """
        )
    )
    return resolve_model(load_policy(tmp_path / "tflite-gate.yml", tmp_path), 0)


def test_fixed_batch_hint_names_the_inputs_and_keeps_unknown_sizes_open() -> None:
    inputs = [
        TensorInfo(name="x", shape=[-1, 5, 3], dtype="float32"),
        TensorInfo(name="image", shape=[-1, -1, -1, 3], dtype="float32"),
    ]
    assert checks.fixed_batch_hint(inputs) == (
        "set a fixed batch: input_shapes: {x: [1, 5, 3], image: [1, <size>, <size>, 3]}"
    )
    assert checks.fixed_batch_hint([TensorInfo(name="x", shape=[1, 5], dtype="float32")]) is None


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


@pytest.mark.slow
def test_unresolvable_pip_requirement_leads_with_pips_error(
    tmp_path: Path, config: ModelConfig
) -> None:
    spec = RuntimeSpec("tflite-runtime==0.0.1", "tflite-runtime==0.0.1")
    with pytest.raises(RuntimeUnavailable) as caught:
        prepare_runtime(spec, cache_dir=tmp_path / "cache")
    [finding] = checks.check_unavailable_runtime(config, spec.name, str(caught.value))
    assert finding.message.startswith(
        "m: runtime tflite-runtime==0.0.1 is unavailable: ERROR: Could not find a version "
        "that satisfies the requirement tflite-runtime==0.0.1"
    )
    assert "check the runtime's requirement" in finding.message
    assert finding.error is not None and "pip install" in finding.error
    assert finding.location is not None and finding.location.line == 5


@pytest.mark.slow
def test_worker_without_numpy_leads_with_the_exception_line(
    tmp_path: Path, config: ModelConfig
) -> None:
    """A real environment without numpy: the worker's first import fails."""
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    model = tmp_path / "relu.tflite"
    model.write_bytes(build_model([builtin("RELU")]))
    result = run_interpreter(
        model,
        {SIGNATURE_INPUT_NAME: np.zeros((1, 1, 4), np.float32)},
        python=str(venv / "bin" / "python"),
        module="ai_edge_litert.interpreter",
        scratch=tmp_path / "scratch",
        reproducer_dir=tmp_path / "repro",
        timeout_s=60,
        memory_mb=None,
    )
    assert (result.status, result.message) == (
        "import",
        "ModuleNotFoundError: No module named 'numpy'",
    )
    [finding] = checks.check_unavailable_runtime(config, "bare", result.message or "")
    assert finding.message == (
        "m: runtime bare is unavailable: ModuleNotFoundError: No module named 'numpy'"
    )


@pytest.mark.slow
def test_pips_context_line_does_not_hide_its_error(tmp_path: Path) -> None:
    """pip first says which versions need another Python; the error is the line after."""
    spec = RuntimeSpec("scipy==1.7.0", "scipy==1.7.0", module="scipy")
    with pytest.raises(RuntimeUnavailable) as caught:
        prepare_runtime(spec, cache_dir=tmp_path / "cache")
    assert "ERROR: Ignored the following versions" in str(caught.value)
    assert str(caught.value).startswith(
        "ERROR: Could not find a version that satisfies the requirement scipy==1.7.0"
    )

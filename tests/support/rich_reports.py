"""Reports for the reporters' tests: one with every finding kind and hostile text, an
empty one, and the examples checked once per session by the real CLI (SARIF and JUnit
written beside it)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import REPO, run_gate
from tflite_gate.findings import Location, Severity
from tflite_gate.report.model import (
    ConverterDiagnostics,
    ConverterError,
    EnvironmentInfo,
    ModelReport,
    OutputMetrics,
    Report,
    RuntimeRun,
    Tool,
    VariantReport,
)
from tflite_gate.rules import make_finding

HOSTILE = "tensor <x> & \"y\" 'z' ]]> \x01\x08\x1b nul\x00 — Ünïcødé ✓ 模型 🚀"


def sarif_metrics(output: str, cosine: float) -> OutputMetrics:
    return OutputMetrics(
        output=output,
        samples=16,
        compared=160,
        max_abs=0.0116,
        mean_abs=0.003,
        rmse=0.0043,
        rel_rmse=0.0395,
        cosine=cosine,
        snr_db=28.07,
        top1=1.0,
    )


def empty_report(**fields: Any) -> Report:
    return Report(
        tool=Tool(version="0.1.0"),
        started_at="2026-01-02T03:04:05+00:00",
        duration_s=12.3456,
        environment=EnvironmentInfo(python="3.11.7", platform="Linux-x86_64", packages={}),
        timings={"policy": 0.004, "total": 12.3456},
        **fields,
    )


def rich_report(fail_on: str = "error") -> Report:
    """Every severity, run status and location kind the reporters must handle."""
    policy = "tflite-gate.yml"
    classifier = ModelReport(
        name="classifier",
        source="example_models.classifier:build",
        source_kind="factory",
        loaded=True,
        timings={"load+convert": 3.5, "total": 3.9},
        variants=[
            VariantReport(
                name="float",
                quantization="none",
                io="float32",
                status="converted",
                timings={"convert": 0.26, "inspect": 0.001},
                runs=[
                    RuntimeRun(
                        runtime="ai-edge-litert",
                        runtime_version="2.3.0",
                        status="passed",
                        samples=16,
                        metrics=[sarif_metrics("probs", 0.9999999)],
                        timings={"execute": 0.105},
                    ),
                    RuntimeRun(
                        runtime="tflite-runtime-2.14",
                        runtime_version="2.14.0",
                        status="error",
                        phase="allocate",
                        message="Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'",
                        timings={"execute": 0.3},
                    ),
                ],
            ),
            VariantReport(
                name="int8",
                quantization="int8",
                io="int8",
                status="converted",
                timings={"convert": 0.29, "inspect": 0.001},
                runs=[
                    RuntimeRun(
                        runtime="ai-edge-litert",
                        runtime_version="2.3.0",
                        status="diverged",
                        samples=16,
                        metrics=[sarif_metrics("probs", 0.999226)],
                        timings={"execute": 0.169},
                    ),
                    RuntimeRun(runtime="old-runtime", status="unavailable"),
                ],
            ),
        ],
    )
    gram = ModelReport(
        name="gram",
        source="example_models.gram:build",
        source_kind="factory",
        loaded=True,
        timings={"total": 3.3},
        variants=[
            VariantReport(
                name="float",
                quantization="none",
                io="float32",
                status="conversion-failed",
                timings={"convert": 0.24},
                converter=ConverterDiagnostics(
                    errors=[
                        ConverterError(
                            code="ERROR_NEEDS_FLEX_OPS",
                            op="tf.MatrixDeterminant",
                            message="'tf.MatrixDeterminant' op is neither a custom op nor a flex op",
                            location=Location(path="example_models/gram.py", line=16),
                        )
                    ]
                ),
            )
        ],
    )
    fragile = ModelReport(
        name="fragile",
        source="models/fragile.tflite",
        source_kind="tflite",
        loaded=True,
        variants=[
            VariantReport(
                name="float",
                quantization="none",
                io="float32",
                status="converted",
                runs=[
                    RuntimeRun(
                        runtime="ai-edge-litert",
                        status="crash",
                        phase="invoke",
                        sample=3,
                        signal="SIGSEGV",
                        reproducer=".tflite-gate/artifacts/fragile/float/repro",
                        timings={"execute": 0.5},
                    ),
                    RuntimeRun(runtime="slow-runtime", status="timeout", phase="invoke"),
                    RuntimeRun(
                        runtime="flexless",
                        status="unverifiable",
                        message="Select TensorFlow op(s) not supported by this interpreter",
                    ),
                ],
            )
        ],
    )
    findings = [
        make_finding(
            "version-mismatch",
            "tensorflow 2.21.0 is installed, the policy requires tensorflow==2.18.*",
            location=Location(path=policy, line=65, column=19),
            package="tensorflow",
            details={"specifier": "==2.18.*", "installed": "2.21.0"},
        ),
        make_finding(
            "interpreter-error",
            "classifier/float on tflite-runtime-2.14: Didn't find op for builtin opcode "
            "'FULLY_CONNECTED' version '12' in allocate",
            model="classifier",
            variant="float",
            runtime="tflite-runtime-2.14",
            location=Location(path=policy, line=20, column=7),
        ),
        make_finding(
            "divergence",
            "classifier/int8 on ai-edge-litert: output 'probs' cosine 0.999226 is below "
            "min_cosine 0.99999, worst sample 6",
            model="classifier",
            variant="int8",
            runtime="ai-edge-litert",
            location=Location(path=policy, line=35, column=81),
            output="probs",
            metric="cosine",
            details={"value": 0.999226},
        ),
        make_finding(
            "converter-warning",
            "classifier/int8: the converter warned: quantization fell back to float for 1 op",
            model="classifier",
            variant="int8",
            location=Location(path=policy, line=30),
            details={"log": "fell back to float"},
        ),
        make_finding(
            "runtime-unavailable",
            "classifier: runtime old-runtime is unavailable: no matching distribution",
            model="classifier",
            runtime="old-runtime",
            location=Location(path=policy, line=22, column=7),
        ),
        make_finding(
            "flex-op",
            "gram/float: tf.MatrixDeterminant needs Select TF ops (FlexMatrixDeterminant); "
            "conversion failed",
            model="gram",
            variant="float",
            location=Location(path="example_models/gram.py", line=16),
            op="tf.MatrixDeterminant",
            flex_op="FlexMatrixDeterminant",
        ),
        make_finding(
            "interpreter-crash",
            f"fragile/float on ai-edge-litert: the interpreter crashed with SIGSEGV: {HOSTILE}",
            model="fragile",
            variant="float",
            runtime="ai-edge-litert",
            location=Location(path=policy, line=40, column=5),
        ),
        make_finding(
            "interpreter-timeout",
            "fragile/float on slow-runtime: no result within 60 s in invoke",
            model="fragile",
            variant="float",
            runtime="slow-runtime",
            location=Location(path=policy, line=41, column=5),
        ),
        make_finding(
            "flex-op",
            "fragile/float on flexless: not executable here (the interpreter has no Flex "
            "delegate); numerics not verified",
            severity=Severity.NOTICE,
            model="fragile",
            variant="float",
            runtime="flexless",
            location=Location(path=policy, line=12),
        ),
        make_finding(
            "converter-warning",
            "a finding nobody could place",
            severity=Severity.WARNING,
            model="fragile",
        ),
    ]
    report = empty_report(policy=policy, models=[classifier, gram, fragile])
    report.add(findings)
    report.finalize(fail_on)  # type: ignore[arg-type]
    return report


@dataclass
class ExamplesRun:
    report: Report
    sarif: Path
    junit: Path


@cache
def examples_run_in(base: Path) -> ExamplesRun:
    workspace = base / "examples"
    shutil.copytree(
        REPO / "examples",
        workspace,
        ignore=shutil.ignore_patterns(".tflite-gate"),
        dirs_exist_ok=True,
    )
    out = base / "out"
    sarif, junit = out / "gate.sarif", out / "junit.xml"
    run = run_gate(workspace, "--quiet", "--sarif", str(sarif), "--junit", str(junit))
    assert run.returncode == 1, run.stderr
    assert run.report is not None, run.stderr
    return ExamplesRun(Report.model_validate(run.report), sarif, junit)


def examples_run(tmp_path_factory: pytest.TempPathFactory) -> ExamplesRun:
    """The CLI on a copy of examples/, once per test session (shared with test_junit)."""
    base = tmp_path_factory.getbasetemp() / "reporters-examples"
    if not base.exists():
        base.mkdir()
    return examples_run_in(base)

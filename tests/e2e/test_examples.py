"""The bundled examples, run as a user would: every failure kind with its rule and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support.harness import REPO, GateRun, run_gate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("ws") / "examples"
    shutil.copytree(REPO / "examples", target, ignore=shutil.ignore_patterns(".tflite-gate"))
    return target


@pytest.fixture(scope="module")
def showcase(examples: Path) -> GateRun:
    return run_gate(examples)


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def _location(finding: dict[str, Any]) -> tuple[str, int | None]:
    return finding["location"]["path"], finding["location"]["line"]


def test_showcase_fails_with_exit_1(showcase: GateRun) -> None:
    assert showcase.returncode == 1, showcase.stderr
    assert showcase.report is not None
    assert showcase.report["verdict"] == "fail"
    assert "Verdict: FAIL" in showcase.stdout
    assert "Traceback" not in showcase.stderr


def test_passing_model_has_no_findings(showcase: GateRun) -> None:
    assert showcase.findings(model="classifier") == []
    model = showcase.model("classifier")
    assert [v["status"] for v in model["variants"]] == ["converted", "converted"]
    int8 = model["variants"][1]["inspection"]
    assert int8["inputs"][0]["dtype"] == "int8"
    assert int8["inputs"][0]["quantization"]["scale"][0] > 0
    assert "PTQ_FULL_INTEGER" in int8["conversion"]["optimization_modes"]


def test_op_outside_allow_list_points_at_the_allow_line(showcase: GateRun, examples: Path) -> None:
    [finding] = showcase.findings(rule="op-not-allowed", model="tiny-cnn")
    assert "MEAN" in finding["message"]
    assert finding["severity"] == "error"
    assert _location(finding) == (
        "tflite-gate.yml",
        _line_of(examples / "tflite-gate.yml", "allow:"),
    )


def test_flex_op_is_annotated_at_the_model_code_line(showcase: GateRun, examples: Path) -> None:
    [finding] = showcase.findings(rule="flex-op", model="gram")
    code = examples / "example_models" / "gram.py"
    assert _location(finding) == ("example_models/gram.py", _line_of(code, "return tf.linalg.det("))
    assert "FlexMatrixDeterminant" in finding["message"]
    assert finding["details"]["error_code"] == "ERROR_NEEDS_FLEX_OPS"
    assert showcase.model("gram")["variants"][0]["status"] == "conversion-failed"


def test_unsupported_op_is_a_conversion_failure_at_the_code_line(
    showcase: GateRun, examples: Path
) -> None:
    [finding] = showcase.findings(rule="conversion-failed", model="spectral")
    code = examples / "example_models" / "spectral.py"
    assert _location(finding) == (
        "example_models/spectral.py",
        _line_of(code, "return tf.linalg.svd("),
    )
    assert "tf.Svd" in finding["message"]


def test_dynamic_range_needs_a_newer_runtime_than_target(showcase: GateRun, examples: Path) -> None:
    [finding] = showcase.findings(rule="runtime-too-old", model="classifier-dynamic")
    assert "FULLY_CONNECTED v12 needs runtime 2.17.0" in finding["message"]
    assert finding["details"]["target_runtime"] == "2.14"
    policy = examples / "tflite-gate.yml"
    assert _location(finding) == ("tflite-gate.yml", _line_of(policy, "target_runtime:"))
    inspection = showcase.model("classifier-dynamic")["variants"][0]["inspection"]
    assert inspection["metadata_min_runtime"] == "2.17.0"
    assert inspection["required_runtime"] == "2.17.0"


def test_tensorflow_outside_specifier_points_at_the_specifier(
    showcase: GateRun, examples: Path
) -> None:
    [finding] = showcase.findings(rule="version-mismatch")
    assert finding["model"] == "classifier-pinned"
    assert "==2.18.*" in finding["message"]
    assert _location(finding) == (
        "tflite-gate.yml",
        _line_of(examples / "tflite-gate.yml", '"==2.18.*"'),
    )


def test_int8_held_too_tight_diverges_at_its_threshold(showcase: GateRun, examples: Path) -> None:
    [finding] = showcase.findings(rule="divergence", model="classifier-strict")
    assert finding["variant"] == "int8"
    line = _line_of(examples / "tflite-gate.yml", "min_cosine: 0.99999")
    assert _location(finding) == ("tflite-gate.yml", line)
    assert finding["details"]["tightest"]["min_cosine"] < 0.99999


def test_every_converted_variant_ran_on_the_interpreter(showcase: GateRun) -> None:
    statuses = {
        (model["name"], variant["name"]): [run["status"] for run in variant["runs"]]
        for model in showcase.report["models"]  # type: ignore[index]
        for variant in model["variants"]
        if variant["status"] == "converted"
    }
    assert statuses[("classifier", "int8")] == ["passed"]
    assert statuses[("classifier-strict", "int8")] == ["diverged"]
    assert all(len(runs) == 1 for runs in statuses.values())


def test_runtime_matrix_example(examples: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    cache = tmp_path_factory.getbasetemp() / "runtime-cache"
    run = run_gate(examples, "--policy", str(examples / "runtimes.yml"), "--cache-dir", str(cache))
    assert run.returncode == 1
    rules = sorted((f["rule"], f["model"]) for f in run.findings() if f["severity"] != "notice")
    assert rules == [
        ("interpreter-crash", "classifier-on-buggy-runtime"),
        ("interpreter-error", "classifier-dynamic"),
    ]
    [crash] = run.findings(rule="interpreter-crash")
    assert (crash["details"]["phase"], crash["details"]["signal"]) == ("invoke", "SIGSEGV")
    assert (examples / crash["details"]["reproducer"] / "reproduce.py").is_file()
    [flex] = run.findings(model="gram-with-flex")  # one notice per variant, after its runs
    assert (flex["rule"], flex["severity"]) == ("flex-op", "notice")
    assert flex["details"]["suggestion"] == (
        'runtimes: [ai-edge-litert, {requirement: "tensorflow==2.18.1"}]'
    )


def test_report_validates_against_the_shipped_schema(showcase: GateRun) -> None:
    schema = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(showcase.report, schema)
    assert showcase.report is not None
    assert showcase.report["environment"]["packages"]["tensorflow"]
    assert showcase.report["summary"]["errors"] == len(showcase.findings())


def test_converted_artifacts_are_saved_in_the_workspace(showcase: GateRun, examples: Path) -> None:
    variant = showcase.model("classifier")["variants"][0]
    assert variant["artifact"] == ".tflite-gate/artifacts/classifier/float.tflite"
    assert (examples / variant["artifact"]).stat().st_size == variant["inspection"]["size_bytes"]


def test_passing_policy_exits_0(examples: Path) -> None:
    run = run_gate(examples, "--policy", str(examples / "passing.yml"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.report is not None and run.report["verdict"] == "pass"
    assert "Verdict: PASS" in run.stdout


def test_only_limits_the_models(examples: Path) -> None:
    run = run_gate(examples, "--only", "tiny-cnn")
    assert [m["name"] for m in run.report["models"]] == ["tiny-cnn"]  # type: ignore[index]
    assert {f["rule"] for f in run.findings()} == {"op-not-allowed"}

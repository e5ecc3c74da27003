"""`tflite-gate suggest`'s snippet: thresholds, `ops.allow` additions and a
`target_runtime`, each loosening marked as what it is and checked before it is offered;
a denied op is never allowed."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.support.check_facts import inspected_variant, loaded_policy
from tests.support.suggest_reports import (
    TWO_VARIANTS,
    noisy_run,
    pasted_mapping,
    report_of,
    write_report,
)
from tests.support.tflite_builder import builtin
from tflite_gate.cli import main
from tflite_gate.judge.checks import check_ops_allowed, check_runtime
from tflite_gate.judge.suggest import (
    annotated_snippet,
    measured_text,
    policy_loosenings,
    suggest_policy,
    verify,
)
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.policy.schema import Policy
from tflite_gate.report.model import ModelReport, Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding


def test_suggest_command_prints_a_commented_snippet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    report = report_of(
        loaded, {("det", "int8"): [noisy_run(loaded, "det", "int8", {"probs": 0.05}, "x")]}
    )
    report_path = write_report(tmp_path, report)
    code = main(
        ["suggest", "--workspace", str(tmp_path), "--report", str(report_path), "--margin", "25%"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("# Merge into tflite-gate.yml (list entries by name). Margin 25%")
    assert (
        "# loosens det/int8 output 'probs': min_cosine 0.99999 (tflite-gate.yml:5) measured " in out
    )
    body = yaml.safe_load(out)
    value = body["models"][0]["variants"][0]["max_divergence"]["per_output"]["probs"]["min_cosine"]
    verify(yaml.safe_dump(body), report, loaded)
    assert value < 0.99999


def test_the_snippet_comments_show_values_as_written(tmp_path: Path) -> None:
    loaded = loaded_policy(
        tmp_path,
        """\
        version: 1
        models:
          - name: det
            source: det.keras
            max_divergence: {min_cosine: 0.9999999}
        """,
    )
    runs = {
        ("det", "float"): [noisy_run(loaded, "det", "float", {"probs": 1e-3, "box": 1e-3}, "x")]
    }
    suggestion = suggest_policy(report_of(loaded, runs), loaded)
    assert suggestion.thresholds is not None
    [item] = suggestion.thresholds.thresholds
    text = annotated_snippet(suggestion, "tflite-gate.yml")
    written = yaml.safe_load(text)["models"][0]["variants"][0]["max_divergence"]["min_cosine"]
    assert written == item.value
    # A comment that rounds as it prints would show min_cosine 1 and a tighter value.
    measured = measured_text(item.measured, item.threshold, item.value)
    assert f"min_cosine 0.9999999 (tflite-gate.yml:5) measured {measured} -> {written!r}" in text


OPS_POLICY = """\
    version: 1
    models:
      - name: tiny
        source: tiny.keras
        ops: {allow: [FULLY_CONNECTED, SOFTMAX], deny: [TANH]}
        versions: {target_runtime: 1.5.0, tensorflow: ">=2.16"}
        variants:
          - {name: float}
          - {name: int8, quantization: int8}
    """


def _checked_ops_report(loaded: LoadedPolicy) -> Report:
    """tiny/int8 as TF 2.21 converts a Dense classifier to int8, plus a denied TANH."""
    float_ops = (builtin("FULLY_CONNECTED"), builtin("SOFTMAX"))
    int8_ops = (
        builtin("QUANTIZE"),
        builtin("FULLY_CONNECTED", 4),
        builtin("SOFTMAX", 2),
        builtin("DEQUANTIZE", 2),
        builtin("TANH"),
    )
    variants = [
        inspected_variant("float", "none", *float_ops),
        inspected_variant("int8", "int8", *int8_ops),
    ]
    report = new_report()
    report.policy = loaded.display_path
    report.models.append(ModelReport(name="tiny", source="tiny.keras", variants=variants))
    config = resolve_model(loaded, 0)
    for variant in variants:
        report.add(check_ops_allowed(config, variant) + check_runtime(config, variant))
    report.finalize("error")
    return report


def test_ops_and_the_runtime_a_variant_needs_are_offered_as_loosenings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = loaded_policy(tmp_path, OPS_POLICY)
    report = _checked_ops_report(loaded)
    assert sorted(f.rule for f in report.findings) == [
        "op-not-allowed",
        "op-not-allowed",
        "op-not-allowed",
        "runtime-too-old",
    ]
    suggestion = suggest_policy(report, loaded)
    assert suggestion.thresholds is None
    pasted = replace(
        loaded, policy=Policy.model_validate(pasted_mapping(loaded, suggestion.snippet))
    )
    config = resolve_model(pasted, 0)
    assert config.allow_ops.value == ["FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE", "QUANTIZE"]
    assert config.target_runtime.value == "1.14.0"
    assert config.version_specs["tensorflow"].value == ">=2.16"  # the rest stays as written
    assert config.deny_ops.value == ["TANH"]
    still = [
        finding.message
        for variant in report.models[0].variants
        for finding in check_ops_allowed(config, variant) + check_runtime(config, variant)
    ]
    assert still == ["tiny/int8: TANH (v1, used 1x) is listed in ops.deny"]  # never loosened

    report_path = write_report(tmp_path, report)
    assert main(["suggest", "--workspace", str(tmp_path), "--report", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "# loosens tiny: ops.allow + DEQUANTIZE, QUANTIZE (used by int8; tflite-gate.yml:5): "
        "keep it only if the app's runtime has them\n"
    ) in out
    assert (
        "# loosens tiny: target_runtime 1.5.0 -> 1.14.0 (needed by int8; tflite-gate.yml:6): "
        "keep it only if every device the app ships to runs 1.14.0 or newer\n"
    ) in out
    assert "# not a threshold (op-not-allowed): tiny/int8: TANH (v1, used 1x) is listed" in out
    assert "QUANTIZE (v1, used 1x) is not in ops.allow" not in out  # fixed by the snippet
    assert "runtime-too-old" not in out
    assert yaml.safe_load(out) == yaml.safe_load(suggestion.snippet)


def test_each_loosening_removes_only_the_findings_it_allows(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, OPS_POLICY)
    report = _checked_ops_report(loaded)
    ops, runtime = policy_loosenings(report, loaded)
    assert (ops.rule, ops.ops, ops.entry) == (
        "op-not-allowed",
        ("DEQUANTIZE", "QUANTIZE"),
        ("models", 0),
    )
    assert ops.block == {"ops": {"allow": ["FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE", "QUANTIZE"]}}
    assert (runtime.rule, runtime.block) == (
        "runtime-too-old",
        {"versions": {"target_runtime": "1.14.0"}},
    )
    by_op = {f.op: f for f in report.findings if f.rule == "op-not-allowed"}
    assert ops.fixes(by_op["QUANTIZE"]) and not ops.fixes(by_op["TANH"])
    [too_old] = [f for f in report.findings if f.rule == "runtime-too-old"]
    assert runtime.fixes(too_old) and not ops.fixes(too_old)
    elsewhere = by_op["QUANTIZE"].model_copy(update={"model": "other"})
    assert not ops.fixes(elsewhere)


def test_nothing_is_loosened_where_the_policy_sets_no_limit(tmp_path: Path) -> None:
    unlimited = OPS_POLICY.replace(
        "        ops: {allow: [FULLY_CONNECTED, SOFTMAX], deny: [TANH]}\n", ""
    ).replace("target_runtime: 1.5.0, ", "")
    loaded = loaded_policy(tmp_path, unlimited)
    report = _checked_ops_report(loaded)
    assert report.findings == []
    assert policy_loosenings(report, loaded) == []
    suggestion = suggest_policy(report, loaded)
    assert (suggestion.snippet, suggestion.thresholds, suggestion.defects) == ("", None, [])


def test_the_suggestion_covers_finite_divergences_and_what_it_loosens(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, OPS_POLICY)
    report = _checked_ops_report(loaded)
    suggestion = suggest_policy(report, loaded)
    covered = {f.op or f.rule for f in report.findings if suggestion.covers(f)}
    assert covered == {"QUANTIZE", "DEQUANTIZE", "runtime-too-old"}  # TANH is denied
    finite = make_finding("divergence", "tiny/int8: cosine 0.9", model="tiny", variant="int8")
    infinite = finite.model_copy(update={"infinite": "inf"})
    assert suggestion.covers(finite) and not suggestion.covers(infinite)


def test_comments_carry_printable_ascii_only(tmp_path: Path) -> None:
    """A snippet is pasted into a terminal or a YAML file; comments show what they can."""
    path = tmp_path / "pölicy.yml"
    path.write_text(textwrap.dedent(OPS_POLICY), encoding="utf-8")
    loaded = load_policy(path, tmp_path)
    suggestion = suggest_policy(_checked_ops_report(loaded), loaded)
    text = annotated_snippet(suggestion, loaded.display_path)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert comments[0] == "# Merge into p?licy.yml (list entries by name)."
    assert "(used by int8; p?licy.yml:5)" in comments[1]
    assert text.isascii()
    assert yaml.safe_load(text) == yaml.safe_load(suggestion.snippet)

"""Suggested thresholds: loosened by the margin, placed where they take effect, verified.

Reports here are made by the real comparison (`compare_run`) of arrays against the
thresholds a real policy resolves to, as the pipeline does after an interpreter run.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.support.tflite_builder import OpSpec, build_model, builtin
from tflite_gate.cli import main
from tflite_gate.judge.checks import check_divergence, check_ops_allowed, check_runtime
from tflite_gate.judge.compare import MAX_METRICS, OutputPlan, compare_run
from tflite_gate.judge.suggest import (
    SuggestionError,
    add_keep_float_snippets,
    annotated_snippet,
    loosened,
    measured_text,
    merge,
    output_defect,
    policy_mapping,
    suggest_policy,
    suggest_thresholds,
    suggestion_for,
    verify,
)
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.policy.schema import Policy
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import (
    LayerDiagnosis,
    LayerStat,
    ModelReport,
    OutputMetrics,
    Report,
    RuntimeRun,
    VariantReport,
)
from tflite_gate.report.model.stamp import new_report
from tflite_gate.report.terminal import render
from tflite_gate.support.run_options import parse_margin
from tflite_gate.tflite.facts import inspect_model

RNG = np.random.default_rng(0)
REFERENCE = {"probs": RNG.random((8, 10)), "box": RNG.random((8, 4))}


def _load(tmp_path: Path, text: str) -> LoadedPolicy:
    path = tmp_path / "tflite-gate.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_policy(path, tmp_path)


def _run(
    loaded: LoadedPolicy, model: str, variant: str, noise: dict[str, float], runtime: str
) -> RuntimeRun:
    """A run whose outputs are the reference plus `noise` (relative), judged by the policy."""
    actual = {
        name: ref + noise.get(name, 0.0) * np.abs(ref).max() * RNG.standard_normal(ref.shape)
        for name, ref in REFERENCE.items()
    }
    return _judged(loaded, model, variant, REFERENCE, actual, runtime)


def _judged(
    loaded: LoadedPolicy,
    model: str,
    variant: str,
    reference: dict[str, np.ndarray],
    actual: dict[str, np.ndarray],
    runtime: str,
    *,
    top1: bool = False,
) -> RuntimeRun:
    """A run with these outputs, compared as the pipeline does under the policy."""
    index = [m.name for m in loaded.policy.models].index(model)
    plan = resolve_model(loaded, index).thresholds[variant]
    judged = compare_run(
        reference,
        actual,
        by_order=False,
        plan_for=lambda name, _: OutputPlan(
            {k: s.value for k, s in plan.for_output(name).items()}, top1=top1
        ),
    )
    return RuntimeRun(
        runtime=runtime,
        status=judged.status,
        samples=8,
        metrics=judged.metrics,
        violations=judged.violations,
        tightest=judged.tightest,
    )


def _report(loaded: LoadedPolicy, runs: dict[tuple[str, str], list[RuntimeRun]]) -> Report:
    report = new_report()
    report.policy = loaded.display_path
    for model in loaded.policy.models:
        variants = [
            VariantReport(name=v, quantization="int8", io="float32", status="converted", runs=r)
            for (m, v), r in runs.items()
            if m == model.name
        ]
        report.models.append(ModelReport(name=model.name, source=model.source, variants=variants))
    return report


def _pasted(loaded: LoadedPolicy, snippet: str) -> dict[str, object]:
    return merge(policy_mapping(loaded.policy), yaml.safe_load(snippet))


TWO_VARIANTS = """\
    version: 1
    models:
      - name: det
        source: det.keras
        max_divergence: {min_cosine: 0.99999, max_abs: 0.5}
        variants:
          - {name: float}
          - {name: int8, quantization: int8}
    """


def test_margin_spellings() -> None:
    assert parse_margin("50%") == 0.5
    assert parse_margin("0.5") == 0.5
    assert parse_margin(" 0 ") == 0.0
    for bad in ("-1", "abc", "nan", "inf", "1e9", "", "%"):
        with pytest.raises(ValueError, match="margin"):
            parse_margin(bad)


def test_loosened_values() -> None:
    assert loosened("max_abs", 0.0123, 1.0) == 0.025
    assert loosened("rel_rmse", 0.0123, 0.0) == 0.013  # no margin: still rounded looser
    assert loosened("min_cosine", 0.999, 1.0) == 0.996  # the gap grows with the error squared
    assert loosened("min_snr_db", 40.0, 1.0) == 33.9  # 20·log10(2) = 6.02 dB
    assert loosened("min_top1", 0.9, 1.0) == 0.8
    assert loosened("min_top1", 0.2, 9.0) == 0.0  # never below the range
    assert loosened("min_cosine", -0.5, 9.0) == -1.0


@pytest.mark.slow
@given(
    key=st.sampled_from(["max_abs", "rmse", "rel_rmse", "min_cosine", "min_snr_db", "min_top1"]),
    measured=st.floats(0.0, 1.0, allow_nan=False),
    margin=st.floats(0.0, 100.0, allow_nan=False),
)
def test_a_loosened_threshold_passes_what_was_measured_and_carries_no_noise(
    key: str, measured: float, margin: float
) -> None:
    value = loosened(key, measured, margin)  # type: ignore[arg-type]
    assert math.isfinite(value)
    assert value >= measured if key in MAX_METRICS else value <= measured
    assert float(f"{value:.12g}") == value, f"float noise: {value!r}"


def test_loosened_values_are_the_decimals_they_print_as() -> None:
    # 1 - 0.07 is 0.9299999999999999 in binary: the threshold written must read 0.93.
    assert repr(loosened("min_cosine", 0.9825, 1.0)) == "0.93"
    assert repr(loosened("min_top1", 0.965, 1.0)) == "0.93"
    assert repr(loosened("min_cosine", 0.99999, 1.0)) == "0.99996"  # the gap's digits stay


def _metrics(**values: float | bool) -> OutputMetrics:
    """One output's metrics: a good conversion's, but for `values`."""
    good: dict[str, float | bool] = {
        "max_abs": 0.01,
        "mean_abs": 0.001,
        "rmse": 0.002,
        "rel_rmse": 0.05,
        "cosine": 0.999,
        "snr_db": 26.0,
    }
    return OutputMetrics(output="probs", samples=8, compared=80, **{**good, **values})  # type: ignore[arg-type]


def test_an_output_no_threshold_should_pass_is_a_defect() -> None:
    assert output_defect([_metrics(top1=0.9)], 1.0, classes=10) is None
    # textgenrnn's dynamic variant: unrelated to its source (cosine 5e-16, top1 0.17).
    textgenrnn = output_defect([_metrics(cosine=5e-16, top1=0.17)], 1.0, classes=None)
    assert textgenrnn is not None and textgenrnn.startswith("cosine 5e-16: ")
    assert "a min_cosine that passes it with the 100% margin is -1.0" in textgenrnn
    assert "at or below 0, where an unrelated output passes" in textgenrnn
    # The margin lets the error grow: an error that would reach the output's own size.
    assert output_defect([_metrics(cosine=0.7)], 1.0, classes=None) is not None
    assert output_defect([_metrics(cosine=0.7)], 0.0, classes=None) is None
    grown = output_defect([_metrics(rel_rmse=0.6)], 1.0, classes=None)
    assert grown is not None and "is 1.2, at or above 1, where an output of zeros passes" in grown
    # Top-1 agreement at or below chance: a model that guesses would pass.
    at_chance = output_defect([_metrics(top1=0.25)], 0.0, classes=4)
    assert at_chance is not None and "at or below chance (0.25, with 4 classes)" in at_chance
    assert output_defect([_metrics(top1=0.3)], 0.0, classes=4) is None
    assert output_defect([_metrics(top1=0.3)], 1.0, classes=4) is not None  # 1 - 2 * 0.7 < 0.25
    assert output_defect([_metrics(top1=0.3)], 1.0, classes=None) is not None  # min_top1 0
    collapsed = output_defect([_metrics(collapsed=True, collapsed_to=0.0)], 0.0, classes=None)
    assert collapsed is not None and "the same for every sample" in collapsed
    # The worst runtime decides.
    assert output_defect([_metrics(), _metrics(cosine=0.1)], 1.0, classes=None) is not None


TEXT_MODEL = """\
    version: 1
    models:
      - name: txt
        source: txt.keras
        max_divergence: {min_cosine: 0.999, min_top1: 0.9}
        classification: [probs]
        variants:
          - {name: float}
          - {name: dynamic, quantization: dynamic}
    """


def _broken_variant_report(loaded: LoadedPolicy) -> Report:
    """txt/float a little off; txt/dynamic predicts other classes than its source."""
    classes = np.arange(8) % 10
    reference = {"probs": np.eye(10)[classes]}
    wrong = np.eye(10)[(classes + 1) % 10]
    wrong[0] = reference["probs"][0]  # one sample of 8 agrees: top1 0.125
    slightly = reference["probs"] + 0.05 * RNG.random((8, 10))
    runs = {
        ("txt", "float"): [
            _judged(loaded, "txt", "float", reference, {"probs": slightly}, "x", top1=True)
        ],
        ("txt", "dynamic"): [
            _judged(loaded, "txt", "dynamic", reference, {"probs": wrong}, "x", top1=True)
        ],
    }
    report = _report(loaded, runs)
    config = resolve_model(loaded, 0)
    for variant in report.models[0].variants:
        for run in variant.runs:
            report.add(check_divergence(config, variant, run))
    report.finalize("error")
    return report


def test_a_broken_variant_is_a_defect_never_a_loosened_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = _load(tmp_path, TEXT_MODEL)
    report = _broken_variant_report(loaded)
    [dynamic] = [v for v in report.models[0].variants if v.name == "dynamic"]
    assert {v.threshold_key for v in dynamic.runs[0].violations} == {"min_cosine", "min_top1"}

    suggestion = suggest_thresholds(report, loaded)
    assert suggestion is not None
    assert {t.variant for t in suggestion.thresholds} == {"float"}
    assert "dynamic" not in suggestion.snippet

    report.suggestion = suggestion_for(report, loaded)
    markdown = render_markdown(report, max_chars=65536)
    assert "min_top1: 0.0" not in markdown and "-1.0" not in markdown

    report_path = _write_report(tmp_path, report)
    assert main(["suggest", "--workspace", str(tmp_path), "--report", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "min_top1: 0.0" not in out and "min_cosine: -1.0" not in out
    assert (
        "# not a threshold (defect): txt/dynamic: fix the variant, no threshold should pass "
        "it: output 'probs' cosine 0: "
    ) in out
    body = yaml.safe_load(out)
    assert [v["name"] for v in body["models"][0]["variants"]] == ["float"]


def test_only_the_broken_output_is_loosened_in_the_variant_that_broke_it(tmp_path: Path) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    runs = {
        ("det", "float"): [_run(loaded, "det", "float", {}, "ai-edge-litert")],
        ("det", "int8"): [
            _run(loaded, "det", "int8", {"probs": 0.01}, "ai-edge-litert"),
            _run(loaded, "det", "int8", {"probs": 0.03}, "tflite-runtime==2.14.0"),
        ],
    }
    report = _report(loaded, runs)
    suggestion = suggest_thresholds(report, loaded, margin=1.0)
    assert suggestion is not None
    assert [(t.variant, t.output, t.key) for t in suggestion.thresholds] == [
        ("int8", "probs", "min_cosine")
    ]
    item = suggestion.thresholds[0]
    worst = min(m.cosine for r in runs[("det", "int8")] for m in r.metrics if m.output == "probs")
    assert item.measured == worst  # the worse runtime decides
    assert item.threshold == 0.99999
    assert item.value == loosened("min_cosine", worst, 1.0) < worst
    assert item.location is not None and item.location.line == 5  # the model's min_cosine
    assert item.placed_at == "models[0].variants[1].max_divergence.per_output.probs"
    assert yaml.safe_load(suggestion.snippet) == {
        "models": [
            {
                "name": "det",
                "variants": [
                    {
                        "name": "int8",
                        "max_divergence": {"per_output": {"probs": {"min_cosine": item.value}}},
                    }
                ],
            }
        ]
    }
    pasted = _pasted(loaded, suggestion.snippet)
    assert pasted["models"][0]["variants"][0] == {"name": "float"}  # type: ignore[index]
    assert pasted["models"][0]["max_divergence"] == {"min_cosine": 0.99999, "max_abs": 0.5}  # type: ignore[index]


def test_every_output_broken_gives_one_variant_wide_value(tmp_path: Path) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    runs = {("det", "int8"): [_run(loaded, "det", "int8", {"probs": 0.02, "box": 0.01}, "x")]}
    suggestion = suggest_thresholds(_report(loaded, runs), loaded, margin=0.5)
    assert suggestion is not None
    assert [(t.output, t.key) for t in suggestion.thresholds] == [(None, "min_cosine")]
    cosines = [m.cosine for m in runs[("det", "int8")][0].metrics]
    assert suggestion.thresholds[0].measured == min(cosines)
    assert "margin 50%" not in suggestion.snippet  # the snippet is YAML only
    block = yaml.safe_load(suggestion.snippet)["models"][0]["variants"][0]
    assert block == {
        "name": "int8",
        "max_divergence": {"min_cosine": suggestion.thresholds[0].value},
    }


def test_a_value_written_per_output_is_loosened_per_output(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        """\
        version: 1
        models:
          - name: det
            source: det.keras
            max_divergence: {per_output: {box: {max_abs: 0.001}}}
        """,
    )
    runs = {("det", "float"): [_run(loaded, "det", "float", {"probs": 0.01, "box": 0.01}, "x")]}
    suggestion = suggest_thresholds(_report(loaded, runs), loaded)
    assert suggestion is not None
    assert [(t.output, t.key) for t in suggestion.thresholds] == [("box", "max_abs")]
    # The model lists no variants: the snippet writes its default one, with the value.
    assert yaml.safe_load(suggestion.snippet) == {
        "models": [
            {
                "name": "det",
                "variants": [
                    {
                        "name": "float",
                        "max_divergence": {
                            "per_output": {"box": {"max_abs": suggestion.thresholds[0].value}}
                        },
                    }
                ],
            }
        ]
    }


def test_a_defaults_variant_takes_the_loosest_value_of_every_model(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        """\
        version: 1
        defaults:
          max_divergence: {max_abs: 0.01}
          variants: [{name: float}, {name: int8, quantization: int8}]
        models:
          - {name: a, source: a.keras}
          - {name: b, source: b.keras}
        """,
    )
    runs = {
        ("a", "int8"): [_run(loaded, "a", "int8", {"probs": 0.02, "box": 0.02}, "x")],
        ("b", "int8"): [_run(loaded, "b", "int8", {"probs": 0.05, "box": 0.05}, "x")],
    }
    suggestion = suggest_thresholds(_report(loaded, runs), loaded)
    assert suggestion is not None
    snippet = yaml.safe_load(suggestion.snippet)
    assert list(snippet) == ["defaults"]
    (entry,) = snippet["defaults"]["variants"]
    assert entry["name"] == "int8"
    worst = max(t.measured for t in suggestion.thresholds)
    assert entry["max_divergence"]["max_abs"] == loosened("max_abs", worst, 1.0)
    assert {t.value for t in suggestion.thresholds} == {entry["max_divergence"]["max_abs"]}
    assert {t.placed_at for t in suggestion.thresholds} == {"defaults.variants[1].max_divergence"}


def test_a_tflite_source_run_is_loosened_in_its_model(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        """\
        version: 1
        models:
          - name: q
            source: q.tflite
            reference: q.keras
            max_divergence: {min_cosine: 0.9999999}
        """,
    )
    runs = {("q", "tflite"): [_run(loaded, "q", "tflite", {"probs": 0.01, "box": 0.01}, "x")]}
    suggestion = suggest_thresholds(_report(loaded, runs), loaded)
    assert suggestion is not None
    assert suggestion.thresholds[0].placed_at == "models[0].max_divergence"
    model = yaml.safe_load(suggestion.snippet)["models"][0]
    assert model == {"name": "q", "max_divergence": {"min_cosine": suggestion.thresholds[0].value}}


def test_an_infinite_error_is_not_suggested_away(tmp_path: Path) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    run = _run(loaded, "det", "int8", {}, "x")
    run.metrics[0] = run.metrics[0].model_copy(
        update={"max_abs": None, "infinite": {"max_abs": "inf"}}
    )
    run.violations = [
        v.model_copy(update={"value": None, "infinite": "inf"}) for v in run.violations
    ] or []
    report = _report(loaded, {("det", "int8"): [run]})
    assert suggest_thresholds(report, loaded) is None


def test_a_snippet_that_would_still_fail_is_refused(tmp_path: Path) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    report = _report(loaded, {("det", "int8"): [_run(loaded, "det", "int8", {"probs": 0.05}, "x")]})
    too_tight = (
        "models: [{name: det, variants: [{name: int8, max_divergence: {min_cosine: 0.9999}}]}]"
    )
    with pytest.raises(SuggestionError, match="still breaks"):
        verify(too_tight, report, loaded)
    with pytest.raises(SuggestionError, match="not a valid policy"):
        verify("models: [{name: det, variants: [{name: int8, nope: 1}]}]", report, loaded)


def test_markdown_and_terminal_offer_the_suggestion(tmp_path: Path) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    report = _report(loaded, {("det", "int8"): [_run(loaded, "det", "int8", {"probs": 0.05}, "x")]})
    config = resolve_model(loaded, 0)
    for variant in report.models[0].variants:
        for run in variant.runs:
            report.add(check_divergence(config, variant, run))
    report.suggestion = suggest_thresholds(report, loaded)
    report.finalize("error")
    assert report.verdict == "fail"
    markdown = render_markdown(report, max_chars=65536)
    assert "<details><summary>Suggested thresholds (margin 100%)</summary>" in markdown
    assert "```yaml\nmodels:\n  - name: det\n" in markdown
    assert "tflite-gate suggest --margin 50%" in markdown
    assert "as a policy snippet: tflite-gate suggest" in render(report, "r.json")


def _write_report(tmp_path: Path, report: Report) -> Path:
    path = tmp_path / "tflite-gate-report.json"
    path.write_text(report.model_dump_json(), encoding="utf-8")
    return path


def test_suggest_command_prints_a_commented_snippet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    report = _report(loaded, {("det", "int8"): [_run(loaded, "det", "int8", {"probs": 0.05}, "x")]})
    report_path = _write_report(tmp_path, report)
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
    loaded = _load(
        tmp_path,
        """\
        version: 1
        models:
          - name: det
            source: det.keras
            max_divergence: {min_cosine: 0.9999999}
        """,
    )
    runs = {("det", "float"): [_run(loaded, "det", "float", {"probs": 1e-3, "box": 1e-3}, "x")]}
    suggestion = suggest_policy(_report(loaded, runs), loaded)
    assert suggestion.thresholds is not None
    [item] = suggestion.thresholds.thresholds
    text = annotated_snippet(suggestion, "tflite-gate.yml")
    written = yaml.safe_load(text)["models"][0]["variants"][0]["max_divergence"]["min_cosine"]
    assert written == item.value
    # A comment that rounds as it prints would show min_cosine 1 and a tighter value.
    measured = measured_text(item.measured, item.threshold, item.value)
    assert f"min_cosine 0.9999999 (tflite-gate.yml:5) measured {measured} -> {written!r}" in text


def test_a_measured_value_is_shown_with_the_digits_that_set_it_apart() -> None:
    assert measured_text(0.9999950862899506, 0.9999999, 0.99998) == "0.999995"
    # Six digits would print 1 for a cosine below the threshold.
    assert measured_text(0.99999995, 0.9999999, 0.9999998) == "0.99999995"
    assert measured_text(0.0123456789, 0.01, 0.025) == "0.0123457"


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


def _inspected(name: str, quantization: str, *ops: OpSpec) -> VariantReport:
    """A variant whose flatbuffer has these ops, inspected as the pipeline does."""
    inspection = inspect_model(build_model(list(ops)))
    return VariantReport(
        name=name,
        quantization=quantization,
        io="float32",
        status="converted",
        inspection=inspection,
    )


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
    variants = [_inspected("float", "none", *float_ops), _inspected("int8", "int8", *int8_ops)]
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
    loaded = _load(tmp_path, OPS_POLICY)
    report = _checked_ops_report(loaded)
    assert sorted(f.rule for f in report.findings) == [
        "op-not-allowed",
        "op-not-allowed",
        "op-not-allowed",
        "runtime-too-old",
    ]
    suggestion = suggest_policy(report, loaded)
    assert suggestion.thresholds is None
    pasted = replace(loaded, policy=Policy.model_validate(_pasted(loaded, suggestion.snippet)))
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

    report_path = _write_report(tmp_path, report)
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


def test_suggest_command_refuses_what_it_cannot_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    report = _report(loaded, {("det", "float"): [_run(loaded, "det", "float", {}, "x")]})
    report_path = _write_report(tmp_path, report)
    args = ["suggest", "--workspace", str(tmp_path), "--report", str(report_path)]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("# Nothing in ")

    report.policy = "other.yml"
    _write_report(tmp_path, report)
    assert main(args) == 2
    assert "pass --policy other.yml: " in capsys.readouterr().err

    report.policy = "tflite-gate.yml"
    report.models[0].name = "gone"
    _write_report(tmp_path, report)
    assert main(args) == 2
    assert "checked 'gone', which the policy does not have" in capsys.readouterr().err

    report_path.write_text(json.dumps({"not": "a report"}), encoding="utf-8")
    assert main(args) == 2
    assert "pass tflite-gate JSON reports only" in capsys.readouterr().err

    assert main([*args, "--margin=-5%"]) == 2
    assert "the margin must be between 0 and 100" in capsys.readouterr().err


def _diagnosed(loaded: LoadedPolicy, model: str, variant: str, nodes: list[str]) -> Report:
    report = new_report()
    for spec in loaded.policy.models:
        variants = []
        if spec.name == model:
            diagnosis = LayerDiagnosis(runtime="x", before=[], keep_float=nodes)
            variants.append(
                VariantReport(
                    name=variant,
                    quantization="int8",
                    io="float32",
                    status="converted",
                    diagnosis=diagnosis,
                )
            )
        report.models.append(ModelReport(name=spec.name, source=spec.source, variants=variants))
    return report


def test_a_keep_float_fix_goes_in_the_variant_entry(tmp_path: Path) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    report = _diagnosed(loaded, "det", "int8", ["a/b;c", "d"])
    add_keep_float_snippets(report, loaded)
    snippet = report.models[0].variants[0].diagnosis.snippet  # type: ignore[union-attr]
    assert snippet is not None
    pasted = _pasted(loaded, snippet)
    assert pasted["models"][0]["variants"] == [  # type: ignore[index]
        {"name": "float"},
        {"name": "int8", "quantization": "int8", "keep_float": {"nodes": ["a/b;c", "d"]}},
    ]


def test_a_keep_float_fix_for_a_defaults_variant_stays_in_its_model(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        """\
        version: 1
        defaults:
          variants:
            - {name: float}
            - {name: int8, quantization: int8, io: int8, keep_float: {ops: [SOFTMAX]}}
        models:
          - {name: a, source: a.keras}
          - {name: b, source: b.keras}
        """,
    )
    report = _diagnosed(loaded, "b", "int8", ["n"])
    add_keep_float_snippets(report, loaded)
    snippet = report.models[1].variants[0].diagnosis.snippet  # type: ignore[union-attr]
    assert snippet is not None
    merged = _pasted(loaded, snippet)
    pasted = replace(loaded, policy=Policy.model_validate(merged))
    assert resolve_model(pasted, 0).variants == resolve_model(loaded, 0).variants  # a: as it was
    b = resolve_model(pasted, 1).variants
    assert [(v.name, v.quantization, v.io) for v in b] == [
        ("float", "none", "float32"),
        ("int8", "int8", "int8"),
    ]
    assert b[1].keep_float is not None and b[1].keep_float.nodes == ["n"]
    assert b[1].keep_float.ops == ["SOFTMAX"]  # part of the fix that was verified


def test_the_terminal_prints_a_verified_keep_float_fix(tmp_path: Path) -> None:
    loaded = _load(tmp_path, TWO_VARIANTS)
    report = _diagnosed(loaded, "det", "int8", [])
    diagnosis = report.models[0].variants[0].diagnosis
    assert diagnosis is not None
    diagnosis.layers = [
        LayerStat(tensor="probs", op="SOFTMAX", rel_rmse=0.01, added=0.01, share=0.9)
    ]
    diagnosis.keep_float_ops = ["SOFTMAX"]
    add_keep_float_snippets(report, loaded)
    assert diagnosis.snippet is not None
    assert yaml.safe_load(diagnosis.snippet)["models"][0]["variants"] == [
        {"name": "int8", "keep_float": {"ops": ["SOFTMAX"]}}
    ]
    shown = render(report, "r.json")
    assert (
        "  int8: most error added at 'probs' (SOFTMAX, 90%); keep_float of every SOFTMAX "
        "passes on x; merge into the policy:\n"
    ) in shown
    assert textwrap.indent(diagnosis.snippet, "    ") in shown

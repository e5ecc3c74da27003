"""Suggested divergence thresholds: loosened by the margin, placed where they take effect
(the variant's entry, per output when only some broke), verified against the report
before they are offered, and never offered for a defective variant.

Reports here are made by the real comparison (`compare_run`) of arrays against the
thresholds a real policy resolves to, as the pipeline does after an interpreter run.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.support.check_facts import loaded_policy
from tests.support.suggest_reports import (
    RNG,
    TWO_VARIANTS,
    break_max_abs_infinitely,
    judged_run,
    noisy_run,
    pasted_mapping,
    report_of,
    write_report,
)
from tflite_gate.cli import main
from tflite_gate.judge.checks import check_divergence
from tflite_gate.judge.suggest import (
    SuggestionError,
    add_keep_float_snippets,
    loosened,
    still_broken,
    suggest_thresholds,
    suggestion_for,
    verify,
)
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.policy.schema import Policy
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import (
    LayerDiagnosis,
    LayerStat,
    ModelReport,
    Report,
    VariantReport,
)
from tflite_gate.report.model.stamp import new_report
from tflite_gate.report.terminal import render

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
            judged_run(loaded, "txt", "float", reference, {"probs": slightly}, "x", top1=True)
        ],
        ("txt", "dynamic"): [
            judged_run(loaded, "txt", "dynamic", reference, {"probs": wrong}, "x", top1=True)
        ],
    }
    report = report_of(loaded, runs)
    config = resolve_model(loaded, 0)
    for variant in report.models[0].variants:
        for run in variant.runs:
            report.add(check_divergence(config, variant, run))
    report.finalize("error")
    return report


def test_a_broken_variant_is_a_defect_never_a_loosened_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = loaded_policy(tmp_path, TEXT_MODEL)
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

    report_path = write_report(tmp_path, report)
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
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    runs = {
        ("det", "float"): [noisy_run(loaded, "det", "float", {}, "ai-edge-litert")],
        ("det", "int8"): [
            noisy_run(loaded, "det", "int8", {"probs": 0.01}, "ai-edge-litert"),
            noisy_run(loaded, "det", "int8", {"probs": 0.03}, "tflite-runtime==2.14.0"),
        ],
    }
    report = report_of(loaded, runs)
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
    pasted = pasted_mapping(loaded, suggestion.snippet)
    assert pasted["models"][0]["variants"][0] == {"name": "float"}  # type: ignore[index]
    assert pasted["models"][0]["max_divergence"] == {"min_cosine": 0.99999, "max_abs": 0.5}  # type: ignore[index]


def test_every_output_broken_gives_one_variant_wide_value(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    runs = {("det", "int8"): [noisy_run(loaded, "det", "int8", {"probs": 0.02, "box": 0.01}, "x")]}
    suggestion = suggest_thresholds(report_of(loaded, runs), loaded, margin=0.5)
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
    loaded = loaded_policy(
        tmp_path,
        """\
        version: 1
        models:
          - name: det
            source: det.keras
            max_divergence: {per_output: {box: {max_abs: 0.001}}}
        """,
    )
    runs = {
        ("det", "float"): [noisy_run(loaded, "det", "float", {"probs": 0.01, "box": 0.01}, "x")]
    }
    suggestion = suggest_thresholds(report_of(loaded, runs), loaded)
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
    loaded = loaded_policy(
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
        ("a", "int8"): [noisy_run(loaded, "a", "int8", {"probs": 0.02, "box": 0.02}, "x")],
        ("b", "int8"): [noisy_run(loaded, "b", "int8", {"probs": 0.05, "box": 0.05}, "x")],
    }
    suggestion = suggest_thresholds(report_of(loaded, runs), loaded)
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
    loaded = loaded_policy(
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
    runs = {("q", "tflite"): [noisy_run(loaded, "q", "tflite", {"probs": 0.01, "box": 0.01}, "x")]}
    suggestion = suggest_thresholds(report_of(loaded, runs), loaded)
    assert suggestion is not None
    assert suggestion.thresholds[0].placed_at == "models[0].max_divergence"
    model = yaml.safe_load(suggestion.snippet)["models"][0]
    assert model == {"name": "q", "max_divergence": {"min_cosine": suggestion.thresholds[0].value}}


def test_an_infinite_error_is_not_suggested_away(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    run = noisy_run(loaded, "det", "int8", {}, "x")
    break_max_abs_infinitely(run, "box")
    report = report_of(loaded, {("det", "int8"): [run]})
    assert suggest_thresholds(report, loaded) is None


def test_a_snippet_that_would_still_fail_is_refused(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    report = report_of(
        loaded, {("det", "int8"): [noisy_run(loaded, "det", "int8", {"probs": 0.05}, "x")]}
    )
    too_tight = (
        "models: [{name: det, variants: [{name: int8, max_divergence: {min_cosine: 0.9999}}]}]"
    )
    with pytest.raises(SuggestionError, match="still breaks"):
        verify(too_tight, report, loaded)
    with pytest.raises(SuggestionError, match="not a valid policy"):
        verify("models: [{name: det, variants: [{name: int8, nope: 1}]}]", report, loaded)


def test_markdown_and_terminal_offer_the_suggestion(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    report = report_of(
        loaded, {("det", "int8"): [noisy_run(loaded, "det", "int8", {"probs": 0.05}, "x")]}
    )
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
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    report = _diagnosed(loaded, "det", "int8", ["a/b;c", "d"])
    add_keep_float_snippets(report, loaded)
    snippet = report.models[0].variants[0].diagnosis.snippet  # type: ignore[union-attr]
    assert snippet is not None
    pasted = pasted_mapping(loaded, snippet)
    assert pasted["models"][0]["variants"] == [  # type: ignore[index]
        {"name": "float"},
        {"name": "int8", "quantization": "int8", "keep_float": {"nodes": ["a/b;c", "d"]}},
    ]


def test_a_keep_float_fix_for_a_defaults_variant_stays_in_its_model(tmp_path: Path) -> None:
    loaded = loaded_policy(
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
    merged = pasted_mapping(loaded, snippet)
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
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
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


def test_what_still_breaks_is_said_per_output_and_threshold(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    run = noisy_run(loaded, "det", "int8", {"probs": 0.05}, "x")
    break_max_abs_infinitely(run, "box")
    model = report_of(loaded, {("det", "int8"): [run]}).models[0]
    config = resolve_model(loaded, 0)
    cosine = next(m.cosine for m in run.metrics if m.output == "probs")
    everything = still_broken(model, config, finite_only=False)
    assert everything == [
        "det/int8 output 'box': max_abs 0.5 still breaks on inf",
        f"det/int8 output 'probs': min_cosine 0.99999 still breaks on {cosine}",
    ]
    assert still_broken(model, config, finite_only=True) == everything[1:]
    assert still_broken(model, config, finite_only=False, skipped={"int8"}) == []


def test_a_run_decorated_with_a_suggestion_gets_the_default_margins(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    broken = report_of(
        loaded, {("det", "int8"): [noisy_run(loaded, "det", "int8", {"probs": 0.05}, "x")]}
    )
    offered = suggestion_for(broken, loaded)
    assert offered is not None and offered == suggest_thresholds(broken, loaded)
    assert offered.margin == 1.0
    passing = report_of(loaded, {("det", "int8"): [noisy_run(loaded, "det", "int8", {}, "x")]})
    assert suggestion_for(passing, loaded) is None

"""The collapsed detail sections of the Markdown summary: how to fix each rule, a model's
source, ops and metrics, suggested thresholds, changes since the baseline, and where a
quantized variant loses its accuracy."""

from __future__ import annotations

import cmarkgfm
import lxml.html
from cmarkgfm.cmark import Options

from tests.support.example_reports import example_report, metrics, passing_run
from tflite_gate.findings import Location
from tflite_gate.report.markdown_details import (
    baseline_section,
    diagnosis_details,
    fix_hints,
    model_details,
    suggestion_details,
)
from tflite_gate.report.model import (
    BaselineComparison,
    CacheUse,
    KeepFloatTrial,
    LayerDiagnosis,
    LayerStat,
    ModelReport,
    RuntimeRun,
    SuggestedThreshold,
    ThresholdSuggestion,
    VariantChange,
    VariantReport,
    WrittenBy,
)
from tflite_gate.rules import RULES, make_finding, rule_url


def _rendered_text(markdown: str) -> str:
    """The text GitHub shows for `markdown` (cmark-gfm, raw HTML kept as GitHub keeps it)."""
    html = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    return " ".join(lxml.html.fromstring(f"<div>{html}</div>").text_content().split())


# --------------------------------------------------------------------------- how to fix


def test_no_findings_no_fix_hints() -> None:
    assert fix_hints([]) is None


def test_each_rule_is_hinted_once_in_the_order_it_first_appears() -> None:
    findings = [
        make_finding("divergence", "a"),
        make_finding("flex-op", "b"),
        make_finding("divergence", "c"),
    ]
    text = fix_hints(findings)
    assert text is not None
    lines = text.splitlines()
    assert lines[0] == "<details><summary>How to fix</summary>" and lines[-1] == "</details>"
    hints = [line for line in lines if line.startswith("- ")]
    assert hints == [
        f"- [`divergence`]({rule_url('divergence')}): {RULES['divergence'].hint}",
        f"- [`flex-op`]({rule_url('flex-op')}): {RULES['flex-op'].hint}",
    ]


# --------------------------------------------------------------------------- a model


def test_details_are_collapsed_with_ops_and_metrics() -> None:
    report = example_report()
    text = model_details(report.models[1])
    assert text.startswith("<details><summary>classifier-strict: source, ops and metrics</summary>")
    assert "| <code>FULLY\\_CONNECTED</code> | builtin | 4 | 2 | 1.14.0 |" in text
    assert "0.99922637" in text  # cosine with digits that matter
    assert "min_cosine: 0.9992263" in text  # the tightest passing value, pasteable
    assert text.count("<details>") == text.count("</details>") == 1
    hints = fix_hints(report.findings)
    assert hints is not None and hints.startswith("<details><summary>How to fix</summary>")


def test_a_model_that_never_loaded_shows_its_source_only() -> None:
    model = ModelReport(name="gone", source="models/gone.keras")
    text = model_details(model)
    assert text.splitlines()[0] == "<details><summary>gone: source</summary>"
    assert "Source `models/gone.keras`" in text
    assert "|" not in text  # no table without variants


def test_the_source_line_says_who_wrote_the_model_and_whether_it_was_reused() -> None:
    model = ModelReport(
        name="asr",
        source="models/asr",
        source_kind="saved_model",
        written_by=WrittenBy(tensorflow="2.4.1", keras=None),
        cache=CacheUse(status="reused", converted_at="2025-01-01T00:00:00+00:00", original_s=3.2),
    )
    text = model_details(model)
    assert "Source `models/asr` (saved_model), written by TensorFlow 2.4.1\n" in text
    assert "_Reused from the cache: converted 2025-01-01 00:00:00 UTC in 3.2 s," in text


def test_converter_errors_name_the_op_the_code_the_users_line_and_the_advice() -> None:
    report = example_report()
    gram = report.models[2]
    gram.variants[0].converter.errors[0].advice = ["Enable Select TF ops."]
    text = model_details(gram)
    assert (
        "Converter error `tf.MatrixDeterminant` (ERROR\\_NEEDS\\_FLEX\\_OPS) at "
        "`example_models/gram.py:16`: 'tf.MatrixDeterminant' op is neither a custom op nor a "
        "flex op The converter suggests: Enable Select TF ops."
    ) in text
    assert "Converter log:\n\n```text\nerror: failed while converting: 'main'\n```" in text


def _with_run(run: RuntimeRun) -> ModelReport:
    variant = VariantReport(name="int8", quantization="int8", io="int8", status="converted")
    variant.runs.append(run)
    return ModelReport(name="m", source="m.keras", variants=[variant])


def test_what_a_failed_run_said_is_shown_with_its_reproducer() -> None:
    crashed = RuntimeRun(
        runtime="ai-edge-litert",
        status="crash",
        samples=16,
        message="Fatal Python error: Segmentation fault",
        reproducer=".tflite-gate/reproducers/m/int8",
    )
    text = model_details(_with_run(crashed))
    assert "ai-edge-litert said:\n\n```text\nFatal Python error: Segmentation fault\n```" in text
    assert "Reproducer: `.tflite-gate/reproducers/m/int8`" in text
    assert "| ai-edge-litert | - | 16 | - | - | - | - | - | - | - | - |" in text  # nothing compared


def test_a_passing_runs_message_is_not_repeated() -> None:
    run = passing_run()
    run.message = "a note the table already says"
    assert "said:" not in model_details(_with_run(run))


def test_the_model_details_render_as_one_collapsed_section_with_its_tables() -> None:
    text = model_details(example_report().models[1])
    body = lxml.html.fromstring(
        cmarkgfm.github_flavored_markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE)
    )
    assert body.tag == "details" and "open" not in body.attrib
    assert len(list(body.iter("table"))) == 4  # ops and metrics of each of two variants


# --------------------------------------------------------------------------- baseline


def _comparison(*changes: VariantChange) -> BaselineComparison:
    return BaselineComparison(
        report="base/tflite-gate-report.json",
        started_at="2025-01-01T00:00:00+00:00",
        tool_version="0.1.0",
        variants=list(changes),
    )


def test_no_baseline_no_section() -> None:
    assert baseline_section(example_report()) is None


def test_the_baseline_section_lists_changed_variants_and_counts_the_rest() -> None:
    report = example_report()
    report.baseline = _comparison(
        VariantChange(model="m", variant="int8", size_before=1000, size_after=1500),
        VariantChange(model="m", variant="new", presence="new"),
        VariantChange(model="m", variant="float", size_before=1000, size_after=1000),
    )
    text = baseline_section(report)
    assert text is not None
    assert text.startswith("### Since the baseline `base/tflite-gate-report.json`\n")
    assert "Baseline run 2025-01-01T00:00:00+00:00, tflite-gate 0.1.0." in text
    assert "| m/int8 | size 1000 B → 1.5 KiB (+50.0%) |" in text
    assert "| m/new | new (not in the baseline) |" in text
    assert text.endswith("\n\n1 variant unchanged.")


def test_a_baseline_with_nothing_changed_has_no_table() -> None:
    report = example_report()
    report.baseline = _comparison(VariantChange(model="m", variant="v"))
    text = baseline_section(report)
    assert text is not None and "|" not in text and "1 variant unchanged." in text


# --------------------------------------------------------------------------- suggestion


def test_no_suggestion_no_section() -> None:
    assert suggestion_details(None) is None


def test_suggested_thresholds_are_a_table_and_a_snippet() -> None:
    suggestion = ThresholdSuggestion(
        margin=0.5,
        thresholds=[
            SuggestedThreshold(
                model="det",
                variant="int8",
                output=None,
                key="max_abs",
                threshold=0.01,
                measured=0.0116,
                value=0.0174,
                location=Location(path="tflite-gate.yml", line=7, column=20),
                placed_at="models[0].variants[1].max_divergence",
            )
        ],
        snippet="models:\n  - name: det\n",
    )
    text = suggestion_details(suggestion)
    assert text is not None
    assert text.startswith("<details><summary>Suggested thresholds (margin 50%)</summary>")
    assert (
        "| det/int8 | all | <code>max\\_abs</code> | 0.01 | 0.0116 | **0.0174** | "
        "<code>tflite-gate.yml:7</code> |"
    ) in text
    assert "```yaml\nmodels:\n  - name: det\n```" in text
    assert text.endswith("</details>")


# --------------------------------------------------------------------------- diagnosis

SOFTMAX = LayerStat(tensor="probs", op="SOFTMAX", rel_rmse=0.03, added=0.01, share=1.0)


def _diagnosed(quantization: str, diagnosis: LayerDiagnosis) -> tuple[ModelReport, VariantReport]:
    variant = VariantReport(
        name="q", quantization=quantization, io="float32", status="converted", diagnosis=diagnosis
    )
    return ModelReport(name="m", source="m.keras", variants=[variant]), variant


def test_no_diagnosis_no_section() -> None:
    report = example_report()
    model = report.models[1]
    assert diagnosis_details(model, model.variants[1]) is None


def test_the_layer_chart_names_each_bar_by_the_op_it_is() -> None:
    fused = "functional_1/re_lu_1_1/Relu;functional_1/conv2d_1/convolution"  # a Conv2D, then ReLU
    layers = [
        LayerStat(tensor=fused, op="CONV_2D", rel_rmse=0.02, added=0.02, share=0.7),
        LayerStat(
            tensor="StatefulPartitionedCall_1:0", op="SOFTMAX", rel_rmse=0.03, added=0.01, share=0.3
        ),
    ]
    report = example_report()
    model = report.models[1]
    variant = model.variants[1]
    variant.diagnosis = LayerDiagnosis(runtime="ai-edge-litert", before=[metrics()], layers=layers)
    text = diagnosis_details(model, variant)
    assert text is not None
    [axis] = [line for line in text.splitlines() if line.startswith("    x-axis [")]
    assert axis == '    x-axis ["1. CONV_2D", "2. SOFTMAX"]'
    assert "    bar [70.0, 30.0]" in text


def test_a_failed_keep_float_of_op_types_is_counted_as_such() -> None:
    trial = KeepFloatTrial(nodes=[], ops=["SOFTMAX"], runtime="ai-edge-litert", status="diverged")
    report = example_report()
    model = report.models[1]
    variant = model.variants[1]
    variant.diagnosis = LayerDiagnosis(
        runtime="ai-edge-litert", before=[metrics()], layers=[SOFTMAX], trials=[trial]
    )
    text = diagnosis_details(model, variant)
    assert text is not None
    assert "No keep_float set tried passes (1 tried, up to every SOFTMAX kept in float)" in text


def test_a_verified_fix_shows_the_metrics_before_and_after_and_its_snippet() -> None:
    after = metrics(cosine=0.99999)
    fixed = KeepFloatTrial(
        nodes=["probs"],
        runtime="ai-edge-litert",
        status="passed",
        metrics=[after],
    )
    diagnosis = LayerDiagnosis(
        runtime="ai-edge-litert",
        before=[metrics()],
        layers=[SOFTMAX],
        trials=[fixed],
        keep_float=["probs"],
        keep_float_ops=[],
        snippet="models:\n  - name: m\n",
    )
    text = diagnosis_details(*_diagnosed("int8", diagnosis))
    assert text is not None
    assert text.startswith(
        "<details><summary>m/q: where the quantization error comes from</summary>"
    )
    assert (
        "**Verified fix:** with 1 op output kept in float the variant was converted again" in text
    )
    assert (
        "| <code>probs</code> | 0.011649 → 0.011649 | 0.0394904 → 0.0394904 | 0.999226 → 0.99999 |"
    ) in text
    assert "```yaml\nmodels:\n  - name: m\n```" in text
    assert "No keep_float set" not in text


def test_other_quantizations_point_at_where_the_error_starts() -> None:
    diagnosis = LayerDiagnosis(runtime="ai-edge-litert", before=[metrics()], layers=[SOFTMAX])
    text = diagnosis_details(*_diagnosed("int16x8", diagnosis))
    assert text is not None
    assert "`keep_float` applies to int8 variants; for int16x8 the layers above" in text


def test_layers_that_could_not_be_measured_say_why() -> None:
    diagnosis = LayerDiagnosis(
        runtime="ai-edge-litert", before=[], error="the conversion worker ran out of memory"
    )
    text = diagnosis_details(*_diagnosed("int8", diagnosis))
    assert text is not None
    assert "The layers could not be measured: the conversion worker ran out of memory" in text
    assert "x-axis" not in text  # no chart without layers


def test_model_text_in_the_chart_cannot_break_out_of_it() -> None:
    hostile = LayerStat(
        tensor='x"]\n```', op='CONV_2D"] \n```<b>', rel_rmse=0.1, added=0.1, share=1.0
    )
    diagnosis = LayerDiagnosis(runtime="ai-edge-litert", before=[], layers=[hostile])
    model, variant = _diagnosed("int8", diagnosis)
    model.name = 'evil"]\n```'
    text = diagnosis_details(model, variant)
    assert text is not None
    chart = text[text.index("```mermaid") :]
    chart = chart[: chart.index("\n```", 1) + 4]
    assert chart.count("```") == 2
    assert '    x-axis ["1. CONV_2Db"]' in chart  # letters, digits, _ . - only
    assert '    title "Error added per layer evil q"' in chart
    assert "evil" in _rendered_text(text)

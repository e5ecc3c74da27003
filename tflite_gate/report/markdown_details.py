"""The collapsed detail sections of the Markdown summary, for whoever digs deeper.

How to fix each rule, where an int8 variant loses accuracy (and the verified
`keep_float` fix), suggested thresholds, the changes since the baseline, and per
model its source, ops, converter messages and metrics. `report/markdown.py` puts
them last, so they are the first to go when the text must be cut.
"""

from __future__ import annotations

import re

from tflite_gate.findings import Finding
from tflite_gate.report.markdown_text import (
    clip_log,
    code_span,
    escape_cell,
    escape_text,
    fenced_block,
    location_cell,
    number,
    summary_html,
    table,
)
from tflite_gate.report.model import (
    LayerStat,
    MetricName,
    ModelReport,
    OutputMetrics,
    Report,
    RuntimeRun,
    ThresholdSuggestion,
    VariantReport,
)
from tflite_gate.report.text import (
    cache_note,
    change_parts,
    format_metric,
    format_number,
    format_size,
    format_threshold,
    keep_float_text,
    plural,
)
from tflite_gate.rules import RULES, rule_url
from tflite_gate.support.run_options import margin_text


def _variant_line(variant: VariantReport) -> str:
    """The variant's name, status, artifact, size and minimum runtime on one line."""
    line = (
        f"**{escape_text(variant.name)}** ({escape_text(variant.quantization)}): "
        f"{variant.status_label()}"
    )
    if variant.artifact:
        line += f", {code_span(variant.artifact)}"
    inspection = variant.inspection
    if inspection is not None:
        line += (
            f", {format_size(inspection.size_bytes)}, min runtime "
            f"{escape_text(inspection.required_runtime or '?')} (metadata "
            f"{escape_text(inspection.metadata_min_runtime or '-')})"
        )
    return line


def _ops_table(variant: VariantReport) -> list[str]:
    if variant.inspection is None or not variant.inspection.ops:
        return []
    rows = [
        [
            code_span(op.name, in_table=True),
            op.kind,
            str(op.version),
            str(op.count),
            escape_cell(op.min_runtime or "?"),
        ]
        for op in variant.inspection.ops
    ]
    return ["", table(["op", "kind", "version", "count", "min runtime"], rows)]


def _converter_lines(variant: VariantReport) -> list[str]:
    """The converter's structured errors (op, code, user's line, advice), then its log."""
    lines: list[str] = []
    for error in variant.converter.errors:
        where = f" at {code_span(str(error.location))}" if error.location else ""
        op = f" {code_span(error.op)}" if error.op else ""
        code = f" ({escape_text(error.code)})" if error.code else ""
        advice = (
            f" The converter suggests: {escape_text(' '.join(error.advice))}"
            if error.advice
            else ""
        )
        lines += ["", f"Converter error{op}{code}{where}: {escape_text(error.message)}{advice}"]
    if variant.converter.log_lines:
        lines += ["", "Converter log:", "", fenced_block(clip_log(variant.converter.log_lines))]
    return lines


_METRICS_HEADER = [
    "runtime",
    "output",
    "samples",
    "max_abs",
    "mean_abs",
    "rmse",
    "rel_rmse",
    "cosine",
    "snr_db",
    "top1",
    "non-finite",
]


def _metrics_rows(run: RuntimeRun) -> list[list[str]]:
    """One row per output of the run; a run that compared nothing gets a row of dashes."""
    runtime = escape_cell(run.label)
    if not run.metrics:
        return [[runtime, "-", str(run.samples), *["-"] * 7, "-"]]
    return [
        [
            runtime,
            code_span(m.output, in_table=True),
            str(m.samples),
            format_metric(m, "max_abs"),
            format_metric(m, "mean_abs"),
            format_metric(m, "rmse"),
            format_metric(m, "rel_rmse"),
            format_metric(m, "cosine", 8),
            format_metric(m, "snr_db", 4),
            format_metric(m, "top1", 4) if m.top1 is not None else "-",
            str(m.non_finite),
        ]
        for m in run.metrics
    ]


def _run_notes(run: RuntimeRun) -> list[str]:
    """What else a run has to say: tightest thresholds, custom ops, its message, a reproducer."""
    lines: list[str] = []
    for output, thresholds in run.tightest.items():
        # repr: the shortest text that round-trips, so a pasted value still passes
        shown = ", ".join(f"{key}: {value!r}" for key, value in thresholds.items())
        lines += [
            "",
            f"Tightest passing thresholds on {escape_text(run.runtime)} for "
            f"{code_span(output)}: {code_span(shown)}",
        ]
    if run.custom_ops_executed:
        ops = ", ".join(code_span(op) for op in run.custom_ops_executed)
        lines += [
            "",
            f"Custom ops executed on {escape_text(run.label)}: {ops}, "
            f"{escape_text(run.custom_ops_resolver)}",
        ]
    if run.message and run.status not in {"passed", "diverged"}:
        lines += ["", f"{escape_text(run.runtime)} said:", "", fenced_block([run.message])]
    if run.reproducer:
        lines += ["", f"Reproducer: {code_span(run.reproducer)}"]
    return lines


def _variant_details(variant: VariantReport) -> list[str]:
    """A variant's line, ops, converter messages, and per runtime its metrics and notes."""
    lines = [_variant_line(variant), *_ops_table(variant), *_converter_lines(variant)]
    if variant.runs:
        rows = [row for run in variant.runs for row in _metrics_rows(run)]
        lines += ["", table(_METRICS_HEADER, rows)]
        for run in variant.runs:
            lines += _run_notes(run)
    return lines


def _source_line(model: ModelReport) -> str:
    kind = f" ({model.source_kind})" if model.source_kind else ""
    written = ""
    if model.written_by is not None and (model.written_by.tensorflow or model.written_by.keras):
        parts = [
            f"{name} {version}"
            for name, version in (
                ("TensorFlow", model.written_by.tensorflow),
                ("Keras", model.written_by.keras),
            )
            if version
        ]
        written = f", written by {escape_text(', '.join(parts))}"
    return f"Source {code_span(model.source)}{kind}{written}"


def model_details(model: ModelReport) -> str:
    """A model's source, cache use, ops and metrics: collapsed, for whoever digs deeper."""
    what = "source, ops and metrics" if model.variants else "source"
    lines = [f"<details><summary>{summary_html(model.name)}: {what}</summary>", ""]
    lines += [_source_line(model), ""]
    note = cache_note(model.cache)
    if note is not None:
        lines += [f"_{escape_text(note[0].upper() + note[1:])}._", ""]
    for variant in model.variants:
        lines += [*_variant_details(variant), ""]
    lines.append("</details>")
    return "\n".join(lines)


def fix_hints(findings: list[Finding]) -> str | None:
    """Each rule's fix hint, linked to its explanation: the section a newcomer opens first."""
    rules = list(dict.fromkeys(f.rule for f in findings if f.rule in RULES))
    if not rules:
        return None
    lines = ["<details><summary>How to fix</summary>", ""]
    # Hints are our own Markdown (backticks meant as code), not untrusted text.
    lines += [f"- [{code_span(rule)}]({rule_url(rule)}): {RULES[rule].hint}" for rule in rules]
    lines += ["", "</details>"]
    return "\n".join(lines)


def baseline_section(report: Report) -> str | None:
    """The deltas since the baseline report, shown whether or not they fail anything."""
    baseline = report.baseline
    if baseline is None:
        return None
    rows = []
    unchanged = 0
    for change in baseline.variants:
        parts = change_parts(change)
        if not parts:
            unchanged += 1
            continue
        rows.append(
            [escape_cell(f"{change.model}/{change.variant}"), "<br>".join(map(escape_text, parts))]
        )
    lines = [
        f"### Since the baseline {code_span(baseline.report)}",
        "",
        f"Baseline run {escape_text(baseline.started_at)}, tflite-gate "
        f"{escape_text(baseline.tool_version)}.",
    ]
    if rows:
        lines += ["", table(["variant", "changes"], rows)]
    if unchanged:
        lines += ["", f"{plural(unchanged, 'variant')} unchanged."]
    return "\n".join(lines)


def suggestion_details(suggestion: ThresholdSuggestion | None) -> str | None:
    """The collapsed section of a run that broke thresholds: values that pass, and where."""
    if suggestion is None:
        return None
    rows = [
        [
            escape_cell(f"{item.model}/{item.variant}"),
            code_span(item.output, in_table=True) if item.output else "all",
            code_span(item.key, in_table=True),
            format_threshold(item.threshold),
            format_number(item.measured, threshold=item.threshold),
            f"**{format_threshold(item.value)}**",
            location_cell(item.location),
        ]
        for item in suggestion.thresholds
    ]
    header = ["variant", "output", "threshold", "broken", "measured", "suggested", "written at"]
    lines = [
        f"<details><summary>Suggested thresholds (margin {margin_text(suggestion.margin)})"
        "</summary>",
        "",
        "These pass on this run's data with the measured error allowed to grow by the "
        "margin; merge the snippet into the policy (list entries by name), or print it "
        "with another margin: `tflite-gate suggest --margin 50%`.",
        "",
        table(header, rows),
        "",
        fenced_block(suggestion.snippet.splitlines(), "yaml"),
        "",
        "</details>",
    ]
    return "\n".join(lines)


_CHART_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


def _chart_label(position: int, layer: LayerStat) -> str:
    """The row number and the op type: a fused tensor name starts with whatever layer
    the converter fused last (`re_lu_1/Relu;conv2d_1/...` is a CONV_2D), and Mermaid has
    no escaping we could trust with model text."""
    op = _CHART_LABEL.sub("", layer.op)[:24]
    return f"{position}. {op}" if op else str(position)


def _layer_chart(title: str, layers: list[LayerStat]) -> str:
    labels = ", ".join(f'"{_chart_label(i, layer)}"' for i, layer in enumerate(layers, 1))
    bars = ", ".join(f"{layer.share * 100:.1f}" for layer in layers)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "{_CHART_LABEL.sub(" ", title).strip()}"',
            f"    x-axis [{labels}]",
            '    y-axis "share of the output error (%)" 0 --> 100',
            f"    bar [{bars}]",
            "```",
        ]
    )


_PAIRED: tuple[MetricName, ...] = ("max_abs", "rel_rmse", "cosine")


def _metrics_pair(before: list[OutputMetrics], after: list[OutputMetrics]) -> list[list[str]]:
    later = {m.output: m for m in after}
    rows = []
    for old in before:
        new = later.get(old.output)
        cells = [code_span(old.output, in_table=True)]
        for metric in _PAIRED:
            now = number(new.value(metric), 6) if new else "n/a"
            cells.append(f"{number(old.value(metric), 6)} → {now}")
        rows.append(cells)
    return rows


def diagnosis_details(model: ModelReport, variant: VariantReport) -> str | None:
    """Where an int8 variant loses accuracy, and the keep_float fix that was verified."""
    diagnosis = variant.diagnosis
    if diagnosis is None:
        return None
    name = f"{model.name}/{variant.name}"
    lines = [
        f"<details><summary>{summary_html(name)}: where the quantization error comes from"
        "</summary>",
        "",
    ]
    if diagnosis.error:
        lines += [f"The layers could not be measured: {escape_text(diagnosis.error)}", ""]
    if diagnosis.layers:
        rows = [
            [
                str(position),
                code_span(layer.tensor, in_table=True),
                escape_cell(layer.op),
                number(layer.rel_rmse),
                number(layer.added),
                f"{layer.share:.0%}",
                number(layer.rmse_over_scale),
            ]
            for position, layer in enumerate(diagnosis.layers, 1)
        ]
        header = ["#", "op output (tensor)", "op", "rel_rmse", "added", "share", "rmse/scale"]
        lines += [
            "Every op output of the quantized model against its float twin (for int8 the "
            "calibrated model it was quantized from), on the evaluation data; *added* is the "
            "relative error the op made itself, *share* its part of the error at the outputs.",
            "",
            table(header, rows),
            "",
            _layer_chart(f"Error added per layer {name}", diagnosis.layers),
            "",
        ]
    trial = diagnosis.fix()
    if trial is not None:
        kept = escape_text(keep_float_text(trial.nodes, trial.ops))
        lines += [
            f"**Verified fix:** with {kept} kept in float the "
            f"variant was converted again, run on {escape_text(diagnosis.runtime)} and passes "
            "every threshold (before → after):",
            "",
            table(
                ["output", "max_abs", "rel_rmse", "cosine"],
                _metrics_pair(diagnosis.before, trial.metrics),
            ),
            "",
            *(
                [fenced_block(diagnosis.snippet.splitlines(), "yaml"), ""]
                if diagnosis.snippet
                else []
            ),
        ]
    elif variant.quantization != "int8":
        lines += [
            f"`keep_float` applies to int8 variants; for {escape_text(variant.quantization)} "
            "the layers above are where the error starts (calibration data covering the "
            "real inputs, or another quantization, are the usual fixes).",
            "",
        ]
    elif diagnosis.trials:
        largest = max(diagnosis.trials, key=lambda t: (len(t.nodes), len(t.ops)))
        kept = escape_text(keep_float_text(largest.nodes, largest.ops))
        lines += [
            f"No keep_float set tried passes ({len(diagnosis.trials)} tried, up to {kept} "
            "kept in float): the error is spread out; better calibration data, int16x8, or a "
            "looser threshold may be needed.",
            "",
        ]
    lines.append("</details>")
    return "\n".join(lines)


# --------------------------------------------------------------------------- assembly

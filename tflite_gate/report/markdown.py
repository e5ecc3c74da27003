"""GitHub-flavoured Markdown for the job summary and the sticky pull-request comment.

Both places have hard size limits (the step summary 1 MiB, a comment body 65,536
characters) and GitHub rejects, rather than truncates, text over the limit. So the
renderer builds the text in parts of falling importance, which is also the order a
reviewer reads them in: the verdict, the findings to act on, one table of every
model's variants, the changes since the baseline, then collapsed details. When the
whole does not fit it drops from the end (details, baseline changes, table rows, the
least severe findings) and says what it cut. The JSON report always has everything.

Everything that comes from the model, the converter or a runtime (op and tensor
names, messages, paths) is untrusted text: it is escaped so it can neither break a
table, inject HTML, open a code span, nor @-mention anyone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from tflite_gate.findings import Finding, Location, Severity, sort_findings
from tflite_gate.report.model import (
    EXECUTED_RUN_STATUSES,
    FAILING_RUN_STATUSES,
    LayerStat,
    MetricName,
    ModelReport,
    OutputMetrics,
    Report,
    RuntimeRun,
    ThresholdSuggestion,
    ThresholdViolation,
    VariantReport,
)
from tflite_gate.report.text import (
    AGREEMENT_METRICS,
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

# Characters with a meaning in Markdown inline syntax (CommonMark lets any ASCII
# punctuation be backslash-escaped; these are the ones that can change rendering
# in running text or a table cell). `<`, `>`, `&` become entities instead.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_ZERO_WIDTH_SPACE = "\u200b"

_LOG_LINES = 40
_LOG_LINE_CHARS = 600


# --------------------------------------------------------------------------- escaping


def escape_text(text: str) -> str:
    """Untrusted text as literal Markdown inline text on one line.

    HTML-significant characters become entities (so `<script>` is shown, not run),
    Markdown punctuation is backslash-escaped, line breaks become spaces (a newline
    could start a heading or a list), and `@name` gets a zero-width space after the
    `@` so a message cannot notify a user or a team from a PR comment.
    """
    escaped = html.escape(text, quote=False)
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", escaped)
    escaped = _MENTION.sub("@" + _ZERO_WIDTH_SPACE, escaped)
    return " ".join(escaped.splitlines())


def escape_cell(text: str) -> str:
    """Untrusted text inside a table cell: as `escape_text`, line breaks kept as `<br>`."""
    lines = text.splitlines() or [""]
    return "<br>".join(escape_text(line) for line in lines)


def code_span(text: str, *, in_table: bool = False) -> str:
    """Untrusted text in monospace that nothing inside can close or break.

    Outside tables: a backtick code span whose fence is longer than any backtick run
    in the text. Inside a GFM table a `|` ends the cell even within a code span, and
    backslashes cannot be escaped there (`a\\|b` would still split the cell), so
    table cells get `<code>` around fully escaped text instead.
    """
    flat = " ".join(text.splitlines())
    if in_table:
        return f"<code>{escape_text(flat)}</code>"
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat.strip() else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _fenced_block(lines: list[str], info: str = "text") -> str:
    """A fenced code block longer than any backtick run in the text, so nothing escapes it."""
    body = "\n".join(line.replace("\r", "") for line in lines)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _clip_log(lines: list[str]) -> list[str]:
    """Converter logs carry MLIR call-site dumps of many KiB: keep the summary readable."""
    kept = [
        line if len(line) <= _LOG_LINE_CHARS else line[: _LOG_LINE_CHARS - 1] + "…"
        for line in lines[:_LOG_LINES]
    ]
    if len(lines) > _LOG_LINES:
        kept.append(f"… {len(lines) - _LOG_LINES} more lines in the JSON report")
    return kept


def _summary_html(text: str) -> str:
    return html.escape(" ".join(text.splitlines()), quote=False)


# --------------------------------------------------------------------------- numbers


def _num(value: float | None, digits: int = 3) -> str:
    """Compact general format: `0.0116`, `7.45e-9`, `153`, `inf`; `n/a` when not measured."""
    return format_number(value, digits)


def _int(n: int) -> str:
    return f"{n:,}"


# --------------------------------------------------------------------------- tables


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _violation(violation: ThresholdViolation) -> str:
    """`probs cosine 0.99923 < 0.99999`, with enough digits that the two visibly differ."""
    limit = format_threshold(violation.threshold)
    shown = violation.infinite or format_number(
        violation.value,
        threshold=violation.threshold,
        agreement=violation.metric in AGREEMENT_METRICS,
    )
    comparison = "&lt;" if violation.threshold_key.startswith("min_") else "&gt;"
    output = code_span(violation.output, in_table=True)
    return f"{output} {escape_cell(violation.metric)} {shown or 'n/a'} {comparison} {limit}"


def _divergence_cell(run: RuntimeRun) -> str:
    """The run's first broken threshold, else its non-finite count, else its worst max_abs."""
    if run.violations:
        more = f" (+{len(run.violations) - 1} more)" if len(run.violations) > 1 else ""
        return _violation(run.violations[0]) + more
    non_finite = sum(m.non_finite for m in run.metrics)
    if non_finite:
        return f"{_int(non_finite)} NaN/Inf"
    measured = [m for m in run.metrics if m.value("max_abs") is not None]
    if not measured:
        return "-" if not run.metrics else "nothing compared"
    worst = max(measured, key=lambda m: m.value("max_abs") or 0.0)
    return f"max_abs {format_metric(worst, 'max_abs')}"


_USABLE_VARIANTS = {"converted", "not-converted"}  # shown plainly; the others in bold


def _run_status(run: RuntimeRun) -> str:
    status = f"**{run.status}**" if run.status in FAILING_RUN_STATUSES else run.status
    if run.compared_with:
        status += f" vs {escape_cell(run.compared_with)}"
    if run.status not in EXECUTED_RUN_STATUSES and run.phase:
        status += f" in {escape_cell(run.phase)}"
        if run.signal:
            status += f" ({escape_cell(run.signal)})"
    if run.latency_ms is not None:
        status += f", {run.latency_ms:.3g} ms/invoke"
    return status


def _ops_cell(variant: VariantReport) -> str:
    if variant.inspection is None:
        return "-"
    ops = variant.inspection.ops
    flex = sum(op.kind == "flex" for op in ops)
    custom = sum(op.kind == "custom" for op in ops)
    extra = [f"{flex} flex"] * bool(flex) + [f"{custom} custom"] * bool(custom)
    return str(len(ops)) + (f" ({', '.join(extra)})" if extra else "")


_MODELS_HEADER = [
    "model",
    "variant",
    "quantization",
    "status",
    "size",
    "ops",
    "min runtime",
    "runtime",
    "run",
    "divergence",
]


def _variant_cells(variant: VariantReport) -> list[str]:
    """A variant's cells after the model's; its runs share a cell each, one line per runtime."""
    inspection = variant.inspection
    status = variant.status_label()
    cells = [
        escape_cell(variant.name),
        escape_cell(variant.quantization),
        status if variant.status in _USABLE_VARIANTS else f"**{status}**",
        format_size(inspection.size_bytes) if inspection else "-",
        _ops_cell(variant),
        escape_cell(inspection.required_runtime or "?") if inspection else "-",
    ]
    if not variant.runs:
        return [*cells, "-", "-", "-"]
    per_run = [escape_cell(run.label) for run in variant.runs]
    statuses = [_run_status(run) for run in variant.runs]
    divergences = [_divergence_cell(run) for run in variant.runs]
    return [*cells, *("<br>".join(column) for column in (per_run, statuses, divergences))]


def _model_rows(model: ModelReport) -> list[str]:
    """One table row per variant, so every model reads in one table under the findings."""
    name = escape_cell(model.name)
    if not model.variants:
        status = "**not loaded**" if not model.loaded else "**not converted**"
        rows = [[name, "-", "-", status, *["-"] * (len(_MODELS_HEADER) - 4)]]
    else:
        rows = [[name, *_variant_cells(variant)] for variant in model.variants]
    return ["| " + " | ".join(row) + " |" for row in rows]


def _cache_line(models: list[ModelReport]) -> str:
    """Which models' results come from an earlier conversion (when is in their details)."""
    reused = [model.name for model in models if model.cache and model.cache.status == "reused"]
    if not reused:
        return ""
    return f"Reused from the cache, not converted in this run: {escape_text(', '.join(reused))}."


def _location(location: Location | None) -> str:
    if location is None:
        return "-"
    where = location.path
    if location.line is not None:
        where += f":{location.line}"
    return code_span(where, in_table=True)


def _finding_row(finding: Finding) -> str:
    severity = finding.severity.value
    if finding.severity is Severity.ERROR:
        severity = f"**{severity}**"
    cells = [severity, code_span(finding.rule, in_table=True), _location(finding.location)]
    cells.append(escape_cell(finding.message))
    return "| " + " | ".join(cells) + " |"


# --------------------------------------------------------------------------- details


def _variant_details(variant: VariantReport) -> list[str]:
    lines = [
        f"**{escape_text(variant.name)}** ({escape_text(variant.quantization)}): "
        f"{variant.status_label()}"
    ]
    inspection = variant.inspection
    if variant.artifact:
        lines[0] += f", {code_span(variant.artifact)}"
    if inspection is not None:
        lines[0] += (
            f", {format_size(inspection.size_bytes)}, min runtime "
            f"{escape_text(inspection.required_runtime or '?')} (metadata "
            f"{escape_text(inspection.metadata_min_runtime or '-')})"
        )
        if inspection.ops:
            rows = [
                [
                    code_span(op.name, in_table=True),
                    op.kind,
                    str(op.version),
                    str(op.count),
                    escape_cell(op.min_runtime or "?"),
                ]
                for op in inspection.ops
            ]
            lines += ["", _table(["op", "kind", "version", "count", "min runtime"], rows)]
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
        lines += ["", "Converter log:", "", _fenced_block(_clip_log(variant.converter.log_lines))]
    if variant.runs:
        rows = []
        for run in variant.runs:
            runtime = run.label
            for m in run.metrics:
                rows.append(
                    [
                        escape_cell(runtime),
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
                )
            if not run.metrics:
                rows.append([escape_cell(runtime), "-", str(run.samples), *["-"] * 7, "-"])
        header = [
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
        lines += ["", _table(header, rows)]
        for run in variant.runs:
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
                lines += ["", f"{escape_text(run.runtime)} said:", "", _fenced_block([run.message])]
            if run.reproducer:
                lines += ["", f"Reproducer: {code_span(run.reproducer)}"]
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


def _model_details(model: ModelReport) -> str:
    """A model's source, cache use, ops and metrics: collapsed, for whoever digs deeper."""
    what = "source, ops and metrics" if model.variants else "source"
    lines = [f"<details><summary>{_summary_html(model.name)}: {what}</summary>", ""]
    lines += [_source_line(model), ""]
    note = cache_note(model.cache)
    if note is not None:
        lines += [f"_{escape_text(note[0].upper() + note[1:])}._", ""]
    for variant in model.variants:
        lines += [*_variant_details(variant), ""]
    lines.append("</details>")
    return "\n".join(lines)


def _hints(findings: list[Finding]) -> str | None:
    rules = list(dict.fromkeys(f.rule for f in findings if f.rule in RULES))
    if not rules:
        return None
    lines = ["<details><summary>How to fix</summary>", ""]
    # Hints are our own Markdown (backticks meant as code), not untrusted text.
    lines += [f"- [{code_span(rule)}]({rule_url(rule)}): {RULES[rule].hint}" for rule in rules]
    lines += ["", "</details>"]
    return "\n".join(lines)


def _baseline_section(report: Report) -> str | None:
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
        lines += ["", _table(["variant", "changes"], rows)]
    if unchanged:
        lines += ["", f"{plural(unchanged, 'variant')} unchanged."]
    return "\n".join(lines)


def _suggestion_details(suggestion: ThresholdSuggestion | None) -> str | None:
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
            _location(item.location),
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
        _table(header, rows),
        "",
        _fenced_block(suggestion.snippet.splitlines(), "yaml"),
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
            now = _num(new.value(metric), 6) if new else "n/a"
            cells.append(f"{_num(old.value(metric), 6)} → {now}")
        rows.append(cells)
    return rows


def _diagnosis_details(model: ModelReport, variant: VariantReport) -> str | None:
    """Where an int8 variant loses accuracy, and the keep_float fix that was verified."""
    diagnosis = variant.diagnosis
    if diagnosis is None:
        return None
    name = f"{model.name}/{variant.name}"
    lines = [
        f"<details><summary>{_summary_html(name)}: where the quantization error comes from"
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
                _num(layer.rel_rmse),
                _num(layer.added),
                f"{layer.share:.0%}",
                _num(layer.rmse_over_scale),
            ]
            for position, layer in enumerate(diagnosis.layers, 1)
        ]
        header = ["#", "op output (tensor)", "op", "rel_rmse", "added", "share", "rmse/scale"]
        lines += [
            "Every op output of the quantized model against its float twin (for int8 the "
            "calibrated model it was quantized from), on the evaluation data; *added* is the "
            "relative error the op made itself, *share* its part of the error at the outputs.",
            "",
            _table(header, rows),
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
            _table(
                ["output", "max_abs", "rel_rmse", "cosine"],
                _metrics_pair(diagnosis.before, trial.metrics),
            ),
            "",
            *(
                [_fenced_block(diagnosis.snippet.splitlines(), "yaml"), ""]
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


@dataclass
class _Section:
    """Pieces of one kind (table rows or blocks); a cut drops them from the end.

    `head` (ending in its separator) is shown above the first piece kept and `tail`
    below the last; `left_out(dropped, total)` says in the cut note what went.
    """

    head: str
    pieces: list[str]
    joiner: str
    left_out: Callable[[int, int], str]
    tail: str = ""

    def render(self, kept: int) -> str | None:
        if kept <= 0:
            return None
        return self.head + self.joiner.join(self.pieces[:kept]) + self.tail


@dataclass
class _Parts:
    head: str
    sections: list[_Section]  # in order of importance, which is also the order shown
    footer: str

    @property
    def pieces(self) -> int:
        return sum(len(section.pieces) for section in self.sections)

    def kept(self, pieces: int) -> list[int]:
        """How many pieces of each section the first `pieces` are: the most important first."""
        kept = []
        for section in self.sections:
            kept.append(min(len(section.pieces), pieces))
            pieces -= kept[-1]
        return kept


def _verdict_line(report: Report) -> str:
    s = report.summary
    counts = (
        f"{plural(s.errors, 'error')}, {plural(s.warnings, 'warning')}, "
        f"{plural(s.notices, 'notice')} in {plural(len(report.models), 'model')}"
    )
    return (
        f"**{report.verdict.upper()}**: {counts} (`fail_on`: {report.fail_on}) · "
        f"{report.duration_s:.1f} s"
    )


def _share(dropped: int, total: int) -> str:
    return f"all {_int(total)}" if dropped == total else f"{_int(dropped)} of {_int(total)}"


def _findings_left_out(dropped: int, total: int) -> str:
    kept = " (the most severe are shown)" if dropped < total else ""
    return f"{_share(dropped, total)} findings{kept}"


def _findings_section(report: Report) -> _Section:
    header = _table(["severity", "rule", "location", "message"], [])
    return _Section(
        head=f"### Findings\n\n{header}\n",
        pieces=[_finding_row(f) for f in sort_findings(report.findings)],
        joiner="\n",
        left_out=_findings_left_out,
    )


def _models_section(report: Report) -> _Section:
    cache = _cache_line(report.models)
    return _Section(
        head=f"### Models\n\n{_table(_MODELS_HEADER, [])}\n",
        pieces=[row for model in report.models for row in _model_rows(model)],
        joiner="\n",
        left_out=lambda dropped, total: f"{_share(dropped, total)} rows of the models table",
        tail=f"\n\n{cache}" if cache else "",
    )


def _blocks_section(blocks: list[str], left_out: Callable[[int, int], str]) -> _Section:
    return _Section(head="", pieces=blocks, joiner="\n\n", left_out=left_out)


def _footer(report: Report, report_path: str | None) -> str:
    packages = report.environment.packages
    versions = ", ".join(
        f"{name} {escape_text(packages.get(name) or 'missing')}"
        for name in ("tensorflow", "ai-edge-litert")
    )
    where = f" · full report: {code_span(report_path)}" if report_path else ""
    return (
        f"<sub>tflite-gate {escape_text(report.tool.version)} · policy "
        f"{code_span(report.policy) if report.policy else '-'} · {versions} · Python "
        f"{escape_text(report.environment.python)}{where}</sub>"
    )


def _parts(report: Report, heading: str, report_path: str | None) -> _Parts:
    """The text in order of importance: what to act on first, details last and collapsed."""
    head = [f"## {heading}: {report.verdict.upper()}", "", _verdict_line(report)]
    if report.internal_error:
        head += ["", f"> **Internal error:** {escape_text(report.internal_error)}"]
    hints = _hints(sort_findings(report.findings))
    suggested = _suggestion_details(report.suggestion)
    diagnoses = [
        found
        for model in report.models
        for variant in model.variants
        if (found := _diagnosis_details(model, variant)) is not None
    ]
    details = [
        *([hints] if hints else []),
        *diagnoses,
        *([suggested] if suggested else []),
        *(_model_details(m) for m in report.models),
    ]
    baseline = _baseline_section(report)
    return _Parts(
        head="\n".join(head),
        sections=[
            _findings_section(report),
            _models_section(report),
            _blocks_section(
                [baseline] if baseline else [], lambda _d, _t: "the changes since the baseline"
            ),
            _blocks_section(
                details,
                lambda dropped, total: (
                    f"{_share(dropped, total)} collapsed detail sections (fix hints, ops, metrics)"
                ),
            ),
        ],
        footer=_footer(report, report_path),
    )


def _assemble(parts: _Parts, pieces: int, note: str) -> str:
    shown = [
        text
        for section, kept in zip(parts.sections, parts.kept(pieces), strict=True)
        if (text := section.render(kept)) is not None
    ]
    blocks = [parts.head, *shown, *([note] if note else []), parts.footer]
    return "\n\n".join(blocks) + "\n"


def _cut_note(parts: _Parts, max_chars: int, pieces: int, report_path: str | None) -> str:
    """Say what was left out and where the rest is."""
    cut = [
        section.left_out(len(section.pieces) - kept, len(section.pieces))
        for section, kept in zip(parts.sections, parts.kept(pieces), strict=True)
        if kept < len(section.pieces)
    ]
    where = f" ({code_span(report_path)})" if report_path else ""
    return (
        f"> **Cut to fit {_int(max_chars)} characters:** left out {'; '.join(cut)}. "
        f"The full JSON report{where} has everything."
    )


def _largest(fits: Callable[[int], bool], high: int) -> int:
    """Largest n in [0, high] with fits(n), given fits is monotone (True then False)."""
    low = 0
    if not fits(0):
        return -1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def render_markdown(
    report: Report,
    *,
    max_chars: int,
    heading: str = "tflite-gate",
    report_path: str | None = None,
) -> str:
    """The report as GitHub-flavoured Markdown of at most `max_chars` characters.

    A reviewer reads from the top, so the text goes in order of importance: the
    verdict and counts, the findings (most severe first), one table with a row per
    model x variant (size, ops, min runtime, run status per runtime, worst divergence
    vs its threshold), the changes since the baseline, then collapsed details (fix
    hints, diagnoses, suggested thresholds, source, ops and metrics per model). When
    the whole is too long it is cut from the end: details first, then the baseline
    changes, then table rows, and the least severe findings last; a note says what
    was cut and that the JSON report (at `report_path`, if given) has it all.
    `heading` is trusted Markdown (the caller's title).
    """
    parts = _parts(report, heading, report_path)
    full = _assemble(parts, parts.pieces, note="")
    if len(full) <= max_chars:
        return full

    def attempt(pieces: int) -> str:
        return _assemble(parts, pieces, _cut_note(parts, max_chars, pieces, report_path))

    pieces = _largest(lambda n: len(attempt(n)) <= max_chars, parts.pieces)
    if pieces >= 0:
        return attempt(pieces)
    # Not even the verdict and the note fit: a hard cut, still never over the limit.
    return attempt(0)[:max_chars]

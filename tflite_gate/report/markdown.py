"""GitHub-flavoured Markdown for the job summary and the sticky pull-request comment.

Both places have hard size limits (the step summary 1 MiB, a comment body 65,536
characters) and GitHub rejects, rather than truncates, text over the limit. So the
renderer builds the text in parts of falling importance (verdict and per-model
tables, then findings, then collapsed details) and, when the whole does not fit,
drops details first, then findings beyond the most severe N, and says what it cut.
The JSON report always has everything.

Everything that comes from the model, the converter or a runtime (op and tensor
names, messages, paths) is untrusted text: it is escaped so it can neither break a
table, inject HTML, open a code span, nor @-mention anyone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from tflite_gate.explain import rule_url
from tflite_gate.findings import RULES, Finding, Location, Severity, sort_findings
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
    cache_note,
    change_parts,
    format_metric,
    format_number,
    format_size,
    plural,
)
from tflite_gate.run_options import margin_text

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


def _versus(value: float, threshold: float) -> tuple[str, str]:
    """Value and threshold with enough digits that they visibly differ.

    `0.99923` vs `0.99999` needs five digits, `0.999989` vs `0.99999` six; a fixed
    precision would print "0.99999 < 0.99999" for a real violation.
    """
    shown_threshold = _num(threshold, 12)
    for digits in range(5, 13):
        shown = _num(value, digits)
        if shown != shown_threshold:
            return shown, shown_threshold
    return _num(value, 17), shown_threshold


def _int(n: int) -> str:
    return f"{n:,}"


# --------------------------------------------------------------------------- tables


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _violation(violation: ThresholdViolation) -> str:
    """`probs cosine 0.99923 < 0.99999`, with enough digits that the two visibly differ."""
    limit = _num(violation.threshold, 12)
    shown = (
        violation.infinite
        if violation.infinite is not None or violation.value is None
        else _versus(violation.value, violation.threshold)[0]
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


def _model_section(model: ModelReport) -> str:
    lines = [f"### {escape_text(model.name)}", ""]
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
    lines.append(f"Source {code_span(model.source)}{kind}{written}")
    note = cache_note(model.cache)
    if note is not None:
        lines += ["", f"_{escape_text(note[0].upper() + note[1:])}._"]
    if not model.variants:
        lines += ["", "_No variants: the model was not loaded or converted._"]
        return "\n".join(lines)
    header = [
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
    rows: list[list[str]] = []
    for variant in model.variants:
        inspection = variant.inspection
        status = variant.status_label()
        status = status if variant.status in _USABLE_VARIANTS else f"**{status}**"
        static = [
            escape_cell(variant.name),
            escape_cell(variant.quantization),
            status,
            format_size(inspection.size_bytes) if inspection else "-",
            _ops_cell(variant),
            escape_cell(inspection.required_runtime or "?") if inspection else "-",
        ]
        if not variant.runs:
            rows.append([*static, "-", "-", "-"])
            continue
        for index, run in enumerate(variant.runs):
            cells = static if index == 0 else [escape_cell(variant.name), "", "", "", "", ""]
            rows.append([*cells, escape_cell(run.label), _run_status(run), _divergence_cell(run)])
    lines += ["", _table(header, rows)]
    return "\n".join(lines)


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


def _model_details(model: ModelReport) -> str | None:
    if not model.variants:
        return None
    lines = [
        f"<details><summary>{_summary_html(model.name)}: ops and metrics</summary>",
        "",
    ]
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
            _num(item.threshold, 12),
            _num(item.measured, 6),
            f"**{_num(item.value, 12)}**",
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


def _chart_label(position: int, tensor: str) -> str:
    """A short, inert label: Mermaid has no escaping we could trust with model text."""
    parts = tensor.split(";")[0].split("/")
    layer = parts[-2] if len(parts) > 1 else parts[0]  # `model/dense_1/MatMul` → `dense_1`
    short = _CHART_LABEL.sub("", layer)[:24]
    return f"{position}. {short}" if short else str(position)


def _layer_chart(title: str, layers: list[LayerStat]) -> str:
    labels = ", ".join(f'"{_chart_label(i, layer.tensor)}"' for i, layer in enumerate(layers, 1))
    bars = ", ".join(f"{layer.share * 100:.1f}" for layer in layers)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "{_CHART_LABEL.sub(" ", title).strip()}"',
            f"    x-axis [{labels}]",
            '    y-axis "share of the error added (%)" 0 --> 100',
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
            "relative error the op adds to its inputs' worst.",
            "",
            _table(header, rows),
            "",
            _layer_chart(f"Error added per layer {name}", diagnosis.layers),
            "",
        ]
    if diagnosis.keep_float:
        trial = next(t for t in diagnosis.trials if t.nodes == diagnosis.keep_float)
        lines += [
            f"**Verified fix:** with these {len(diagnosis.keep_float)} op(s) kept in float the "
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
        lines += [
            f"No keep_float set tried passes ({len(diagnosis.trials)} tried, up to "
            f"{max(len(t.nodes) for t in diagnosis.trials)} ops kept in float): the error is "
            "spread out; better calibration data, int16x8, or a looser threshold may be needed.",
            "",
        ]
    lines.append("</details>")
    return "\n".join(lines)


# --------------------------------------------------------------------------- assembly


@dataclass
class _Parts:
    head: str
    models: list[str]
    findings_head: str
    finding_rows: list[str]
    details: list[str]
    footer: str


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


def _parts(report: Report, heading: str, report_path: str | None) -> _Parts:
    head = [f"## {heading}: {report.verdict.upper()}", "", _verdict_line(report)]
    if report.internal_error:
        head += ["", f"> **Internal error:** {escape_text(report.internal_error)}"]
    findings = sort_findings(report.findings)
    findings_head = ""
    if findings:
        findings_head = "### Findings\n\n" + _table(["severity", "rule", "location", "message"], [])
    model_details = [d for d in (_model_details(m) for m in report.models) if d is not None]
    hints = _hints(findings)
    suggested = _suggestion_details(report.suggestion)
    diagnoses = [
        found
        for model in report.models
        for variant in model.variants
        if (found := _diagnosis_details(model, variant)) is not None
    ]
    packages = report.environment.packages
    versions = ", ".join(
        f"{name} {escape_text(packages.get(name) or 'missing')}"
        for name in ("tensorflow", "ai-edge-litert")
    )
    where = f" · full report: {code_span(report_path)}" if report_path else ""
    footer = (
        f"<sub>tflite-gate {escape_text(report.tool.version)} · policy "
        f"{code_span(report.policy) if report.policy else '-'} · {versions} · Python "
        f"{escape_text(report.environment.python)}{where}</sub>"
    )
    return _Parts(
        head="\n".join(head),
        models=[
            *(_model_section(m) for m in report.models),
            *([baseline] if (baseline := _baseline_section(report)) else []),
        ],
        findings_head=findings_head,
        finding_rows=[_finding_row(f) for f in findings],
        details=[
            *([hints] if hints else []),
            *diagnoses,
            *([suggested] if suggested else []),
            *model_details,
        ],
        footer=footer,
    )


def _assemble(
    parts: _Parts,
    *,
    models: int,
    findings: int,
    details: int,
    note: str,
) -> str:
    blocks = [parts.head, *parts.models[:models]]
    if parts.findings_head:
        blocks.append("\n".join([parts.findings_head, *parts.finding_rows[:findings]]))
    blocks += parts.details[:details]
    if note:
        blocks.append(note)
    blocks.append(parts.footer)
    return "\n\n".join(blocks) + "\n"


def _cut_note(
    parts: _Parts,
    max_chars: int,
    *,
    models: int,
    findings: int,
    details: int,
    report_path: str | None,
) -> str:
    """Say what was left out and where the rest is."""
    cut: list[str] = []
    dropped_details = len(parts.details) - details
    if dropped_details:
        share = (
            f"all {_int(dropped_details)}"
            if dropped_details == len(parts.details)
            else f"{_int(dropped_details)} of {_int(len(parts.details))}"
        )
        cut.append(f"{share} collapsed detail sections (fix hints, ops, metrics)")
    dropped_findings = len(parts.finding_rows) - findings
    if dropped_findings:
        cut.append(
            f"{_int(dropped_findings)} of {_int(len(parts.finding_rows))} findings "
            "(the most severe are shown)"
        )
    dropped_models = len(parts.models) - models
    if dropped_models:
        cut.append(f"the tables of {_int(dropped_models)} of {_int(len(parts.models))} models")
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

    Order of importance: verdict and counts, one table per model (variants x
    runtimes with size, ops, min runtime, run status, worst divergence vs its
    threshold), findings most severe first, then collapsed details (fix hints,
    ops and metrics per variant). When the full text is too long, details go
    first, then the least severe findings, then model tables; a note says what
    was cut and that the JSON report (at `report_path`, if given) has it all.
    `heading` is trusted Markdown (the caller's title).
    """
    parts = _parts(report, heading, report_path)
    everything = dict(
        models=len(parts.models), findings=len(parts.finding_rows), details=len(parts.details)
    )
    full = _assemble(parts, note="", **everything)
    if len(full) <= max_chars:
        return full

    def attempt(models: int, findings: int, details: int) -> str:
        note = _cut_note(
            parts,
            max_chars,
            models=models,
            findings=findings,
            details=details,
            report_path=report_path,
        )
        return _assemble(parts, models=models, findings=findings, details=details, note=note)

    def fits(text: str) -> bool:
        return len(text) <= max_chars

    n_models, n_findings = everything["models"], everything["findings"]
    details = _largest(lambda d: fits(attempt(n_models, n_findings, d)), len(parts.details))
    if details >= 0:
        return attempt(n_models, n_findings, details)
    findings = _largest(lambda n: fits(attempt(n_models, n, 0)), n_findings)
    if findings >= 0:
        return attempt(n_models, findings, 0)
    models = _largest(lambda m: fits(attempt(m, 0, 0)), n_models)
    if models >= 0:
        return attempt(models, 0, 0)
    # Not even the verdict and the note fit: a hard cut, still never over the limit.
    return attempt(0, 0, 0)[:max_chars]

"""GitHub-flavoured Markdown for the job summary and the sticky pull-request comment.

Both places have hard size limits (the step summary 1 MiB, a comment body 65,536
characters) and GitHub rejects, rather than truncates, text over the limit. So the
renderer builds the text in parts of falling importance, which is also the order a
reviewer reads them in: the verdict, the findings to act on, one table of every
model's variants, the changes since the baseline, then collapsed details. When the
whole does not fit it drops from the end (details, baseline changes, table rows, the
least severe findings) and says what it cut. The JSON report always has everything.

Everything that comes from the model, the converter or a runtime (op and tensor
names, messages, paths) is untrusted text, escaped by `report/markdown_text.py`; the
collapsed details are made in `report/markdown_details.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tflite_gate.findings import Finding, Severity, sort_findings
from tflite_gate.report.markdown_details import (
    baseline_section,
    diagnosis_details,
    fix_hints,
    model_details,
    suggestion_details,
)
from tflite_gate.report.markdown_text import (
    code_span,
    escape_cell,
    escape_text,
    location_cell,
    table,
    thousands,
)
from tflite_gate.report.model import (
    EXECUTED_RUN_STATUSES,
    FAILING_RUN_STATUSES,
    ModelReport,
    Report,
    RuntimeRun,
    ThresholdViolation,
    VariantReport,
)
from tflite_gate.report.text import (
    AGREEMENT_METRICS,
    format_metric,
    format_number,
    format_size,
    format_threshold,
    plural,
)

# --------------------------------------------------------------------------- the table


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
        return f"{thousands(non_finite)} NaN/Inf"
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


def _finding_row(finding: Finding) -> str:
    severity = finding.severity.value
    if finding.severity is Severity.ERROR:
        severity = f"**{severity}**"
    cells = [severity, code_span(finding.rule, in_table=True), location_cell(finding.location)]
    cells.append(escape_cell(finding.message))
    return "| " + " | ".join(cells) + " |"


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
    return (
        f"all {thousands(total)}"
        if dropped == total
        else f"{thousands(dropped)} of {thousands(total)}"
    )


def _findings_left_out(dropped: int, total: int) -> str:
    kept = " (the most severe are shown)" if dropped < total else ""
    return f"{_share(dropped, total)} findings{kept}"


def _findings_section(report: Report) -> _Section:
    header = table(["severity", "rule", "location", "message"], [])
    return _Section(
        head=f"### Findings\n\n{header}\n",
        pieces=[_finding_row(f) for f in sort_findings(report.findings)],
        joiner="\n",
        left_out=_findings_left_out,
    )


def _models_section(report: Report) -> _Section:
    cache = _cache_line(report.models)
    return _Section(
        head=f"### Models\n\n{table(_MODELS_HEADER, [])}\n",
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
    hints = fix_hints(sort_findings(report.findings))
    suggested = suggestion_details(report.suggestion)
    diagnoses = [
        found
        for model in report.models
        for variant in model.variants
        if (found := diagnosis_details(model, variant)) is not None
    ]
    details = [
        *([hints] if hints else []),
        *diagnoses,
        *([suggested] if suggested else []),
        *(model_details(m) for m in report.models),
    ]
    baseline = baseline_section(report)
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
        f"> **Cut to fit {thousands(max_chars)} characters:** left out {'; '.join(cut)}. "
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

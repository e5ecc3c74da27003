"""The human summary printed at the end of `tflite-gate check`.

Plain text for logs; with `colour`, the gate's own words (severities, run statuses,
hints, the verdict) are coloured for a person at a terminal (see `report.colour`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO, TypeVar

from tflite_gate.findings import Finding, Severity, sort_findings
from tflite_gate.report.colour import Line, Style, Styled, show_line
from tflite_gate.report.github import stop_commands
from tflite_gate.report.model import (
    EXECUTED_RUN_STATUSES,
    FAILING_RUN_STATUSES,
    ModelReport,
    Report,
    RunStatus,
    VariantReport,
    Verdict,
)
from tflite_gate.report.text import (
    cache_note,
    change_parts,
    counts,
    diagnosis_line,
    format_size,
    metrics_line,
    plural,
)
from tflite_gate.rules import RULES
from tflite_gate.support.run_options import margin_text

Phase = TypeVar("Phase", bound=str)

_SEVERITY_STYLE: dict[Severity, Style] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.NOTICE: "notice",
}
_VERDICT_STYLE: dict[Verdict, Style] = {
    "pass": "passed",
    "fail": "error",
    "error": "error",
    "cancelled": "warning",
}


def _status(status: RunStatus) -> Styled | str:
    if status == "passed":
        return Styled(status, "passed")
    return Styled(status, "failed") if status in FAILING_RUN_STATUSES else status


def _ops(variant: VariantReport) -> str:
    if variant.inspection is None:
        return "-"
    return ", ".join(
        f"{op.name} v{op.version}" + (f" x{op.count}" if op.count > 1 else "")
        for op in variant.inspection.ops
    )


def _timings(timings: Mapping[Phase, float]) -> str:
    return " ".join(f"{phase} {seconds:.2f}s" for phase, seconds in timings.items())


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _model_lines(model: ModelReport) -> list[Line]:
    kind = model.source_kind or "?"
    lines: list[Line] = [f"{model.name}  ({kind}: {model.source})  {_timings(model.timings)}"]
    if model.inputs:
        shown = ", ".join(f"{t.name} {t.dtype}{t.shape}" for t in model.inputs)
        lines.append(f"  inputs: {shown}")
    note = cache_note(model.cache)
    if note is not None:
        lines.append(f"  {note}")
    if not model.variants:
        return lines
    rows = [["variant", "quant", "status", "size", "min runtime", "time", "ops"]]
    for v in model.variants:
        inspection = v.inspection
        rows.append(
            [
                v.name,
                v.quantization,
                v.status_label(),
                format_size(inspection.size_bytes) if inspection else "-",
                (inspection.required_runtime or "?") if inspection else "-",
                _timings(v.timings),
                _ops(v),
            ]
        )
    return [*lines, *_table(rows), *_run_lines(model)]


def _run_lines(model: ModelReport) -> list[Line]:
    """One line per variant x runtime: how it ran and its worst divergence."""
    lines: list[Line] = []
    for variant in model.variants:
        for run in variant.runs:
            text = f" vs {run.compared_with}" if run.compared_with else ""
            if run.samples:
                text += f" · {run.samples} samples"
            if run.latency_ms is not None:
                text += (
                    f" · {run.latency_ms:.3g} ms/invoke (median of {run.latency_runs}, "
                    f"{run.latency_threads} thread(s))"
                )
            for metrics in run.metrics:
                text += f" · {metrics_line(metrics)}"
            if run.custom_ops_executed:
                ops = ", ".join(run.custom_ops_executed)
                text += f" · custom ops {ops} ran, {run.custom_ops_resolver}"
            if run.phase and run.status not in EXECUTED_RUN_STATUSES:
                sample = f" sample {run.sample}" if run.sample is not None else ""
                text += f" · in {run.phase}{sample}" + (f" ({run.signal})" if run.signal else "")
            lines.append((f"  {variant.name} on {run.label}: ", _status(run.status), text))
        if variant.diagnosis is not None:
            snippet = variant.diagnosis.snippet
            then = "; merge into the policy:" if snippet else ""
            lines.append(f"  {variant.name}: {diagnosis_line(variant.diagnosis)}{then}")
            lines += [f"    {line}" for line in (snippet or "").splitlines()]
    return lines


def _baseline_lines(report: Report) -> list[Line]:
    """What changed since the baseline report, one line per variant that changed."""
    baseline = report.baseline
    if baseline is None:
        return []
    lines: list[Line] = [f"Since the baseline {baseline.report} (run {baseline.started_at}):"]
    unchanged = 0
    for change in baseline.variants:
        parts = change_parts(change)
        if parts:
            lines.append(f"  {change.model}/{change.variant}: {' · '.join(parts)}")
        else:
            unchanged += 1
    if unchanged:
        lines.append(f"  {plural(unchanged, 'variant')} unchanged")
    return [*lines, ""]


def _finding_lines(finding: Finding) -> list[Line]:
    where = f"{finding.location}  " if finding.location else ""
    severity = finding.severity.value
    lines: list[Line] = [
        (
            "  ",
            Styled(severity, _SEVERITY_STYLE[finding.severity]),
            f"{'':<{7 - len(severity)}} {finding.rule:<18} {where}{finding.message}",
        )
    ]
    rule = RULES.get(finding.rule)
    if rule is not None:
        lines.append((Styled(f"  {'':<7} {'':<18} hint: {rule.hint}", "dim"),))
    return lines


_POLICY_LOOSENINGS = frozenset({"op-not-allowed", "runtime-too-old"})
"""Findings `tflite-gate suggest` answers with a snippet of ops.allow and target_runtime."""


def render(report: Report, report_path: str | None = None, *, colour: bool = False) -> str:
    """Models, variants, ops, findings with hints, timings and the verdict.

    Every line is made plain (control characters shown as escapes, nothing a CI runner
    reads as a command); `colour` adds ANSI colour to the gate's own words.
    """
    packages = report.environment.packages
    lines: list[Line] = [
        f"tflite-gate {report.tool.version} · policy {report.policy or '-'} · "
        f"TensorFlow {packages.get('tensorflow') or 'missing'} · "
        f"ai-edge-litert {packages.get('ai-edge-litert') or 'missing'} · "
        f"Python {report.environment.python}",
        "",
    ]
    for model in report.models:
        lines += [*_model_lines(model), ""]
    lines += _baseline_lines(report)
    s = report.summary
    if report.findings:
        lines.append(f"Findings ({counts(s.errors, s.warnings, s.notices)}):")
        for finding in sort_findings(report.findings):
            lines += _finding_lines(finding)
        first = sort_findings(report.findings)[0].rule
        lines.append(f"  Causes, fixes and examples: tflite-gate explain RULE (e.g. {first})")
        if report.suggestion:
            lines.append(
                f"  Thresholds that pass here, with a {margin_text(report.suggestion.margin)} "
                "margin, as a policy snippet: tflite-gate suggest"
            )
        elif any(finding.rule in _POLICY_LOOSENINGS for finding in report.findings):
            lines.append(
                "  The ops.allow and target_runtime these variants need, as a policy snippet "
                "marked as loosenings: tflite-gate suggest"
            )
        lines.append("")
    if report.internal_error:
        lines.append(f"Internal error: {report.internal_error}")
    verdict = Styled(report.verdict.upper(), _VERDICT_STYLE[report.verdict])
    tail = f" · report: {report_path}" if report_path else ""
    lines.append(
        (
            "Verdict: ",
            verdict,
            f" (fail_on: {report.fail_on}) · "
            f"{counts(s.errors, s.warnings, s.notices)} · {report.duration_s:.1f} s{tail}",
        )
    )
    return "\n".join(show_line(line, colour) for line in lines)


@dataclass(frozen=True)
class TerminalSummary:
    """The summary printed at the end of a run, for a person or a log."""

    stream: TextIO
    report_place: str  # where the JSON report is, as the last line names it
    colour: bool = False
    # The stream is a GitHub runner's log: the text (model names, runtime messages) is
    # untrusted, so it goes between stop-commands markers and can issue no command.
    guarded: bool = False
    name: str = "the summary"

    @property
    def place(self) -> str:
        return getattr(self.stream, "name", "the log")

    def publish(self, report: Report) -> None:
        """Print the rendered summary."""
        text = render(report, self.report_place, colour=self.colour)
        if self.guarded:
            stop_commands(text.splitlines(), self.stream)
        else:
            print(text, file=self.stream)

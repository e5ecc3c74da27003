"""`suggest`: thresholds that pass on a finished run's data, as a policy snippet.

The command reads the run's JSON report instead of running again, so the numbers a
user saw fail are the numbers the suggestion is made from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tflite_gate.app.outcome import EXIT_INTERNAL, EXIT_PASS, EXIT_USAGE, internal_error_message
from tflite_gate.findings import Finding, Severity
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.report.json_report import ReportFileError, read_json_report
from tflite_gate.report.model import Report
from tflite_gate.support.run_options import CheckOptions


@dataclass
class SuggestOutcome:
    """`tflite-gate suggest`: the snippet for stdout, or what went wrong for stderr."""

    exit_code: int
    text: str = ""
    messages: list[str] = field(default_factory=list)


def run_suggest(options: CheckOptions, report_path: Path, margin: float) -> SuggestOutcome:
    """Thresholds that pass on a finished run's data, for the policy that run used.

    Reads the report instead of running again: the numbers the user saw fail are the
    numbers the suggestion is made from. A report made with another policy, or naming
    models the policy lacks, is a usage error (the snippet would land in the wrong place).
    """
    from tflite_gate.judge.suggest import SuggestionError, annotated_snippet, suggest_policy

    try:
        loaded = load_policy(options.policy, options.workspace, policy_option=options.names.policy)
        report = read_json_report(report_path)
    except PolicyError as error:
        return SuggestOutcome(EXIT_USAGE, messages=[str(issue) for issue in error.issues])
    except ReportFileError as error:
        return SuggestOutcome(EXIT_USAGE, messages=[str(error)])
    mismatch = _report_policy_mismatch(report, loaded, report_path)
    if mismatch:
        return SuggestOutcome(EXIT_USAGE, messages=[mismatch])
    try:
        suggestion = suggest_policy(report, loaded, margin)
    except SuggestionError as error:
        return SuggestOutcome(EXIT_INTERNAL, messages=[internal_error_message(str(error))])
    unfixable = [f"not a threshold (defect): {defect.text()}" for defect in suggestion.defects]
    unfixable += _not_thresholds(report, suggestion.covers)
    if not suggestion.snippet:
        text = f"# Nothing in {report_path} can be loosened to pass.\n"
    else:
        text = annotated_snippet(suggestion, loaded.display_path)
    return SuggestOutcome(EXIT_PASS, text + "".join(f"# {line}\n" for line in unfixable))


def _report_policy_mismatch(report: Report, loaded: LoadedPolicy, report_path: Path) -> str | None:
    if report.policy is not None and report.policy != loaded.display_path:
        return (
            f"pass --policy {report.policy}: {report_path} was made with it, "
            f"not with {loaded.display_path}"
        )
    names = {model.name for model in loaded.policy.models}
    unknown = [model.name for model in report.models if model.name not in names]
    if unknown:
        return (
            f"pass the report of a run of {loaded.display_path}: {report_path} checked "
            f"{', '.join(map(repr, unknown))}, which the policy does not have"
        )
    return None


def _not_thresholds(report: Report, covered: Callable[[Finding], bool]) -> list[str]:
    """Error findings the suggestion does not answer: crashes, denied ops, infinite errors..."""
    lines = []
    for finding in report.findings:
        if finding.severity is not Severity.ERROR or covered(finding):
            continue
        first = finding.message.splitlines()[0] if finding.message else ""
        lines.append(f"not a threshold ({finding.rule}): {first[:160]}")
    return lines

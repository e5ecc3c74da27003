"""The engine's front door, shared by the CLI and the GitHub Action.

It runs the pipeline and turns every way a run can end into a Report and a
stable exit code: 0 pass · 1 the gate failed · 2 usage or policy error ·
3 internal error (a bug; the report is still written, with the traceback) ·
4 passed, but a requested report could not be written ·
130/143 cancelled by SIGINT/SIGTERM (128 + the signal, as a shell reports it; the
partial report is still written).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tflite_gate.app.shards import ShardError, SplitBy, matrix_entries, merge_reports
from tflite_gate.findings import Finding, Location, Severity, make_finding
from tflite_gate.policy.errors import PolicyError, PolicyIssue
from tflite_gate.policy.load import LoadedPolicy, display_path_for, load_policy
from tflite_gate.report.json_report import ReportFileError, read_json_report
from tflite_gate.report.model import Report
from tflite_gate.report.outputs import Output, PathProblem, output_path_problems, write_each
from tflite_gate.support.cancel import Cancelled, cancellable
from tflite_gate.support.environment import new_report
from tflite_gate.support.layout import UnusablePlace
from tflite_gate.support.run_options import (
    CheckOptions,
    OutputPathError,
    Progress,
    UsageError,
    artifacts_path,
)

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL, EXIT_OUTPUT = 0, 1, 2, 3, 4
EXIT_SIGINT, EXIT_SIGTERM = 130, 143
EXIT_CANCELLED = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM}


@dataclass
class GateOutcome:
    """What a run produced: a report and the exit code (`refused`: outputs not to write)."""

    report: Report
    exit_code: int
    messages: list[str] = field(default_factory=list)  # for stderr: what went wrong, where
    refused: list[Output] = field(default_factory=list)  # outputs whose path is unusable
    unwritten: list[Output] = field(default_factory=list)  # outputs whose write failed

    def wrote(self, output: Output) -> bool:
        """Whether `output` is on disk (or stdout) now: a summary never names one that is not."""
        return output not in self.refused and output not in self.unwritten


def _issue_location(issue: PolicyIssue) -> Location | None:
    if issue.line is None:
        return None
    return Location(path=issue.path, line=issue.line, column=issue.column)


def _policy_error_report(error: PolicyError) -> Report:
    report = new_report()
    report.policy = error.issues[0].path if error.issues else None
    report.add(
        [
            make_finding("policy-invalid", issue.message, location=_issue_location(issue))
            for issue in error.issues
        ]
    )
    report.finalize("error")
    return report


def _internal_error_report(error: Exception, options: CheckOptions) -> Report:
    report = new_report()
    report.policy = display_path_for(options.policy, options.workspace)
    report.add_internal_error(error)
    report.finalize(options.fail_on or "error")
    return report


def _internal_error_message(finding: str) -> str:
    return f"internal error: {finding} (a bug; the traceback is in the report's internal_error)"


def usage_outcome(
    messages: list[str], options: CheckOptions, problems: Sequence[PathProblem] = ()
) -> GateOutcome:
    """A usage error still makes a report (verdict `error`), written where its path is usable.

    CI artifacts and dashboards read the JSON report, and the Action's outputs and
    summary are made from it; a run that never started must say why there too, but
    never through an output whose own path is the problem (those are `refused`).
    """
    refused = [problem.output for problem in problems]
    report = new_report()
    report.policy = display_path_for(options.policy, options.workspace)
    report.add([make_finding("usage-error", message) for message in messages])
    report.finalize(options.fail_on or "error")
    return GateOutcome(report, EXIT_USAGE, messages, refused)


def _cancelled_outcome(cancelled: Cancelled, options: CheckOptions) -> GateOutcome:
    report = cancelled.report
    if report is None:  # before the pipeline had a report, or after it returned one
        report = new_report()
        report.policy = display_path_for(options.policy, options.workspace)
        report.add([make_finding("cancelled", f"the run was cancelled by {cancelled.signal_name}")])
        report.finalize(options.fail_on or "error")
    return GateOutcome(
        report,
        EXIT_CANCELLED.get(cancelled.signal_name, EXIT_SIGTERM),
        [f"cancelled by {cancelled.signal_name}: the report holds what finished"],
    )


def run_gate(options: CheckOptions, progress: Progress) -> GateOutcome:
    """Run the gate; never raises for bad input, and a bug still yields a report.

    Cancellation (`Cancelled`, raised by the signal handler of `tflite_gate.support.cancel`
    while inside `cancellable()`) also ends in a report, with its own exit code.
    """
    problems = output_path_problems(
        options.outputs,
        policy=options.policy,
        artifacts=artifacts_path(options),
        workspace=options.workspace,
    )
    if problems:
        return usage_outcome([problem.message for problem in problems], options, problems)
    if not options.workspace.is_dir():
        message = f"give {options.names.workspace} an existing directory: {options.workspace}"
        return usage_outcome([f"{message} is not one"], options)
    cache = options.cache_dir
    if cache is not None and cache.exists() and not cache.is_dir():
        shown = display_path_for(cache, options.workspace)
        message = f"give {options.names.cache_dir} a directory: {shown} is not one"
        return usage_outcome([message], options)
    try:
        with cancellable():
            started = time.monotonic()
            loaded = load_policy(
                options.policy, options.workspace, policy_option=options.names.policy
            )
            # Only a usable policy pays for the pipeline's imports (numpy, the workers,
            # every stage): a bad one is answered first, and fast.
            from tflite_gate.pipeline.run import run_check

            report = run_check(options, progress, loaded=loaded, started=started)
    except Cancelled as cancelled:
        return _cancelled_outcome(cancelled, options)
    except PolicyError as error:
        return GateOutcome(
            _policy_error_report(error), EXIT_USAGE, [str(issue) for issue in error.issues]
        )
    except OutputPathError as error:
        return usage_outcome(str(error).splitlines(), options, error.problems)
    except (UsageError, UnusablePlace) as error:
        return usage_outcome([str(error)], options)
    except Exception as error:  # a bug in tflite-gate outside any model: report it
        return GateOutcome(
            _internal_error_report(error, options),
            EXIT_INTERNAL,
            [_internal_error_message(f"{type(error).__name__}: {error}")],
        )
    if report.internal_error is not None:  # one model's check broke; the others' stand
        bugs = [f.message for f in report.findings if f.rule == "internal-error"]
        return GateOutcome(report, EXIT_INTERNAL, [_internal_error_message(m) for m in bugs])
    return GateOutcome(report, EXIT_FAIL if report.verdict == "fail" else EXIT_PASS)


def plan_matrix(options: CheckOptions, by: SplitBy) -> list[dict[str, str]] | GateOutcome:
    """The matrix entries of the policy, or the outcome of a policy that cannot be loaded."""
    try:
        loaded = load_policy(options.policy, options.workspace, policy_option=options.names.policy)
    except PolicyError as error:
        return GateOutcome(
            _policy_error_report(error), EXIT_USAGE, [str(issue) for issue in error.issues]
        )
    return matrix_entries(loaded, by)


def run_merge(options: CheckOptions, reports: Sequence[Path]) -> GateOutcome:
    """Merge shard reports as if one run had checked every model; never raises for bad input.

    The policy orders the models and says which matrix entries must have a report.
    """
    problems = output_path_problems(
        options.outputs,
        policy=options.policy,
        artifacts=artifacts_path(options),
        workspace=options.workspace,
    )
    if problems:
        return usage_outcome([problem.message for problem in problems], options, problems)
    try:
        loaded = load_policy(options.policy, options.workspace, policy_option=options.names.policy)
        shards = [(str(path), read_json_report(path)) for path in reports]
        report = merge_reports(shards, loaded)
    except PolicyError as error:
        return GateOutcome(
            _policy_error_report(error), EXIT_USAGE, [str(issue) for issue in error.issues]
        )
    except (ShardError, ReportFileError) as error:
        return usage_outcome([str(error)], options)
    if report.internal_error is not None:
        return GateOutcome(report, EXIT_INTERNAL, ["a shard hit an internal error (a bug)"])
    exit_code = {"pass": EXIT_PASS, "error": EXIT_USAGE}.get(report.verdict, EXIT_FAIL)
    return GateOutcome(report, exit_code)


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
        return SuggestOutcome(EXIT_INTERNAL, messages=[_internal_error_message(str(error))])
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


def publish_reports(outcome: GateOutcome, outputs: Sequence[Output]) -> list[str]:
    """Write every requested report file but the refused; the messages of those that failed.

    A write failure after a completed run is not a verdict: a pass becomes exit 4
    (an output is missing), anything else keeps its code, so "the gate failed" (1)
    still means a finding and never a full disk.
    """
    failures = write_each(
        outcome.report, [output for output in outputs if output not in outcome.refused]
    )
    outcome.unwritten += [failure.output for failure in failures]
    if failures and outcome.exit_code == EXIT_PASS:
        outcome.exit_code = EXIT_OUTPUT
    return [failure.message for failure in failures]

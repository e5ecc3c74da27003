"""The command line's side of every command: what goes to stdout, what to stderr, the exit code.

stdout carries one thing: the summary, the JSON report (`--format json`, or an output
of `-`), the workflow commands (`--format github`), the matrix, the snippet or the
schema. Progress and whatever else is shown go to stderr, and every line of it is
made plain: a CI runner reads both streams for workflow commands.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tflite_gate.app.check import run_gate
from tflite_gate.app.outcome import (
    EXIT_CANCELLED,
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_USAGE,
    GateOutcome,
    usage_outcome,
)
from tflite_gate.app.publish import Audience, publish
from tflite_gate.app.schema import SchemaName, schema_text
from tflite_gate.app.shards import SplitBy, plan_matrix, run_merge
from tflite_gate.app.suggest import run_suggest
from tflite_gate.report.colour import wants_colour
from tflite_gate.report.github import plain_line, plain_lines
from tflite_gate.report.status_line import status_line, wants_status_line
from tflite_gate.rules import RULES, explain
from tflite_gate.support.output_paths import Output, PathProblem, output_path_problems
from tflite_gate.support.run_options import CheckOptions, ResultLine, artifacts_path

if TYPE_CHECKING:
    from tflite_gate.app.init import InitRequest

OutputFormat = Literal["text", "json", "github"]


@contextmanager
def progress_lines(quiet: bool, *, summary_follows: bool) -> Iterator[Callable[[str], None]]:
    """Progress lines on stderr (a live status line under them on a terminal).

    stdout carries the result, stderr the progress. When a summary of the results
    follows on stdout, a log (CI, a pipe: both streams end up in one file) gets no
    result lines on stderr, so nothing in it is said twice.
    """
    if quiet:
        yield lambda _message: None
        return
    watched = wants_status_line(sys.stderr)
    with status_line(sys.stderr) as write:

        def say(message: str) -> None:
            if summary_follows and not watched and isinstance(message, ResultLine):
                return
            # The runner reads stderr for workflow commands too: every line is made plain.
            write(plain_line(message))

        yield say


def stdout_conflict(outputs: Sequence[Output], output_format: OutputFormat) -> str | None:
    """Why the outputs and the format cannot share stdout; None if they can."""
    to_stdout = [output for output in outputs if output.to_stdout]
    if output_format == "github" and to_stdout:
        return (
            f"give {to_stdout[0].option} a file path with --format github: its workflow "
            "commands go to stdout"
        )
    if output_format == "json" and any(output.option != "--report" for output in to_stdout):
        other = next(output.option for output in to_stdout if output.option != "--report")
        return f"give {other} a file path: --format json prints the JSON report on stdout"
    return None


def _refused_stdout(message: str, options: CheckOptions) -> GateOutcome:
    """A usage error whose report goes to the files asked for, never to the contested stdout."""
    contested = [output for output in options.outputs if output.to_stdout]
    return usage_outcome([message], options, [PathProblem(o, message) for o in contested])


def _show_messages(outcome: GateOutcome) -> None:
    """What went wrong, on stderr; a policy's issues are already `path:line:col: message`."""
    located = outcome.report.stopped == "policy"  # `path:line:col: message` already
    for message in outcome.messages:
        shown = message if located else f"tflite-gate: error: {message}"
        print(plain_lines(shown), file=sys.stderr)


def _audience(
    outcome: GateOutcome, outputs: Sequence[Output], output_format: OutputFormat, report: str
) -> Audience:
    """Where the CLI shows a finished run: one thing on stdout, the rest on stderr."""
    summarised = (EXIT_PASS, EXIT_FAIL, *EXIT_CANCELLED.values())  # cancelled: what finished
    shows_summary = outcome.exit_code in summarised or bool(outcome.report.models)
    any_to_stdout = any(output.to_stdout for output in outputs)
    stream = sys.stderr if output_format == "json" or any_to_stdout else sys.stdout
    on_github = output_format == "github"
    summary = sys.stdout if on_github else stream
    return Audience(
        report_name=report,
        summary=summary if shows_summary and output_format != "json" else None,
        colour=wants_colour(stream, os.environ),  # plain lines, coloured for a person
        github=sys.stdout if on_github else None,
        env=os.environ if on_github else {},
        json_to_stdout=output_format == "json" and not any_to_stdout,
        errors=sys.stderr,
    )


def finish(
    outcome: GateOutcome,
    outputs: Sequence[Output],
    *,
    output_format: OutputFormat,
    report_name: str,
) -> int:
    """Messages, report files, the summary and (`--format github`) annotations; the exit code."""
    _show_messages(outcome)
    publish(outcome, outputs, _audience(outcome, outputs, output_format, report_name))
    return outcome.exit_code


def check_command(
    options: CheckOptions, *, output_format: OutputFormat, report_name: str, quiet: bool
) -> int:
    """`tflite-gate check`: run the gate with progress on stderr, then show the outcome."""
    conflict = stdout_conflict(options.outputs, output_format)
    if conflict is not None:
        outcome = _refused_stdout(conflict, options)
    else:
        with progress_lines(quiet, summary_follows=True) as progress:
            outcome = run_gate(options, progress)
    return finish(outcome, options.outputs, output_format=output_format, report_name=report_name)


def merge_command(
    options: CheckOptions, shards: Sequence[Path], *, output_format: OutputFormat, report_name: str
) -> int:
    """`tflite-gate merge`: one report from the shard reports, shown as a check's."""
    conflict = stdout_conflict(options.outputs, output_format)
    if conflict is not None:
        outcome = _refused_stdout(conflict, options)
    else:
        outcome = run_merge(options, shards)
    return finish(outcome, options.outputs, output_format=output_format, report_name=report_name)


def matrix_command(options: CheckOptions, by: SplitBy) -> int:
    """The `strategy.matrix` JSON on stdout; a policy error is located on stderr (exit 2)."""
    planned = plan_matrix(options, by)
    if isinstance(planned, GateOutcome):
        for message in planned.messages:
            print(plain_lines(message), file=sys.stderr)
        return planned.exit_code
    print(json.dumps({"include": planned}))
    return EXIT_PASS


def suggest_command(options: CheckOptions, report: Path, margin: float) -> int:
    """`tflite-gate suggest`: the snippet on stdout, what went wrong on stderr."""
    outcome = run_suggest(options, report, margin)
    for message in outcome.messages:
        print(plain_lines(f"tflite-gate suggest: {message}"), file=sys.stderr)
    if outcome.text:
        print(plain_lines(outcome.text))
    return outcome.exit_code


def init_command(request: InitRequest, *, quiet: bool) -> int:
    """`tflite-gate init`: progress on stderr, the summary of the policy written on stdout."""
    from tflite_gate.app.init import run_init  # the pipeline: only for this command

    with progress_lines(quiet, summary_follows=False) as progress:
        outcome = run_init(request, progress)
    for message in outcome.messages:
        print(plain_lines(f"tflite-gate init: {message}"), file=sys.stderr)
    if outcome.summary:
        print(plain_lines(outcome.summary))
    return outcome.exit_code


def explain_command(rule: str | None) -> int:
    """One rule's explanation; an unknown id is a usage error that names the close ones."""
    if rule is None:
        width = max(map(len, RULES))
        for known in RULES.values():
            print(f"{known.id:<{width}}  {known.title}")
        return EXIT_PASS
    if rule not in RULES:
        close = difflib.get_close_matches(rule, list(RULES), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        print(
            f"tflite-gate explain: {hint}{rule!r} is not a rule id; "
            "`tflite-gate explain` lists them all",
            file=sys.stderr,
        )
        return EXIT_USAGE
    sys.stdout.write(explain(rule))
    return EXIT_PASS


def schema_command(which: SchemaName) -> int:
    """`tflite-gate schema`: the JSON Schema on stdout."""
    sys.stdout.write(schema_text(which))
    return EXIT_PASS


def command_line_error(message: str, options: CheckOptions | None) -> int:
    """A command line that did not parse: exit 2, and (check, merge) the report saying why.

    CI reads the JSON report after a failed step; a typo in the workflow's command line
    must say so there too, not leave the previous run's report in place. `options` is
    None when the report options themselves could not be read.
    """
    if options is None:
        return EXIT_USAGE
    problems = output_path_problems(
        options.outputs,
        policy=options.policy,
        artifacts=artifacts_path(options),
        workspace=options.workspace,
    )
    outcome = usage_outcome([message], options, problems)
    publish(outcome, options.outputs, Audience(report_name="", errors=sys.stderr))
    return EXIT_USAGE

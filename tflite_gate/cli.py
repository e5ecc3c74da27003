"""Command line: argument parsing and exit codes; nothing else.

Exit codes (stable): 0 pass · 1 the gate failed · 2 usage or policy error ·
3 internal error (a bug; a report is still written) · 4 passed, but a requested
report could not be written · 130/143 cancelled by SIGINT/SIGTERM (the partial
report is still written).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from tflite_gate import __version__
from tflite_gate.app.gate import (
    EXIT_CANCELLED,
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_USAGE,
    GateOutcome,
    plan_matrix,
    publish_reports,
    run_gate,
    run_merge,
    run_suggest,
    usage_outcome,
)
from tflite_gate.app.schema import schema_text
from tflite_gate.policy.load import DEFAULT_POLICY_FILE
from tflite_gate.report.colour import wants_colour
from tflite_gate.report.github import (
    plain_line,
    plain_lines,
    report_to_github,
    stop_commands,
    workflow_command,
)
from tflite_gate.report.json_report import json_text
from tflite_gate.report.outputs import Output, PathProblem, output_path_problems, report_outputs
from tflite_gate.report.status_line import status_line, wants_status_line
from tflite_gate.report.terminal import render
from tflite_gate.rules import RULES, explain
from tflite_gate.support import cancel
from tflite_gate.support.run_options import (
    DEFAULT_CACHE_MAX_MB,
    DEFAULT_MARGIN,
    CheckOptions,
    FailOn,
    ResultLine,
    artifacts_path,
    margin_text,
    parse_margin,
)

DEFAULT_REPORT = "tflite-gate-report.json"


class CommandLineError(Exception):
    """argparse's complaint, raised instead of exiting: `check` still writes its report."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self, message)


def _examples(*lines: str) -> str:
    """An epilog of example command lines, shown under the options as written."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _literal(text: str) -> str:
    """`text` as argparse help shows it: a bare `%` (`100%`) would be read as a format."""
    return text.replace("%", "%%")


def _command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    *,
    summary: str,
    description: str,
    examples: list[str],
) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it is for and shows how it is called."""
    return commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=_examples(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tflite-gate",
        description="CI gate for TensorFlow → TFLite (LiteRT) conversion.",
        epilog=_examples(
            "tflite-gate init --source model.keras   # a first policy, measured on the model",
            "tflite-gate check                       # the gate, with tflite-gate.yml",
            "tflite-gate explain divergence          # what a finding means and how to fix it",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tflite-gate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = _command(
        commands,
        "check",
        summary="convert, inspect, run and check the models",
        description="Convert each model of the policy, inspect the .tflite files, run them on\n"
        "representative data, compare them with the source model and report what\n"
        "breaks the policy. Exit codes: 0 pass, 1 the gate failed, 2 usage or policy\n"
        "error, 3 internal error (README lists them all).",
        examples=[
            "tflite-gate check",
            "tflite-gate check --workspace examples --only classifier",
            "tflite-gate check --format github --sarif tflite-gate.sarif",
        ],
    )
    _policy_arguments(check)
    _report_arguments(check)
    check.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="MODEL",
        help="check only these models (repeat, or separate with commas)",
    )
    check.add_argument(
        "--runtime",
        action="append",
        default=[],
        metavar="NAME",
        help="run only on these of the models' runtimes, named as in the report (a matrix "
        "shard; repeat)",
    )
    check.add_argument(
        "--fail-on", choices=["error", "warning", "never"], help="override the policy's fail_on"
    )
    check.add_argument(
        "--artifacts",
        type=Path,
        help="where converted models go (default: WORKSPACE/.tflite-gate/artifacts)",
    )
    check.add_argument(
        "--cache-dir",
        type=Path,
        help="where runtime environments and converted models are cached (default: "
        "$TFLITE_GATE_CACHE or ~/.cache/tflite-gate)",
    )
    check.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="convert every model again, and keep nothing (runtime environments are still reused)",
    )
    check.add_argument(
        "--cache-max-mb",
        type=_positive_int,
        default=DEFAULT_CACHE_MAX_MB,
        metavar="MB",
        help="least recently used conversions are dropped beyond this size "
        f"(default: {DEFAULT_CACHE_MAX_MB})",
    )
    check.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="workers at once: models and variants converted and run in parallel (default: "
        "one per core, fewer when memory is short)",
    )
    check.add_argument(
        "--baseline",
        type=Path,
        metavar="REPORT",
        help="an earlier JSON report (e.g. the base branch's) to compare size, ops, runtime, "
        "metrics and latency with; the policy's regression: section gates the changes",
    )
    check.add_argument("--quiet", action="store_true", help="no progress lines")
    matrix = _command(
        commands,
        "matrix",
        summary="print the strategy.matrix JSON that splits the check over CI jobs",
        description="Print the strategy.matrix JSON that splits a check over CI jobs: one\n"
        "shard per model (or per model and runtime). Each job runs `check --only`\n"
        "(and `--runtime`); `merge` combines their reports.",
        examples=["tflite-gate matrix", "tflite-gate matrix --by runtime"],
    )
    _policy_arguments(matrix)
    _split_argument(matrix)
    merge = _command(
        commands,
        "merge",
        summary="combine the shard reports of a split check into one report",
        description="Combine the JSON reports of a split check (see `matrix`) into one report,\n"
        "with the verdict and exit code of a whole check; a missing shard is a finding.",
        examples=["tflite-gate merge shards/*.json --report tflite-gate-report.json"],
    )
    merge.add_argument("shards", nargs="+", type=Path, metavar="REPORT")
    _policy_arguments(merge)
    _report_arguments(merge)
    suggest = _command(
        commands,
        "suggest",
        summary="thresholds that pass on a finished run's data, with a margin, as a policy snippet",
        description="Read the JSON report of a finished check and print the thresholds that\n"
        "would pass on its data, with a margin, as a snippet to merge into the policy.",
        examples=["tflite-gate suggest", "tflite-gate suggest --report old.json --margin 50%"],
    )
    _policy_arguments(suggest)
    suggest.add_argument(
        "--report",
        type=Path,
        default=Path(DEFAULT_REPORT),
        help=f"the JSON report of the run (default: {DEFAULT_REPORT})",
    )
    suggest.add_argument(
        "--margin",
        type=_margin,
        default=DEFAULT_MARGIN,
        help=_literal(
            "how much the measured error may grow, as a share or a percentage "
            f"(default: {margin_text(DEFAULT_MARGIN)})"
        ),
    )
    init = _command(
        commands,
        "init",
        summary="check a model once and write a starter policy that passes as written",
        description="Check a model once and write a starter tflite-gate.yml (and its JSON\n"
        "Schema beside it) with the ops, runtime and thresholds measured on this\n"
        "machine, so that `tflite-gate check` passes as written.",
        examples=[
            "tflite-gate init",
            "tflite-gate init --source models/classifier.keras --variants float,int8",
            "tflite-gate init --source app.models:build --input-shape image=1,224,224,3",
        ],
    )
    _policy_arguments(init)
    init.add_argument(
        "--source",
        help="the model: a .keras, .h5, SavedModel directory, .tflite or package.module:function "
        "(default: the one model file in the workspace)",
    )
    init.add_argument("--name", help="the model's name in the policy (default: from the source)")
    init.add_argument(
        "--variants",
        help="comma-separated: float, dynamic, float16, int8, int16x8 (default: float); "
        "with an existing policy, the variants to add to it",
    )
    init.add_argument(
        "--input-shape",
        action="append",
        default=[],
        type=_input_shape,
        metavar="NAME=DIMS",
        help="the sizes your app feeds an input with dynamic dimensions, e.g. image=1,224,224,3 "
        "(repeat per input)",
    )
    init.add_argument(
        "--margin",
        type=_margin,
        default=DEFAULT_MARGIN,
        help=_literal(
            f"how much the measured error may grow (default: {margin_text(DEFAULT_MARGIN)})"
        ),
    )
    init.add_argument("--force", action="store_true", help="replace an existing policy file")
    init.add_argument("--cache-dir", type=Path, help="as for check")
    init.add_argument("--quiet", action="store_true", help="no progress lines")
    explain = _command(
        commands,
        "explain",
        summary="what a rule means, typical causes, how to fix it, an example",
        description="What a finding's rule means, its typical causes, how to fix it, and an\n"
        "example; without a rule id, every rule with its one-line title.",
        examples=["tflite-gate explain", "tflite-gate explain divergence"],
    )
    explain.add_argument("rule", nargs="?", help="a rule id; without one, every rule is listed")
    schema = _command(
        commands,
        "schema",
        summary="print the JSON Schema of the policy file or of the JSON report",
        description="Print the JSON Schema of the policy file (for editor completion and\n"
        "validation) or of the JSON report (for the scripts that read it).",
        examples=[
            "tflite-gate schema policy > .tflite-gate.schema.json",
            "tflite-gate schema report",
        ],
    )
    schema.add_argument(
        "which", nargs="?", choices=["policy", "report"], default="report", help="default: report"
    )
    return parser


def _policy_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--policy", type=Path, help=f"default: WORKSPACE/{DEFAULT_POLICY_FILE}")
    command.add_argument("--workspace", type=Path, default=Path(), help="default: .")


def _report_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--report",
        type=Path,
        default=Path(DEFAULT_REPORT),
        help=f"JSON report path, - for stdout (default: {DEFAULT_REPORT})",
    )
    command.add_argument(
        "--sarif", type=Path, help="also write a SARIF 2.1.0 report here (- for stdout)"
    )
    command.add_argument(
        "--junit", type=Path, help="also write a JUnit XML report here (- for stdout)"
    )
    command.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="json: print the JSON report on stdout instead of the summary (progress stays on "
        "stderr); github: also print workflow-command annotations and write the job summary "
        "and outputs when GITHUB_STEP_SUMMARY / GITHUB_OUTPUT are set",
    )


def _split_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--by",
        choices=["model", "runtime"],
        default="model",
        help="one shard per model (default), or per model and runtime",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return value


def _margin(text: str) -> float:
    try:
        return parse_margin(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _input_shape(text: str) -> tuple[str, list[int]]:
    name, equals, dims = text.partition("=")
    try:
        sizes = [int(part) for part in dims.split(",")]
    except ValueError:
        sizes = []
    if not equals or not name.strip() or not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"write NAME=DIMS with whole sizes above 0, e.g. image=1,224,224,3; got {text!r}"
        )
    return name.strip(), sizes


@contextmanager
def _progress(quiet: bool, *, summary_follows: bool) -> Iterator[Callable[[str], None]]:
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


def split_names(values: list[str]) -> list[str]:
    """`--only a,b --only c` (or newline-separated, as Action inputs come) → [a, b, c]."""
    return [
        name.strip()
        for value in values
        for name in value.replace("\n", ",").split(",")
        if name.strip()
    ]


def _policy_path(args: argparse.Namespace) -> Path:
    policy: Path | None = args.policy
    workspace: Path = args.workspace
    return policy if policy is not None else workspace / DEFAULT_POLICY_FILE


def _outputs(args: argparse.Namespace) -> list[Output]:
    return report_outputs(
        json_path=args.report,
        sarif_path=args.sarif,
        junit_path=args.junit,
        names={"json": "--report", "sarif": "--sarif", "junit": "--junit"},
    )


def _check(args: argparse.Namespace) -> int:
    fail_on: FailOn | None = args.fail_on
    outputs = _outputs(args)
    options = CheckOptions(
        policy=_policy_path(args),
        workspace=args.workspace,
        only=split_names(args.only),
        runtimes=[name.strip() for name in args.runtime if name.strip()],
        artifacts=args.artifacts,
        cache_dir=args.cache_dir,
        cache=args.cache,
        cache_max_mb=args.cache_max_mb,
        jobs=args.jobs,
        fail_on=fail_on,
        outputs=outputs,
        baseline=args.baseline,
    )
    conflict = _stdout_conflict(outputs, args.format)
    if conflict is not None:
        return _finish(_refused_stdout(conflict, options), outputs, args)
    with _progress(args.quiet, summary_follows=True) as progress:
        outcome = run_gate(options, progress)
    return _finish(outcome, outputs, args)


def _merge(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    options = CheckOptions(policy=_policy_path(args), workspace=args.workspace, outputs=outputs)
    conflict = _stdout_conflict(outputs, args.format)
    if conflict is not None:
        return _finish(_refused_stdout(conflict, options), outputs, args)
    return _finish(run_merge(options, args.shards), outputs, args)


def _refused_stdout(message: str, options: CheckOptions) -> GateOutcome:
    """A usage error whose report goes to the files asked for, never to the contested stdout."""
    contested = [output for output in options.outputs if output.to_stdout]
    return usage_outcome([message], options, [PathProblem(o, message) for o in contested])


def _matrix(args: argparse.Namespace) -> int:
    """The `strategy.matrix` JSON on stdout; a policy error is located on stderr (exit 2)."""
    options = CheckOptions(policy=_policy_path(args), workspace=args.workspace)
    planned = plan_matrix(options, args.by)
    if isinstance(planned, GateOutcome):
        for message in planned.messages:
            print(plain_lines(message), file=sys.stderr)
        return planned.exit_code
    print(json.dumps({"include": planned}))
    return EXIT_PASS


def _stdout_conflict(outputs: list[Output], output_format: str) -> str | None:
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


def _finish(outcome: GateOutcome, outputs: list[Output], args: argparse.Namespace) -> int:
    """Messages, report files, the summary and (`--format github`) annotations; the exit code.

    stdout carries one thing: the summary, the JSON report (`--format json`, or an
    output of `-`) or the workflow commands. Whatever else is shown goes to stderr.
    """
    policy_error = any(finding.rule == "policy-invalid" for finding in outcome.report.findings)
    for message in outcome.messages:
        shown = message if policy_error else f"tflite-gate: error: {message}"
        print(plain_lines(shown), file=sys.stderr)
    report = outcome.report
    summarised = (EXIT_PASS, EXIT_FAIL, *EXIT_CANCELLED.values())  # cancelled: what finished
    shows_summary = outcome.exit_code in summarised or bool(report.models)  # models checked
    failures = publish_reports(outcome, outputs)
    for failure in failures:
        print(plain_lines(f"tflite-gate: error: {failure}"), file=sys.stderr)
    if args.format == "json" and not any(output.to_stdout for output in outputs):
        sys.stdout.write(json_text(report))
    json_output = next(output for output in outputs if output.option == "--report")
    report_place = str(args.report) if outcome.wrote(json_output) else "not written"
    if json_output.to_stdout and outcome.wrote(json_output):
        report_place = "stdout"
    stdout_taken = args.format == "json" or any(output.to_stdout for output in outputs)
    stream = sys.stderr if stdout_taken else sys.stdout
    # Plain lines (a GitHub runner reads stdout for commands), coloured for a person.
    colour = wants_colour(stream, os.environ)
    summary = render(report, report_place, colour=colour) if shows_summary else ""
    if args.format == "github":
        if summary:  # untrusted text (messages, op names): never read as workflow commands
            stop_commands(summary.splitlines(), sys.stdout)
        report_to_github(report, report_path=str(args.report), stream=sys.stdout, env=os.environ)
        for failure in failures:
            print(workflow_command("warning", failure, {"title": "tflite-gate output"}))
    elif summary and args.format != "json":
        print(summary, file=stream)
    return outcome.exit_code


def _suggest(args: argparse.Namespace) -> int:
    options = CheckOptions(policy=_policy_path(args), workspace=args.workspace)
    outcome = run_suggest(options, args.report, args.margin)
    for message in outcome.messages:
        print(plain_lines(f"tflite-gate suggest: {message}"), file=sys.stderr)
    if outcome.text:
        print(plain_lines(outcome.text))
    return outcome.exit_code


def _init(args: argparse.Namespace) -> int:
    from tflite_gate.app.init import InitRequest, run_init

    request = InitRequest(
        workspace=args.workspace,
        policy=_policy_path(args),
        source=args.source,
        name=args.name,
        variants=split_names([args.variants]) if args.variants is not None else None,
        input_shapes=dict(args.input_shape),
        margin=args.margin,
        force=args.force,
        cache_dir=args.cache_dir,
    )
    with _progress(args.quiet, summary_follows=False) as progress:
        outcome = run_init(request, progress)
    for message in outcome.messages:
        print(plain_lines(f"tflite-gate init: {message}"), file=sys.stderr)
    if outcome.summary:
        print(plain_lines(outcome.summary))
    return outcome.exit_code


def _explain(rule: str | None) -> int:
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


def _report_place(argv: list[str]) -> argparse.Namespace | None:
    """The report options of a command line that did not parse; None if they cannot be read."""
    lenient = _Parser(add_help=False)
    lenient.add_argument("--report", type=Path, default=Path(DEFAULT_REPORT))
    lenient.add_argument("--sarif", type=Path)
    lenient.add_argument("--junit", type=Path)
    lenient.add_argument("--workspace", type=Path, default=Path())
    lenient.add_argument("--policy", type=Path)
    try:
        place, _ = lenient.parse_known_args(argv)
    except CommandLineError:
        return None
    return place


def _command_line_error(error: CommandLineError, argv: list[str]) -> int:
    """argparse's usage and message on stderr, and (check, merge) the report, as README says.

    CI reads the JSON report after a failed step; a typo in the workflow's command line
    must say so there too, not leave the previous run's report in place.
    """
    sys.stderr.write(error.parser.format_usage())
    message = f"{error.parser.prog}: error: {error}"
    print(plain_lines(message), file=sys.stderr)
    if not error.parser.prog.endswith((" check", " merge")):
        return EXIT_USAGE
    place = _report_place(argv)
    if place is None:
        return EXIT_USAGE
    outputs = _outputs(place)
    options = CheckOptions(policy=_policy_path(place), workspace=place.workspace, outputs=outputs)
    problems = output_path_problems(
        outputs,
        policy=options.policy,
        artifacts=artifacts_path(options),
        workspace=options.workspace,
    )
    outcome = usage_outcome([str(error)], options, problems)
    for failure in publish_reports(outcome, outputs):
        print(plain_lines(f"tflite-gate: error: {failure}"), file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """`tflite-gate` console script."""
    arguments = sys.argv[1:] if argv is None else argv
    try:
        args = _parser().parse_args(arguments)
    except CommandLineError as error:
        return _command_line_error(error, arguments)
    if args.command == "explain":
        return _explain(args.rule)
    if args.command == "schema":
        sys.stdout.write(schema_text(args.which))
        return EXIT_PASS
    if args.command == "matrix":
        return _matrix(args)
    if args.command == "suggest":
        return _suggest(args)
    if args.command == "init":
        with cancel.signals_handled():
            return _init(args)
    if args.command == "merge":
        return _merge(args)
    with cancel.signals_handled():  # SIGTERM/SIGINT: kill the workers, write what finished
        return _check(args)

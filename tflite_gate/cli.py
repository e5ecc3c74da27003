"""Command line: argument parsing, one function per subcommand; `app/` does the rest.

Exit codes (stable, `app/outcome.py` defines them): 0 pass · 1 the gate failed ·
2 usage or policy error · 3 internal error (a bug; a report is still written) ·
4 passed, but a requested report could not be written · 130/143 cancelled by
SIGINT/SIGTERM (the partial report is still written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeAlias

from tflite_gate import __version__
from tflite_gate.app import console
from tflite_gate.app.schema import SchemaName
from tflite_gate.policy.load import DEFAULT_POLICY_FILE
from tflite_gate.report.github import plain_lines
from tflite_gate.support import cancel
from tflite_gate.support.output_paths import DEFAULT_REPORT, Output, report_outputs
from tflite_gate.support.run_options import (
    DEFAULT_CACHE_MAX_MB,
    DEFAULT_MARGIN,
    CheckOptions,
    FailOn,
    margin_text,
    parse_margin,
    split_names,
)


class CommandLineError(Exception):
    """argparse's complaint, raised instead of exiting: `check` still writes its report."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self, message)


Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


def _examples(*lines: str) -> str:
    """An epilog of example command lines, shown under the options as written."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _literal(text: str) -> str:
    """`text` as argparse help shows it: a bare `%` (`100%`) would be read as a format."""
    return text.replace("%", "%%")


Handler = Callable[[argparse.Namespace], int]


def _command(
    commands: Commands,
    name: str,
    handler: Handler,
    *,
    summary: str,
    description: str,
    examples: list[str],
) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it is for and shows how it is called."""
    command = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=_examples(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.set_defaults(handler=handler)
    return command


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
    subcommands = (_add_check, _add_matrix, _add_merge, _add_suggest, _add_init, _add_explain)
    for add in (*subcommands, _add_schema):
        add(commands)
    return parser


def _add_check(commands: Commands) -> None:
    check = _command(
        commands,
        "check",
        _check,
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
    _selection_arguments(check)
    _cache_arguments(check)
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


def _selection_arguments(check: argparse.ArgumentParser) -> None:
    """Which models and runtimes a check covers, and what fails it."""
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


def _cache_arguments(check: argparse.ArgumentParser) -> None:
    """Where converted models go, and what a check may reuse."""
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


def _add_matrix(commands: Commands) -> None:
    matrix = _command(
        commands,
        "matrix",
        _matrix,
        summary="print the strategy.matrix JSON that splits the check over CI jobs",
        description="Print the strategy.matrix JSON that splits a check over CI jobs: one\n"
        "shard per model (or per model and runtime). Each job runs `check --only`\n"
        "(and `--runtime`); `merge` combines their reports.",
        examples=["tflite-gate matrix", "tflite-gate matrix --by runtime"],
    )
    _policy_arguments(matrix)
    matrix.add_argument(
        "--by",
        choices=["model", "runtime"],
        default="model",
        help="one shard per model (default), or per model and runtime",
    )


def _add_merge(commands: Commands) -> None:
    merge = _command(
        commands,
        "merge",
        _merge,
        summary="combine the shard reports of a split check into one report",
        description="Combine the JSON reports of a split check (see `matrix`) into one report,\n"
        "with the verdict and exit code of a whole check; a missing shard is a finding.",
        examples=["tflite-gate merge shards/*.json --report tflite-gate-report.json"],
    )
    merge.add_argument("shards", nargs="+", type=Path, metavar="REPORT")
    _policy_arguments(merge)
    _report_arguments(merge)


def _add_suggest(commands: Commands) -> None:
    suggest = _command(
        commands,
        "suggest",
        _suggest,
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


def _add_init(commands: Commands) -> None:
    init = _command(
        commands,
        "init",
        _init,
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


def _add_explain(commands: Commands) -> None:
    explain = _command(
        commands,
        "explain",
        _explain,
        summary="what a rule means, typical causes, how to fix it, an example",
        description="What a finding's rule means, its typical causes, how to fix it, and an\n"
        "example; without a rule id, every rule with its one-line title.",
        examples=["tflite-gate explain", "tflite-gate explain divergence"],
    )
    explain.add_argument("rule", nargs="?", help="a rule id; without one, every rule is listed")


def _add_schema(commands: Commands) -> None:
    schema = _command(
        commands,
        "schema",
        _schema,
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


def _report_options(args: argparse.Namespace) -> CheckOptions:
    """The options of a command that writes reports (merge, or a check before its own)."""
    return CheckOptions(policy=_policy_path(args), workspace=args.workspace, outputs=_outputs(args))


def _check(args: argparse.Namespace) -> int:
    fail_on: FailOn | None = args.fail_on
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
        outputs=_outputs(args),
        baseline=args.baseline,
    )
    with cancel.signals_handled():  # SIGTERM/SIGINT: kill the workers, write what finished
        return console.check_command(
            options, output_format=args.format, report_name=str(args.report), quiet=args.quiet
        )


def _merge(args: argparse.Namespace) -> int:
    return console.merge_command(
        _report_options(args),
        args.shards,
        output_format=args.format,
        report_name=str(args.report),
    )


def _matrix(args: argparse.Namespace) -> int:
    options = CheckOptions(policy=_policy_path(args), workspace=args.workspace)
    return console.matrix_command(options, args.by)


def _suggest(args: argparse.Namespace) -> int:
    options = CheckOptions(policy=_policy_path(args), workspace=args.workspace)
    return console.suggest_command(options, args.report, args.margin)


def _init(args: argparse.Namespace) -> int:
    from tflite_gate.app.init import InitRequest

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
    with cancel.signals_handled():
        return console.init_command(request, quiet=args.quiet)


def _explain(args: argparse.Namespace) -> int:
    rule: str | None = args.rule
    return console.explain_command(rule)


def _schema(args: argparse.Namespace) -> int:
    which: SchemaName = args.which
    return console.schema_command(which)


def _lenient_report_options(argv: list[str]) -> CheckOptions | None:
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
    return _report_options(place)


def _command_line_error(error: CommandLineError, argv: list[str]) -> int:
    """argparse's usage and message on stderr, and (check, merge) the report, as README says."""
    sys.stderr.write(error.parser.format_usage())
    message = f"{error.parser.prog}: error: {error}"
    print(plain_lines(message), file=sys.stderr)
    writes_report = error.parser.prog.endswith((" check", " merge"))
    options = _lenient_report_options(argv) if writes_report else None
    return console.command_line_error(str(error), options)


def main(argv: list[str] | None = None) -> int:
    """`tflite-gate` console script."""
    arguments = sys.argv[1:] if argv is None else argv
    try:
        args = _parser().parse_args(arguments)
    except CommandLineError as error:
        return _command_line_error(error, arguments)
    handler: Handler = args.handler
    return handler(args)

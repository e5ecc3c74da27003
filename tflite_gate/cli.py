"""Command line: argument parsing and exit codes; nothing else.

Exit codes (stable): 0 pass · 1 the gate failed · 2 usage or policy error ·
3 internal error (a bug; a report is still written) · 4 passed, but a requested
report could not be written · 130/143 cancelled by SIGINT/SIGTERM (the partial
report is still written).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from tflite_gate import __version__, cancel
from tflite_gate.conversion_cache import DEFAULT_MAX_MB
from tflite_gate.gate import (
    EXIT_CANCELLED,
    EXIT_FAIL,
    EXIT_PASS,
    publish_reports,
    run_gate,
)
from tflite_gate.pipeline import CheckOptions, FailOn
from tflite_gate.policy import DEFAULT_POLICY_FILE
from tflite_gate.report.github import (
    plain_line,
    plain_lines,
    report_to_github,
    stop_commands,
    workflow_command,
)
from tflite_gate.report.json_report import report_schema
from tflite_gate.report.outputs import report_outputs
from tflite_gate.report.terminal import render

DEFAULT_REPORT = "tflite-gate-report.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tflite-gate",
        description="CI gate for TensorFlow → TFLite (LiteRT) conversion.",
    )
    parser.add_argument("--version", action="version", version=f"tflite-gate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="convert, inspect, run and check the models")
    check.add_argument("--policy", type=Path, help=f"default: WORKSPACE/{DEFAULT_POLICY_FILE}")
    check.add_argument("--workspace", type=Path, default=Path(), help="default: .")
    check.add_argument(
        "--report",
        type=Path,
        default=Path(DEFAULT_REPORT),
        help=f"JSON report path (default: {DEFAULT_REPORT})",
    )
    check.add_argument("--sarif", type=Path, help="also write a SARIF 2.1.0 report here")
    check.add_argument("--junit", type=Path, help="also write a JUnit XML report here")
    check.add_argument(
        "--format",
        choices=["text", "github"],
        default="text",
        help="github: also print workflow-command annotations and write the job summary "
        "and outputs when GITHUB_STEP_SUMMARY / GITHUB_OUTPUT are set",
    )
    check.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="MODEL",
        help="check only these models (repeat, or separate with commas)",
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
        default=DEFAULT_MAX_MB,
        metavar="MB",
        help="least recently used conversions are dropped beyond this size "
        f"(default: {DEFAULT_MAX_MB})",
    )
    check.add_argument("--quiet", action="store_true", help="no progress lines")
    commands.add_parser("schema", help="print the JSON Schema of the report")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, got {text!r}")
    return value


def _progress(quiet: bool) -> Callable[[str], None]:
    def emit(message: str) -> None:
        if not quiet:  # the runner reads stderr for workflow commands too, in every format
            print(plain_line(message), file=sys.stderr, flush=True)

    return emit


def split_names(values: list[str]) -> list[str]:
    """`--only a,b --only c` (or newline-separated, as Action inputs come) → [a, b, c]."""
    return [
        name.strip()
        for value in values
        for name in value.replace("\n", ",").split(",")
        if name.strip()
    ]


def _check(args: argparse.Namespace) -> int:
    workspace: Path = args.workspace
    fail_on: FailOn | None = args.fail_on
    outputs = report_outputs(
        json_path=args.report,
        sarif_path=args.sarif,
        junit_path=args.junit,
        names={"json": "--report", "sarif": "--sarif", "junit": "--junit"},
    )
    options = CheckOptions(
        policy=args.policy if args.policy is not None else workspace / DEFAULT_POLICY_FILE,
        workspace=workspace,
        only=split_names(args.only),
        artifacts=args.artifacts,
        cache_dir=args.cache_dir,
        cache=args.cache,
        cache_max_mb=args.cache_max_mb,
        fail_on=fail_on,
        outputs=outputs,
    )
    outcome = run_gate(options, _progress(args.quiet))
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
    summary = render(report, str(args.report)) if shows_summary else ""
    if args.format == "github":
        if summary:  # untrusted text (messages, op names): never read as workflow commands
            stop_commands(summary.splitlines(), sys.stdout)
        report_to_github(report, report_path=str(args.report), stream=sys.stdout, env=os.environ)
        for failure in failures:
            print(workflow_command("warning", failure, {"title": "tflite-gate output"}))
    elif summary:  # plain text, but a GitHub runner still reads it for commands
        print(plain_lines(summary))
    return outcome.exit_code


def main(argv: list[str] | None = None) -> int:
    """`tflite-gate` console script."""
    args = _parser().parse_args(argv)
    if args.command == "schema":
        print(json.dumps(report_schema(), indent=2))
        return EXIT_PASS
    with cancel.signals_handled():  # SIGTERM/SIGINT: kill the workers, write what finished
        return _check(args)

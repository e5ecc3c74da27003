"""Command line: argument parsing and exit codes; nothing else.

Exit codes (stable): 0 pass · 1 the gate failed · 2 usage or policy error ·
3 internal error (a bug; a report is still written).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from tflite_gate import __version__
from tflite_gate.findings import Location, make_finding
from tflite_gate.pipeline import CheckOptions, FailOn, UsageError, new_report, run_check
from tflite_gate.policy import DEFAULT_POLICY_FILE, PolicyError, PolicyIssue, display_path_for
from tflite_gate.report.json_report import report_schema, write_json_report
from tflite_gate.report.model import Report
from tflite_gate.report.terminal import render

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
DEFAULT_REPORT = "tflite-gate-report.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tflite-gate",
        description="CI gate for TensorFlow → TFLite (LiteRT) conversion.",
    )
    parser.add_argument("--version", action="version", version=f"tflite-gate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="convert, inspect and check the policy's models")
    check.add_argument("--policy", type=Path, help=f"default: WORKSPACE/{DEFAULT_POLICY_FILE}")
    check.add_argument("--workspace", type=Path, default=Path(), help="default: .")
    check.add_argument(
        "--report",
        type=Path,
        default=Path(DEFAULT_REPORT),
        help=f"JSON report path (default: {DEFAULT_REPORT})",
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
        help="where runtime environments are cached (default: $TFLITE_GATE_CACHE or "
        "~/.cache/tflite-gate)",
    )
    check.add_argument("--quiet", action="store_true", help="no progress lines")
    commands.add_parser("schema", help="print the JSON Schema of the report")
    return parser


def _progress(quiet: bool) -> Callable[[str], None]:
    def emit(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return emit


def _policy_error_report(error: PolicyError) -> Report:
    report = new_report()
    report.add(
        [
            make_finding(
                "policy-invalid",
                issue.message,
                location=None if issue.line is None else _issue_location(issue),
            )
            for issue in error.issues
        ]
    )
    report.finalize("error")
    return report


def _issue_location(issue: PolicyIssue) -> Location:
    return Location(path=issue.path, line=issue.line, column=issue.column)


def _check(args: argparse.Namespace) -> int:
    workspace: Path = args.workspace
    if not workspace.is_dir():
        print(f"tflite-gate: error: workspace {workspace} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    policy = args.policy if args.policy is not None else workspace / DEFAULT_POLICY_FILE
    only = [name.strip() for value in args.only for name in value.split(",") if name.strip()]
    fail_on: FailOn | None = args.fail_on
    options = CheckOptions(
        policy=policy,
        workspace=workspace,
        only=only,
        artifacts=args.artifacts,
        cache_dir=args.cache_dir,
        fail_on=fail_on,
    )
    try:
        report = run_check(options, _progress(args.quiet))
    except PolicyError as error:
        for issue in error.issues:
            print(f"{issue}", file=sys.stderr)
        write_json_report(_policy_error_report(error), args.report)
        return EXIT_USAGE
    except UsageError as error:
        print(f"tflite-gate: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # a bug: still leave a report behind
        report = new_report()
        report.policy = display_path_for(policy, workspace)
        report.internal_error = "".join(traceback.format_exception(error))
        report.add([make_finding("internal-error", f"{type(error).__name__}: {error}")])
        report.finalize(args.fail_on or "error")
        write_json_report(report, args.report)
        print(
            f"tflite-gate: internal error: {type(error).__name__}: {error}\n"
            f"This is a bug; the traceback is in {args.report}.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    write_json_report(report, args.report)
    print(render(report, str(args.report)))
    return EXIT_FAIL if report.verdict == "fail" else EXIT_PASS


def main(argv: list[str] | None = None) -> int:
    """`tflite-gate` console script."""
    args = _parser().parse_args(argv)
    if args.command == "schema":
        print(json.dumps(report_schema(), indent=2))
        return EXIT_PASS
    return _check(args)

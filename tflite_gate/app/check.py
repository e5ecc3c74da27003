"""`check`: the engine's front door, shared by the CLI and the GitHub Action.

It runs the pipeline and turns every way a run can end into a Report and a stable
exit code (`app/outcome.py` lists them): bad input is answered before any model
work, a bug still yields a report, and a cancelled run reports what finished.
"""

from __future__ import annotations

import time

from tflite_gate.app.outcome import (
    EXIT_FAIL,
    EXIT_INTERNAL,
    EXIT_PASS,
    GateOutcome,
    exit_code_of_signal,
    internal_error_message,
    internal_error_outcome,
    policy_error_outcome,
    usage_outcome,
)
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import display_path_for, load_policy
from tflite_gate.report.model import Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding
from tflite_gate.support.cancel import Cancelled, cancellable
from tflite_gate.support.layout import UnusablePlace
from tflite_gate.support.output_paths import output_path_problems
from tflite_gate.support.run_options import (
    CheckOptions,
    OutputPathError,
    Progress,
    UsageError,
    artifacts_path,
)


def refused_outputs(options: CheckOptions) -> GateOutcome | None:
    """The usage error of outputs that cannot be written where asked; None if all can."""
    problems = output_path_problems(
        options.outputs,
        policy=options.policy,
        artifacts=artifacts_path(options),
        workspace=options.workspace,
    )
    if not problems:
        return None
    return usage_outcome([problem.message for problem in problems], options, problems)


def _unusable_places(options: CheckOptions) -> GateOutcome | None:
    """The usage error of a workspace or cache that is not a directory; None if both are."""
    if not options.workspace.is_dir():
        message = f"give {options.names.workspace} an existing directory: {options.workspace}"
        return usage_outcome([f"{message} is not one"], options)
    cache = options.cache_dir
    if cache is not None and cache.exists() and not cache.is_dir():
        shown = display_path_for(cache, options.workspace)
        message = f"give {options.names.cache_dir} a directory: {shown} is not one"
        return usage_outcome([message], options)
    return None


def _cancelled_outcome(cancelled: Cancelled, options: CheckOptions) -> GateOutcome:
    report = cancelled.partial if isinstance(cancelled.partial, Report) else None
    if report is None:  # before the pipeline had a report, or after it returned one
        report = new_report()
        report.policy = display_path_for(options.policy, options.workspace)
        report.add([make_finding("cancelled", f"the run was cancelled by {cancelled.signal_name}")])
        report.stopped = "cancelled"
        report.finalize(options.fail_on or "error")
    return GateOutcome(
        report,
        exit_code_of_signal(cancelled.signal_name),
        [f"cancelled by {cancelled.signal_name}: the report holds what finished"],
    )


def _checked(report: Report) -> GateOutcome:
    """The outcome of a run that checked the models: pass, fail, or a model's bug."""
    if report.internal_error is not None:  # one model's check broke; the others' stand
        bugs = [f.message for f in report.findings if f.rule == "internal-error"]
        return GateOutcome(report, EXIT_INTERNAL, [internal_error_message(m) for m in bugs])
    return GateOutcome(report, EXIT_FAIL if report.verdict == "fail" else EXIT_PASS)


def run_gate(options: CheckOptions, progress: Progress) -> GateOutcome:
    """Run the gate; never raises for bad input, and a bug still yields a report.

    Cancellation (`Cancelled`, raised by the signal handler of `tflite_gate.support.cancel`
    while inside `cancellable()`) also ends in a report, with its own exit code.
    """
    refused = refused_outputs(options) or _unusable_places(options)
    if refused is not None:
        return refused
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
        return policy_error_outcome(error)
    except OutputPathError as error:
        return usage_outcome(str(error).splitlines(), options, error.problems)
    except (UsageError, UnusablePlace) as error:
        return usage_outcome([str(error)], options)
    except Exception as error:  # a bug in tflite-gate outside any model: report it
        return internal_error_outcome(error, options)
    return _checked(report)

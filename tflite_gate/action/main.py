"""The GitHub Action's door: `INPUT_*` → the same engine as the CLI → the same reporters.

`action/inputs.py` reads and checks the inputs; the command runs as the CLI's does;
`app/publish.py` publishes the outcome with the Action's audience (the log, the
runner's files, the sticky comment). Annotation paths are made relative to the
repository root so they land on the right file of the pull request.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from tflite_gate.action.handover import hand_over
from tflite_gate.action.inputs import (
    ACTION_NAMES,
    ActionInputs,
    InputError,
    read_inputs,
    report_place,
    repository_root,
)
from tflite_gate.action.sticky_comment import CommentRequest, StickyComment
from tflite_gate.app.check import refused_outputs, run_gate
from tflite_gate.app.outcome import (
    EXIT_PASS,
    EXIT_USAGE,
    GateOutcome,
    exit_code_of_signal,
    usage_outcome,
)
from tflite_gate.app.publish import Audience, CommentFactory, publish
from tflite_gate.app.shards import plan_matrix, run_merge
from tflite_gate.report.github import (
    choose_stop_token,
    plain_line,
    stop_commands,
    workflow_command,
    write_outputs,
)
from tflite_gate.support.cancel import Cancelled, signals_handled
from tflite_gate.support.output_paths import DEFAULT_REPORT, Output, report_outputs
from tflite_gate.support.run_options import CheckOptions, Progress, ResultLine


def main(env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the gate as a GitHub Action step."""
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    started = time.time()
    try:
        with signals_handled():  # a cancelled job still closes its blocks and writes outputs
            return _run(env, out)
    finally:  # on every way out: what the run wrote goes to the checkout's owner
        repository = repository_root(env)
        home = env.get("HOME")
        roots = [repository, *([Path(home)] if home else [])]
        hand_over(roots, owner_of=repository, since=started - 1)


def _run(env: Mapping[str, str], out: TextIO) -> int:
    try:
        inputs = read_inputs(env)
    except InputError as error:
        out.write(workflow_command("error", str(error), {"title": "tflite-gate input"}) + "\n")
        _input_error_report(env, str(error), out)
        return EXIT_USAGE
    if inputs.token:
        out.write(workflow_command("add-mask", inputs.token) + "\n")
    outputs = report_outputs(
        json_path=inputs.report,
        sarif_path=inputs.sarif,
        junit_path=inputs.junit,
        names={"json": "report", "sarif": "sarif", "junit": "junit"},
    )
    options = _options(inputs, outputs)
    if inputs.command == "matrix":
        planned = plan_matrix(options, inputs.split_by)
        if isinstance(planned, GateOutcome):
            return _publish(planned, outputs, inputs, env, out)
        return _matrix_output(planned, env, out)
    if inputs.command == "merge":
        return _publish(run_merge(options, inputs.reports), outputs, inputs, env, out)
    # Progress lines carry model names and runtime messages: no workflow commands in them.
    token = choose_stop_token()
    out.write(f"::group::tflite-gate progress\n::stop-commands::{token}\n")
    outcome = run_gate(options, _progress(str(repository_root(env)), out))
    out.write(f"::{token}::\n::endgroup::\n")
    return _publish(outcome, outputs, inputs, env, out)


def _options(inputs: ActionInputs, outputs: list[Output]) -> CheckOptions:
    return CheckOptions(
        policy=inputs.policy,
        workspace=inputs.workspace,
        only=inputs.only,
        runtimes=inputs.runtimes,
        jobs=inputs.jobs,
        baseline=inputs.baseline,
        fail_on=inputs.fail_on,
        cache_dir=inputs.cache_dir,
        cache=inputs.cache,
        outputs=outputs,
        names=ACTION_NAMES,
    )


def _progress(repository: str, out: TextIO) -> Progress:
    """Progress lines in the step's log, repository paths made relative."""

    def say(message: str) -> None:
        if isinstance(message, ResultLine):  # the summary below says it once
            return
        shown = message.replace(f"{repository}/", "")
        out.write(f"{plain_line(shown)}\n")
        out.flush()

    return say


def _matrix_output(entries: list[dict[str, str]], env: Mapping[str, str], out: TextIO) -> int:
    """The `matrix` output, for `strategy.matrix: ${{ fromJSON(...) }}` in the next job."""
    matrix = json.dumps({"include": entries})
    out.write(f"tflite-gate: {len(entries)} shard(s)\n")
    output_path = env.get("GITHUB_OUTPUT")
    if output_path:
        write_outputs(output_path, {"matrix": matrix})
    stop_commands([matrix], out)
    return EXIT_PASS


def _report_path(inputs: ActionInputs) -> str:
    """The JSON report's path from the repository root, as users see it."""
    relative = inputs.report.relative_to(inputs.workspace).as_posix()
    return f"{inputs.prefix}/{relative}" if inputs.prefix else relative


def _comment(inputs: ActionInputs, env: Mapping[str, str], out: TextIO) -> CommentFactory | None:
    """The sticky comment, when the inputs ask for one and a token can write it."""
    if not inputs.comment or not inputs.token:
        return None
    request = CommentRequest(inputs.token, env, inputs.publish_timeout_s)
    return lambda report_path: StickyComment(request, out, report_path)


def _publish(
    outcome: GateOutcome,
    outputs: list[Output],
    inputs: ActionInputs,
    env: Mapping[str, str],
    out: TextIO,
) -> int:
    """Reports, log summary, annotations, outputs, job summary and the comment."""
    outcome.report = outcome.report.with_paths_relative_to(str(repository_root(env)))
    # Partial results must not replace a complete comment.
    comment = _comment(inputs, env, out) if outcome.report.verdict != "cancelled" else None
    audience = Audience(
        report_name=_report_path(inputs),
        summary=out,
        github=out,
        env=env,
        repository_prefix=inputs.prefix,  # code scanning and annotations: repository paths
        comment=comment,
    )
    try:
        publish(outcome, outputs, audience)
    except Cancelled as cancelled:
        return exit_code_of_signal(cancelled.signal_name)
    finally:
        out.flush()
    return outcome.exit_code


def _input_error_report(env: Mapping[str, str], message: str, out: TextIO) -> None:
    """Report, outputs and summary of a run stopped by a bad input (verdict `error`).

    The outputs and the summary are always written: a later step branching on
    `verdict` must see `error`, not an empty string. The JSON report is written too
    unless an input that places it (working-directory, report, policy) is the bad
    one or its path would overwrite something; then the annotation alone says why.
    """
    repository = repository_root(env)
    place = report_place(env)
    workspace, report_path, policy = place or (repository, repository / DEFAULT_REPORT, repository)
    outputs = report_outputs(
        json_path=report_path, sarif_path=None, junit_path=None, names={"json": "report"}
    )
    options = CheckOptions(policy=policy, workspace=workspace, outputs=outputs, names=ACTION_NAMES)
    usable = place is not None and workspace.is_dir() and refused_outputs(options) is None
    audience = Audience(
        report_name=_relative_to(repository, report_path),
        github=out,
        annotate=False,  # the input's own error annotation says it
        env=env,
    )
    publish(usage_outcome([message], options), outputs if usable else [], audience)


def _relative_to(repository: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(repository.resolve()).as_posix()
    except ValueError:
        return str(path)

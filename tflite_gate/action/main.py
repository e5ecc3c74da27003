"""The GitHub Action's door: INPUT_* → the same engine as the CLI → the GitHub reporter.

The runner passes inputs as `INPUT_<NAME>` with the name upper-cased and spaces
(only) turned into `_`, so `fail-on` arrives as `INPUT_FAIL-ON`; `required:` is
not enforced, so every input is validated here. The workspace is the checked-out
repository (`GITHUB_WORKSPACE`); paths in the inputs are relative to
`working-directory` inside it, and annotation paths are made relative to the
repository root so they land on the right file of the pull request.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from tflite_gate.action.comment import DEFAULT_DEADLINE_S, event_pull_request, upsert_comment
from tflite_gate.action.handover import hand_over
from tflite_gate.app.gate import (
    EXIT_CANCELLED,
    EXIT_PASS,
    EXIT_SIGTERM,
    EXIT_USAGE,
    GateOutcome,
    plan_matrix,
    publish_reports,
    run_gate,
    run_merge,
    usage_outcome,
)
from tflite_gate.app.shards import SplitBy
from tflite_gate.cli import split_names
from tflite_gate.policy.load import DEFAULT_POLICY_FILE
from tflite_gate.report.github import (
    choose_stop_token,
    escape_data,
    escape_property,
    plain_line,
    report_to_github,
    runner_outputs,
    stop_commands,
    workflow_command,
    write_outputs,
)
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import Report
from tflite_gate.report.outputs import Output, output_path_problems, report_outputs, write_each
from tflite_gate.report.terminal import render
from tflite_gate.support.cancel import Cancelled, cancellable, signals_handled
from tflite_gate.support.run_options import (
    CheckOptions,
    FailOn,
    OptionNames,
    ResultLine,
    artifacts_path,
)

COMMENT_LIMIT = 65_536
MAX_PUBLISH_TIMEOUT_S = 3600.0
DEFAULT_REPORT = "tflite-gate-report.json"
# Inside the workspace, so that `actions/cache` on the runner can keep it between jobs
# (the container's home is wiped after every job).
DEFAULT_CACHE_DIR = ".tflite-gate/cache"
# How a workflow author sets each option: messages name these, never CLI flags.
ACTION_NAMES = OptionNames(
    workspace="the `working-directory` input",
    policy="the `policy` input",
    only="the `only` input",
    artifacts=None,
    cache_dir="the `cache-dir` input",
    no_cache="`cache: false`",
    baseline="the `baseline` input",
)


Command = Literal["check", "matrix", "merge"]
COMMANDS: dict[str, Command] = {"check": "check", "matrix": "matrix", "merge": "merge"}


class InputError(Exception):
    """An action input with a value the action cannot use."""


@dataclass(frozen=True)
class ActionInputs:
    workspace: Path
    prefix: str  # working-directory relative to the repository root ("" for the root)
    policy: Path
    report: Path
    sarif: Path | None
    junit: Path | None
    fail_on: FailOn | None
    comment: bool
    token: str
    only: list[str]
    cache_dir: Path
    cache: bool = True
    command: Command = "check"
    runtimes: list[str] = field(default_factory=list)  # check: run only these (a shard)
    split_by: SplitBy = "model"
    reports: list[Path] = field(default_factory=list)  # merge: the shard reports
    jobs: int | None = None
    baseline: Path | None = None
    publish_timeout_s: float = DEFAULT_DEADLINE_S


def _repository(env: Mapping[str, str]) -> Path:
    """The checkout: `GITHUB_WORKSPACE` (the runner mounts it at /github/workspace)."""
    return Path(env.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()


def _input(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(f"INPUT_{name.replace(' ', '_').upper()}", default).strip()


def _inside(root: Path, relative: str, what: str) -> Path:
    """`relative` under `root`; absolute paths or `..` that leave the repository are refused."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise InputError(f"{what} {relative!r} is outside the repository")
    return candidate


def _token(env: Mapping[str, str]) -> str:
    """The `github-token` input; refused (without echoing it) unless printable ASCII.

    A token is printed once, in `::add-mask::`, and the runner masks exactly the
    unescaped value of that one line: a line break in it would end the command and
    turn the rest into new commands, and a masked value spanning lines never matches
    a log line. Real GitHub tokens are printable ASCII, so anything else is a mistake.
    """
    token = _input(env, "github-token")
    for char in token:
        if not "!" <= char <= "~":
            what = "a control character" if char.isascii() else "a non-ASCII character"
            if char in " \t":
                what = "white space"
            raise InputError(
                f"github-token contains {what}; pass the token alone, e.g. "
                "github-token: ${{ secrets.GITHUB_TOKEN }} (the value is not shown here)"
            )
    return token


def read_inputs(env: Mapping[str, str]) -> ActionInputs:
    """Validate every input; a bad value is an error naming the input and the choices."""
    repository = Path(env.get("GITHUB_WORKSPACE") or Path.cwd())
    workdir = _input(env, "working-directory", ".") or "."
    workspace = _inside(repository, workdir, "working-directory")
    if not workspace.is_dir():
        raise InputError(f"working-directory {workdir!r} is not a directory in the repository")
    fail_on_text = _input(env, "fail-on")
    choices: dict[str, FailOn | None] = {
        "": None,
        "error": "error",
        "warning": "warning",
        "never": "never",
    }
    if fail_on_text not in choices:
        raise InputError(f"fail-on must be error, warning or never, got {fail_on_text!r}")
    comment = _input(env, "comment", "update") or "update"
    if comment not in {"update", "off"}:
        raise InputError(f"comment must be update or off, got {comment!r}")
    cache = _input(env, "cache", "true") or "true"
    if cache not in {"true", "false"}:
        raise InputError(f"cache must be true or false, got {cache!r}")
    command = _input(env, "command", "check") or "check"
    if command not in COMMANDS:
        raise InputError(f"command must be check, matrix or merge, got {command!r}")
    jobs_text = _input(env, "jobs")
    if jobs_text and not (jobs_text.isdigit() and int(jobs_text) > 0):
        raise InputError(f"jobs must be a whole number above 0 or empty, got {jobs_text!r}")
    publish_timeout = _publish_timeout(_input(env, "publish-timeout"))
    split_by = _input(env, "split-by", "model") or "model"
    if split_by not in {"model", "runtime"}:
        raise InputError(f"split-by must be model or runtime, got {split_by!r}")

    def optional(name: str) -> Path | None:
        value = _input(env, name)
        return _inside(workspace, value, name) if value else None

    prefix = workspace.relative_to(repository.resolve()).as_posix()
    report = _inside(workspace, _input(env, "report") or DEFAULT_REPORT, "report")
    reports = (
        _shard_reports(workspace, _input(env, "reports"), report) if command == "merge" else []
    )
    return ActionInputs(
        workspace=workspace,
        prefix="" if prefix == "." else prefix,
        policy=_inside(workspace, _input(env, "policy") or DEFAULT_POLICY_FILE, "policy"),
        report=report,
        sarif=optional("sarif"),
        junit=optional("junit"),
        fail_on=choices[fail_on_text],
        comment=comment == "update",
        token=_token(env),
        only=split_names([_input(env, "only")]),
        cache_dir=_inside(workspace, _input(env, "cache-dir") or DEFAULT_CACHE_DIR, "cache-dir"),
        cache=cache == "true",
        command=COMMANDS[command],
        runtimes=[line.strip() for line in _input(env, "runtime").splitlines() if line.strip()],
        split_by="runtime" if split_by == "runtime" else "model",
        reports=reports,
        jobs=int(jobs_text) if jobs_text else None,
        baseline=optional("baseline"),
        publish_timeout_s=publish_timeout,
    )


def _publish_timeout(text: str) -> float:
    """Seconds the comment exchange may take in all (empty: the default)."""
    if not text:
        return DEFAULT_DEADLINE_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_PUBLISH_TIMEOUT_S:
        raise InputError(
            f"publish-timeout must be seconds above 0 and at most {MAX_PUBLISH_TIMEOUT_S:g}, "
            f"or empty for {DEFAULT_DEADLINE_S:g}; got {text!r}"
        )
    return seconds


def _shard_reports(workspace: Path, patterns: str, report: Path) -> list[Path]:
    """The files the `reports` patterns match in the workspace, the merged report excepted."""
    found: list[Path] = []
    written = []
    for pattern in (line.strip() for line in patterns.splitlines()):
        if not pattern:
            continue
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise InputError(f"reports pattern {pattern!r} must stay inside working-directory")
        written.append(pattern)
        for path in sorted(workspace.glob(pattern)):
            inside = path.resolve().is_relative_to(workspace.resolve())
            if inside and path.is_file() and path.resolve() != report.resolve():
                found.append(path)
    if not written:
        raise InputError("command merge needs the shard reports: set reports, e.g. shards/*.json")
    if not found:
        raise InputError(f"reports {', '.join(written)} match no file in working-directory")
    return list(dict.fromkeys(found))


def _report_path(inputs: ActionInputs) -> str:
    """The JSON report's path from the repository root, as users see it."""
    relative = inputs.report.relative_to(inputs.workspace).as_posix()
    return f"{inputs.prefix}/{relative}" if inputs.prefix else relative


def _command(stream: TextIO, name: str, message: str, **properties: str) -> None:
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    stream.write(f"::{name}{' ' + props if props else ''}::{escape_data(message)}\n")


def _comment(
    report: Report, inputs: ActionInputs, report_path: str, env: Mapping[str, str], out: TextIO
) -> str | None:
    """The sticky PR comment; any failure degrades to a notice, never to a red build.

    The exchange has one deadline (`publish-timeout`), and a signal (the job is being
    cancelled) ends the wait at once: the signal's name is returned then.
    """
    if not inputs.comment or not inputs.token:
        return None
    event_path = env.get("GITHUB_EVENT_PATH", "")
    if not event_path:  # not started by a workflow event: there is no pull request
        return None
    number, problem = event_pull_request(event_path, env.get("GITHUB_EVENT_NAME", ""))
    if problem:
        notice = f"tflite-gate: sticky comment skipped: {problem}"
        _command(out, "notice", notice, title="tflite-gate comment")
        return None
    repository = env.get("GITHUB_REPOSITORY", "")
    if number is None or not repository:
        return None
    out.flush()  # everything so far is in the log, whatever happens to the exchange
    try:
        with cancellable():
            outcome = upsert_comment(
                render_markdown(
                    report, max_chars=COMMENT_LIMIT - 200, report_path=report_path or None
                ),
                api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
                repository=repository,
                issue_number=number,
                token=inputs.token,
                deadline_s=inputs.publish_timeout_s,
            )
    except Cancelled as cancelled:
        notice = (
            f"tflite-gate: sticky comment not written: the job was cancelled "
            f"({cancelled.signal_name}) while it was being posted"
        )
        _command(out, "notice", notice, title="tflite-gate comment")
        return cancelled.signal_name
    if outcome.action in {"skipped", "failed"}:
        _command(out, "notice", f"tflite-gate: {outcome.message}", title="tflite-gate comment")
    else:
        out.write(f"tflite-gate: pull request comment {outcome.action}\n")
    return None


def _report_place(env: Mapping[str, str]) -> tuple[Path, Path, Path] | None:
    """Workspace, report and policy paths from the inputs; None if one of them is bad."""
    repository = _repository(env)
    try:
        workspace = _inside(repository, _input(env, "working-directory", ".") or ".", "")
        report = _inside(workspace, _input(env, "report") or DEFAULT_REPORT, "")
        policy = _inside(workspace, _input(env, "policy") or DEFAULT_POLICY_FILE, "")
    except InputError:
        return None
    return workspace, report, policy


def _input_error_report(env: Mapping[str, str], message: str, out: TextIO) -> None:
    """Report, outputs and summary of a run stopped by a bad input (verdict `error`).

    The outputs and the summary are always written: a later step branching on
    `verdict` must see `error`, not an empty string. The JSON report is written too
    unless an input that places it (working-directory, report, policy) is the bad
    one or its path would overwrite something; then the annotation alone says why.
    """
    repository = _repository(env)
    place = _report_place(env)
    workspace, report_path, policy = place or (repository, repository / DEFAULT_REPORT, repository)
    [output] = report_outputs(
        json_path=report_path, sarif_path=None, junit_path=None, names={"json": "report"}
    )
    options = CheckOptions(policy=policy, workspace=workspace, outputs=[output], names=ACTION_NAMES)
    usable = (
        place is not None
        and workspace.is_dir()
        and not output_path_problems(
            [output], policy=policy, artifacts=artifacts_path(options), workspace=workspace
        )
    )
    outcome = usage_outcome([message], options)
    if usable:
        for failure in publish_reports(outcome, [output]):
            _command(out, "warning", failure, title="tflite-gate output")
    written = usable and outcome.wrote(output)
    shown = _relative_to(repository, report_path) if written else ""
    for problem in write_each(outcome.report, runner_outputs(shown, env)):
        _command(out, "warning", problem.message, title="tflite-gate")


def _relative_to(repository: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(repository.resolve()).as_posix()
    except ValueError:
        return str(path)


def main(env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    """Run the gate as a GitHub Action step."""
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    started = time.time()
    try:
        with signals_handled():  # a cancelled job still closes its blocks and writes outputs
            return _run(env, out)
    finally:  # on every way out: what the run wrote goes to the checkout's owner
        repository = _repository(env)
        home = env.get("HOME")
        roots = [repository, *([Path(home)] if home else [])]
        hand_over(roots, owner_of=repository, since=started - 1)


def _run(env: Mapping[str, str], out: TextIO) -> int:
    try:
        inputs = read_inputs(env)
    except InputError as error:
        _command(out, "error", str(error), title="tflite-gate input")
        _input_error_report(env, str(error), out)
        return EXIT_USAGE
    if inputs.token:
        out.write(workflow_command("add-mask", inputs.token) + "\n")
    outputs = report_outputs(
        json_path=inputs.report,
        sarif_path=inputs.sarif,
        junit_path=inputs.junit,
        names={"json": "report", "sarif": "sarif", "junit": "junit"},
        sarif_prefix=inputs.prefix,  # code scanning reads paths from the repository root
    )
    options = CheckOptions(
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

    repository = str(_repository(env))

    def progress(message: str) -> None:
        if isinstance(message, ResultLine):  # the summary below says it once
            return
        shown = message.replace(f"{repository}/", "")
        out.write(f"{plain_line(shown)}\n")
        out.flush()

    if inputs.command == "matrix":
        planned = plan_matrix(options, inputs.split_by)
        if isinstance(planned, GateOutcome):
            return _publish(planned, outputs, inputs, env, out)
        return _matrix_output(planned, env, out)
    if inputs.command == "merge":
        merged = run_merge(options, inputs.reports)
        return _publish(merged, outputs, inputs, env, out)
    # Progress lines carry model names and runtime messages: no workflow commands in them.
    token = choose_stop_token()
    out.write(f"::group::tflite-gate progress\n::stop-commands::{token}\n")
    outcome = run_gate(options, progress)
    out.write(f"::{token}::\n::endgroup::\n")
    return _publish(outcome, outputs, inputs, env, out)


def _matrix_output(entries: list[dict[str, str]], env: Mapping[str, str], out: TextIO) -> int:
    """The `matrix` output, for `strategy.matrix: ${{ fromJSON(...) }}` in the next job."""
    matrix = json.dumps({"include": entries})
    out.write(f"tflite-gate: {len(entries)} shard(s)\n")
    output_path = env.get("GITHUB_OUTPUT")
    if output_path:
        write_outputs(output_path, {"matrix": matrix})
    stop_commands([matrix], out)
    return EXIT_PASS


def _publish(
    outcome: GateOutcome,
    outputs: list[Output],
    inputs: ActionInputs,
    env: Mapping[str, str],
    out: TextIO,
) -> int:
    """Reports, log summary, annotations, outputs, job summary and the comment."""
    outcome.report = outcome.report.with_paths_relative_to(str(_repository(env)))
    report = outcome.report
    failures = publish_reports(outcome, outputs)
    written = all(outcome.wrote(output) for output in outputs if output.path == inputs.report)
    report_path = _report_path(inputs) if written else ""
    stop_commands(render(report, report_path or "not written").splitlines(), out)
    repository_view = report.with_path_prefix(inputs.prefix)
    report_to_github(repository_view, report_path=report_path, stream=out, env=env)
    for failure in failures:
        _command(out, "warning", failure, title="tflite-gate output")
    cancelled_by = None
    if report.verdict != "cancelled":  # partial results must not replace a complete comment
        cancelled_by = _comment(repository_view, inputs, report_path, env, out)
    out.flush()
    if cancelled_by is not None:
        return EXIT_CANCELLED.get(cancelled_by, EXIT_SIGTERM)
    return outcome.exit_code

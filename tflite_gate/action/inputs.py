"""The Action's inputs: `INPUT_*` read, validated, and turned into paths inside the checkout.

The runner passes inputs as `INPUT_<NAME>` with the name upper-cased and spaces
(only) turned into `_`, so `fail-on` arrives as `INPUT_FAIL-ON`; `required:` is
not enforced, so every input is validated here, and a bad value is an error that
names the input and the choices. The workspace is the checked-out repository
(`GITHUB_WORKSPACE`); paths in the inputs are relative to `working-directory`
inside it, and none may leave it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tflite_gate.action.comment import DEFAULT_DEADLINE_S
from tflite_gate.app.shards import SplitBy
from tflite_gate.policy.load import DEFAULT_POLICY_FILE
from tflite_gate.support.output_paths import DEFAULT_REPORT
from tflite_gate.support.run_options import FailOn, OptionNames, split_names

MAX_PUBLISH_TIMEOUT_S = 3600.0
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
FAIL_ON: dict[str, FailOn | None] = {
    "": None,
    "error": "error",
    "warning": "warning",
    "never": "never",
}
SPLITS: dict[str, SplitBy] = {"model": "model", "runtime": "runtime"}


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


def repository_root(env: Mapping[str, str]) -> Path:
    """The checkout: `GITHUB_WORKSPACE` (the runner mounts it at /github/workspace)."""
    return Path(env.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()


def input_value(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(f"INPUT_{name.replace(' ', '_').upper()}", default).strip()


def inside(root: Path, relative: str, what: str) -> Path:
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
    token = input_value(env, "github-token")
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


def _either(choices: Sequence[str]) -> str:
    """`a, b or c`."""
    return f"{', '.join(choices[:-1])} or {choices[-1]}"


def _choice(env: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    """The input's value: one of `choices`, or `default` when it is empty."""
    value = input_value(env, name, default) or default
    if value not in (*choices, default):
        raise InputError(f"{name} must be {_either(choices)}, got {value!r}")
    return value


def _jobs(env: Mapping[str, str]) -> int | None:
    text = input_value(env, "jobs")
    if text and not (text.isdigit() and int(text) > 0):
        raise InputError(f"jobs must be a whole number above 0 or empty, got {text!r}")
    return int(text) if text else None


def read_inputs(env: Mapping[str, str]) -> ActionInputs:
    """Validate every input; a bad value is an error naming the input and the choices."""
    repository = Path(env.get("GITHUB_WORKSPACE") or Path.cwd())
    workdir = input_value(env, "working-directory", ".") or "."
    workspace = inside(repository, workdir, "working-directory")
    if not workspace.is_dir():
        raise InputError(f"working-directory {workdir!r} is not a directory in the repository")
    fail_on = FAIL_ON[_choice(env, "fail-on", ["error", "warning", "never"], "")]
    comment = _choice(env, "comment", ["update", "off"], "update")
    cache = _choice(env, "cache", ["true", "false"], "true")
    command = COMMANDS[_choice(env, "command", list(COMMANDS), "check")]
    jobs = _jobs(env)
    publish_timeout = _publish_timeout(input_value(env, "publish-timeout"))
    split_by = SPLITS[_choice(env, "split-by", list(SPLITS), "model")]

    def path(name: str, default: str) -> Path:
        return inside(workspace, input_value(env, name) or default, name)

    def optional(name: str) -> Path | None:
        value = input_value(env, name)
        return inside(workspace, value, name) if value else None

    prefix = workspace.relative_to(repository.resolve()).as_posix()
    report = path("report", DEFAULT_REPORT)
    reports = (
        _shard_reports(workspace, input_value(env, "reports"), report) if command == "merge" else []
    )
    return ActionInputs(
        workspace=workspace,
        prefix="" if prefix == "." else prefix,
        policy=path("policy", DEFAULT_POLICY_FILE),
        report=report,
        sarif=optional("sarif"),
        junit=optional("junit"),
        fail_on=fail_on,
        comment=comment == "update",
        token=_token(env),
        only=split_names([input_value(env, "only")]),
        cache_dir=path("cache-dir", DEFAULT_CACHE_DIR),
        cache=cache == "true",
        command=command,
        runtimes=[
            line.strip() for line in input_value(env, "runtime").splitlines() if line.strip()
        ],
        split_by=split_by,
        reports=reports,
        jobs=jobs,
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
            contained = path.resolve().is_relative_to(workspace.resolve())
            if contained and path.is_file() and path.resolve() != report.resolve():
                found.append(path)
    if not written:
        raise InputError("command merge needs the shard reports: set reports, e.g. shards/*.json")
    if not found:
        raise InputError(f"reports {', '.join(written)} match no file in working-directory")
    return list(dict.fromkeys(found))


def report_place(env: Mapping[str, str]) -> tuple[Path, Path, Path] | None:
    """Workspace, report and policy paths from the inputs; None if one of them is bad."""
    repository = repository_root(env)
    try:
        workspace = inside(repository, input_value(env, "working-directory", ".") or ".", "")
        report = inside(workspace, input_value(env, "report") or DEFAULT_REPORT, "")
        policy = inside(workspace, input_value(env, "policy") or DEFAULT_POLICY_FILE, "")
    except InputError:
        return None
    return workspace, report, policy

"""The report files a run writes, checked before the run and written with one failure policy.

The CLI and the Action build the same list of outputs (`report_outputs`) and hand
it to the same two functions: `output_path_problems` before any model work (a path
that cannot be written, or that would overwrite the policy, a model source or the
converted models, is a usage error then, not a traceback after a long run), and
`write_each` after it, where one output failing (a full disk) is a message that
names the output while the others are still written.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tflite_gate.report.json_report import write_json_report
from tflite_gate.report.junit import write_junit
from tflite_gate.report.model import Report
from tflite_gate.report.sarif import write_sarif


@dataclass(frozen=True)
class Output:
    """One file the run was asked for: the option or input that named it, where, and how."""

    option: str  # as the user wrote it: `--sarif` on the CLI, `sarif` in the Action
    path: Path
    write: Callable[[Report], None]


def report_outputs(
    *,
    json_path: Path,
    sarif_path: Path | None,
    junit_path: Path | None,
    names: Mapping[str, str],
    sarif_prefix: str = "",
) -> list[Output]:
    """JSON always, SARIF and JUnit when asked; `names` maps json/sarif/junit to option names.

    `sarif_prefix` is the workspace's path in the repository: code scanning reads
    SARIF locations from the repository root (the Action's working-directory).
    """
    outputs = [Output(names["json"], json_path, lambda r: write_json_report(r, json_path))]
    if sarif_path is not None:
        target = sarif_path

        def sarif(report: Report) -> None:
            write_sarif(report.with_path_prefix(sarif_prefix) if sarif_prefix else report, target)

        outputs.append(Output(names["sarif"], target, sarif))
    if junit_path is not None:
        junit_target = junit_path
        outputs.append(Output(names["junit"], junit_target, lambda r: write_junit(r, junit_target)))
    return outputs


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def _writable_problem(option: str, path: Path) -> str | None:
    """Why `path` cannot be written, found by creating (and removing) a file beside it.

    A permission bit says nothing for root, a read-only mount or a `/proc` directory,
    so the directory that will hold the file is tried for real.
    """
    try:
        mode = path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):  # the parent check below says which
        mode = None
    except OSError as error:
        return f"give {option} a path that can be written: {path}: {error.strerror or error}"
    if mode is not None and stat.S_ISDIR(mode):
        return f"give {option} a file path, not the directory {path}"
    if mode is not None and not stat.S_ISREG(mode):
        return (
            f"give {option} a regular file path: {path} is a special file (a device, FIFO or "
            "socket), which writing the report would replace"
        )
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"give {option} a path in a directory: {ancestor} is not a directory"
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=ancestor)
    except OSError as error:
        return (
            f"give {option} a path in a writable directory: cannot create files in {ancestor}: "
            f"{error.strerror or error}"
        )
    os.close(handle)
    Path(probe).unlink(missing_ok=True)
    return None


@dataclass(frozen=True)
class PathProblem:
    """Why one output cannot be written where it was asked to be."""

    output: Output
    message: str


def output_path_problems(
    outputs: Sequence[Output],
    *,
    policy: Path,
    artifacts: Path,
    inputs: Sequence[Path] = (),
) -> list[PathProblem]:
    """Every reason an output cannot be written or would destroy something; [] if none.

    `inputs` are files the run reads (model sources, references, data): a report
    written over one would replace the user's work with JSON. The converted models
    live in subdirectories of `artifacts`, so an output may sit directly in it only.
    """
    problems: list[PathProblem] = []
    seen: dict[Path, str] = {}
    for output in outputs:
        path, option = output.path, output.option
        problem = _path_problem(
            output, policy=policy, artifacts=artifacts, inputs=inputs, seen=seen
        )
        if problem is not None:
            problems.append(PathProblem(output, problem))
        seen.setdefault(path.resolve(), option)
    return problems


def _path_problem(
    output: Output, *, policy: Path, artifacts: Path, inputs: Sequence[Path], seen: dict[Path, str]
) -> str | None:
    path, option = output.path, output.option
    if _same_file(path, policy):
        return (
            f"give {option} a path other than the policy file {policy}: writing the "
            "report there would overwrite the policy"
        )
    named = next((p for p in inputs if _same_file(path, p)), None)
    if named is not None:
        return (
            f"give {option} a path other than {named}: the policy reads that file, and "
            "writing the report there would overwrite it"
        )
    if _inside(path, artifacts) and path.resolve().parent != artifacts.resolve():
        return (
            f"give {option} a path outside the model directories of {artifacts}: "
            f"{path} could overwrite a converted model or reproducer"
        )
    earlier = seen.get(path.resolve())
    if earlier is not None:
        return f"give {earlier} and {option} different paths, not both {path}"
    return _writable_problem(option, path)


class OutputSkippedError(Exception):
    """An output left unwritten on purpose (a job summary with no room left), and why."""


def write_each(report: Report, outputs: Sequence[Output]) -> list[str]:
    """Write each output; a failure is a message naming it, and the others are still written.

    The one failure policy of every reporter (files, job summary, step outputs), so
    the CLI and the Action cannot drift apart; the caller shows the messages its way.
    """
    failures: list[str] = []
    for output in outputs:
        try:
            output.write(report)
        except OutputSkippedError as skipped:
            failures.append(f"did not write {output.option} {output.path}: {skipped}")
        except OSError as error:
            failures.append(
                f"could not write {output.option} {output.path}: {error.strerror or error}; "
                "free space or fix permissions there and run again"
            )
    return failures

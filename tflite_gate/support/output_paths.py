"""The report files a run is asked for, and every reason one cannot be written where asked.

`output_path_problems` runs before any model work: a path that cannot be written,
or that would overwrite the policy, a model source or the converted models, is a
usage error then, not a traceback after a long run. It lives at the bottom of the
house because the run's options carry the outputs (`CheckOptions.outputs`) and the
pipeline checks them against the files the policy reads; the reporters that fill
the files (`report/reporters.py`) sit above.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tflite_gate.support.files import in_pseudo_file_system, link_chain

STDOUT = Path("-")
"""The path `-`: the output goes to standard output, as `--report -` asks."""

DEFAULT_REPORT = "tflite-gate-report.json"
"""Where the JSON report goes when neither `--report` nor the `report` input says."""

ReportFormat = Literal["json", "sarif", "junit"]


@dataclass(frozen=True)
class Output:
    """One report file the run was asked for: its format, the option that named it, where."""

    format: ReportFormat
    option: str  # as the user wrote it: `--sarif` on the CLI, `sarif` in the Action
    path: Path

    @property
    def to_stdout(self) -> bool:
        """Whether the report goes to standard output (`-`) instead of a file."""
        return self.path == STDOUT


def report_outputs(
    *,
    json_path: Path,
    sarif_path: Path | None,
    junit_path: Path | None,
    names: Mapping[str, str],
) -> list[Output]:
    """JSON always, SARIF and JUnit when asked; `names` maps json/sarif/junit to option names.

    The CLI and the Action build the same list, so both check and write the same way.
    """
    asked: list[tuple[ReportFormat, Path | None]] = [
        ("json", json_path),
        ("sarif", sarif_path),
        ("junit", junit_path),
    ]
    return [Output(kind, names[kind], path) for kind, path in asked if path is not None]


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
    workspace: Path,
    inputs: Sequence[Path] = (),
) -> list[PathProblem]:
    """Every reason an output cannot be written or would destroy something; [] if none.

    `inputs` are files the run reads (model sources, references, data): a report
    written over one would replace the user's work with JSON. The converted models
    live in subdirectories of `artifacts`, so an output may sit directly in it only.
    A link is written through, never replaced, and only to a regular file; a link
    inside `workspace` (which a pull request may have committed) only to a file in it.
    """
    problems: list[PathProblem] = []
    seen: dict[Path, str] = {}
    for output in outputs:
        if output.to_stdout:
            problem = _stdout_problem(output, seen)
            key = STDOUT
        else:
            problem = _link_problem(output, workspace) or _path_problem(
                output, policy=policy, artifacts=artifacts, inputs=inputs, seen=seen
            )
            key = output.path.resolve()
        if problem is not None:
            problems.append(PathProblem(output, problem))
        seen.setdefault(key, output.option)
    return problems


def _stdout_problem(output: Output, seen: dict[Path, str]) -> str | None:
    earlier = seen.get(STDOUT)
    if earlier is None:
        return None
    return f"give {output.option} a file path: {earlier} already writes to stdout (-)"


def _link_problem(output: Output, workspace: Path) -> str | None:
    """Why the link at an output's path must not be written through; None if it may be."""
    path, option = output.path, output.option
    if not path.is_symlink():
        return None
    hops = link_chain(path)
    end = Path(os.path.realpath(path))
    shown = " → ".join(str(hop) for hop in hops)
    kernel = next((hop for hop in [*hops[1:], end] if in_pseudo_file_system(hop)), None)
    if kernel is not None:
        return (
            f"give {option} a file path, or - for stdout: {path} is a link through {kernel} "
            f"({shown}), not to a file, and the gate never replaces a link"
        )
    if end.exists() and not end.is_file():
        return (
            f"give {option} a link to a regular file, or a file path: {path} leads to {end} "
            f"({shown}), which is not a regular file"
        )
    if path.absolute().parent.resolve().is_relative_to(workspace.resolve()) and not (
        end.is_relative_to(workspace.resolve())
    ):
        return (
            f"give {option} a path whose link stays inside the workspace: {path} is a link "
            f"({shown}) to a file outside the workspace ({workspace}), which may come from "
            "a pull request"
        )
    return None


def _path_problem(
    output: Output, *, policy: Path, artifacts: Path, inputs: Sequence[Path], seen: dict[Path, str]
) -> str | None:
    path, option = output.path, output.option
    if path.is_symlink():  # checked as the file it leads to (`_link_problem` allowed it)
        path = Path(os.path.realpath(path))
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

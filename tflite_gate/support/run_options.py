"""What a run is asked to do: the options, how the user names them, and usage errors.

Light on purpose: the CLI, the Action and `app/check.py` build and check these
before anything heavy is imported, so a bad policy or option is answered fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tflite_gate.support.layout import GATE_DIRECTORY
from tflite_gate.support.output_paths import Output, PathProblem

Progress = Callable[[str], None]


class ResultLine(str):
    """A progress line that states a result (a variant's status, a run's metrics, a
    diagnosis). The summary printed at the end states it again, so a log (CI, a pipe)
    leaves it out and says each thing once; a person at a terminal sees it as it comes.
    """


FailOn = Literal["error", "warning", "never"]
DEFAULT_CACHE_MAX_MB = 2048
DEFAULT_MARGIN = 1.0
"""Suggested thresholds let the error double: CPUs with other vector units round
differently (a deep model measured max_abs 1e-4 on one x86 machine, 2e-4 on another)."""
MAX_MARGIN = 100.0


def parse_margin(text: str) -> float:
    """`50%` or `0.5` → 0.5; ValueError (with what to write) for anything else."""
    spelled = text.strip()
    number = spelled[:-1] if spelled.endswith("%") else spelled
    try:
        value = float(number)
    except ValueError:
        raise ValueError(
            f"write the margin as a share or a percentage (0.5 or 50%), got {text!r}"
        ) from None
    if spelled.endswith("%"):
        value /= 100
    if not math.isfinite(value) or not 0 <= value <= MAX_MARGIN:
        raise ValueError(f"the margin must be between 0 and {MAX_MARGIN:g} (10000%), got {text!r}")
    return value


def margin_text(margin: float) -> str:
    """0.5 → '50%'."""
    return f"{margin * 100:.4g}%"


def split_names(values: list[str]) -> list[str]:
    """`--only a,b --only c` (or newline-separated, as Action inputs come) → [a, b, c]."""
    return [
        name.strip()
        for value in values
        for name in value.replace("\n", ",").split(",")
        if name.strip()
    ]


class UsageError(Exception):
    """A command-line mistake (exit 2)."""


class OutputPathError(UsageError):
    """Outputs that must not be written where they were asked to be (exit 2)."""

    def __init__(self, problems: list[PathProblem]) -> None:
        super().__init__("\n".join(problem.message for problem in problems))
        self.problems = problems


@dataclass(frozen=True)
class OptionNames:
    """How the user sets each option, for messages that say what to change.

    The CLI's flags by default; the Action passes its input names, so a message in a
    workflow log never tells the user to pass a flag they cannot pass. None: the
    option cannot be set there.
    """

    workspace: str = "--workspace"
    policy: str = "--policy"
    only: str = "--only"
    runtime: str = "--runtime"
    artifacts: str | None = "--artifacts"
    cache_dir: str = "--cache-dir (or TFLITE_GATE_CACHE)"
    no_cache: str = "--no-cache"
    baseline: str = "--baseline"


@dataclass
class CheckOptions:
    policy: Path
    workspace: Path
    only: list[str] = field(default_factory=list)
    runtimes: list[str] = field(default_factory=list)  # run only these (a matrix shard)
    jobs: int | None = None  # workers at once; None: from the cores and free memory
    artifacts: Path | None = None
    fail_on: FailOn | None = None
    cache_dir: Path | None = None
    cache: bool = True  # reuse and keep conversions under cache_dir
    cache_max_mb: int = DEFAULT_CACHE_MAX_MB
    outputs: list[Output] = field(default_factory=list)  # report files; never over an input
    baseline: Path | None = None  # an earlier JSON report to compare with
    names: OptionNames = field(default_factory=OptionNames)


def artifacts_path(options: CheckOptions) -> Path:
    """Where converted models go (created only when the run starts)."""
    return options.artifacts or options.workspace / GATE_DIRECTORY / "artifacts"

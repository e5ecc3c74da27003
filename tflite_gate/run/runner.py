"""The Runner protocol: one way to run a .tflite on samples, and what a run gives back.

A runner prepares an environment (the gate's own runtime, a cached virtual
environment, later a GPU, a microcontroller interpreter or an NPU compiler), then
loads a .tflite and runs samples through it, each run isolated however the runner
isolates it, and returns a typed `RunResult`. The pipeline knows runners only
through `Runner` and `PreparedRunner`: a new kind of run is a new runner (and its
line in `runners.runner_for`), not a change to the pipeline.

A runner says up front what it needs of a model (`RunnerNeeds`: fixed input shapes,
no Select TF ops, a tensor arena), so a model it cannot take is refused before any
process starts (`needs.refusal`), with the reason, instead of failing in it. Its result
carries what only some runners can measure (delegation to an accelerator, memory)
in typed fields, empty where a runner does not know them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

Arrays = dict[str, np.ndarray[Any, Any]]

RunOutcome = Literal[
    "ok",
    "error",
    "unsupported-flex",
    "unresolved-custom-op",
    "crash",
    "timeout",
    "import",
    "refused",  # the runner cannot take this model (`RunnerNeeds`): not run
]


class RuntimeUnavailable(Exception):  # noqa: N818 -- names the finding `runtime-unavailable`
    """The runtime cannot be prepared; the message says what failed and what to do."""

    def __init__(self, message: str, *, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


@dataclass(frozen=True)
class RunnerNeeds:
    """What a runner asks of a model; the defaults ask nothing (the CPU interpreters)."""

    static_shapes: bool = False  # every input dimension fixed (GPU delegates refuse -1)
    flex_ops: bool = True  # False: no Flex delegate, a Select TF op can never run there
    arena_bytes: int | None = None  # one fixed tensor arena of this size (microcontrollers)


@dataclass(frozen=True)
class RunJob:
    """One run's places and limits: what the pipeline decides, whatever the runner."""

    scratch: Path  # the run's own files
    reproducer: Path  # where a failure's reproducer goes
    timeout_s: float
    memory_mb: int | None
    num_threads: int = 2
    latency_runs: int = 0  # timed invokes of the first sample; 0: no latency measured
    latency_threads: int = 0  # threads for the timed invokes; 0: num_threads
    pythonpath: tuple[str, ...] = ()  # where Python custom-op registerers are imported from


@dataclass(frozen=True)
class Delegation:
    """How much of the model an accelerator took, as the runtime reported it."""

    accelerator: str
    accelerated_ops: int
    fallback_ops: int  # ops that ran on the CPU instead
    fallbacks: tuple[str, ...] = ()  # the runtime's reason for each op that fell back


@dataclass(frozen=True)
class MemoryUse:
    """Memory a run took, as far as its runner can tell."""

    peak_rss_mb: float | None = None  # the run's process, sampled while it ran
    arena_bytes: int | None = None  # the tensor arena the runtime allocated


@dataclass
class RunResult:
    """How a run went: outputs (name → [N, *shape]) when `ok`, else where it stopped."""

    status: RunOutcome
    phase: str | None
    sample: int | None
    signal: str | None
    message: str | None
    outputs: Arrays = field(default_factory=dict)
    runtime_version: str | None = None
    reproducer: Path | None = None
    reproducer_error: OSError | None = None  # the reproducer could not be saved (disk full)
    duration_s: float = 0.0
    unresolved_custom_ops: list[str] = field(default_factory=list)
    batched: bool = False  # samples went through in batches (the model takes any batch)
    latency_ms: float | None = None
    delegation: Delegation | None = None  # runners that delegate to an accelerator
    memory: MemoryUse | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class PreparedRunner(Protocol):
    """A runner whose environment is ready: it loads a .tflite and runs samples."""

    @property
    def name(self) -> str:
        """The runtime's name, as the policy and the report say it."""

    @property
    def version(self) -> str | None:
        """The runtime's version as prepared (a run may report its own)."""

    @property
    def reused(self) -> Path | None:
        """The cached environment it was reused from; None when new or not cached."""

    @property
    def needs(self) -> RunnerNeeds:
        """What it asks of a model, checked before each run (`needs.refusal`)."""

    def run(self, model: Path, inputs: Arrays, job: RunJob) -> RunResult:
        """Every sample of `inputs` through `model`; a failure is a result, never a raise
        (except OSError for the run's own files, which the caller reports)."""


class Runner(Protocol):
    """One way to run a .tflite, before its environment exists."""

    @property
    def name(self) -> str:
        """The runtime's name, as the policy and the report say it."""

    def prepare(self, cache_dir: Path) -> PreparedRunner:
        """Make the environment ready (slow the first time); `RuntimeUnavailable` if it
        cannot be, with what to do about it."""

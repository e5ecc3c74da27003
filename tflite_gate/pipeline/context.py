"""What every stage of one run shares: places, progress, the pool, and the findings
about the machine or the inputs (a full disk, a cancelled run, a FIFO where a file
belongs) that any stage may hit."""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tflite_gate.convert.cache import ConversionCache
from tflite_gate.findings import Finding
from tflite_gate.judge import checks
from tflite_gate.model.workspace_code import factory_files
from tflite_gate.pipeline.requests import ModelRequests
from tflite_gate.policy.plan import ModelPlan
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import (
    Report,
)
from tflite_gate.rules import make_finding
from tflite_gate.run.protocol import (
    EvaluationResult,
)
from tflite_gate.run.runner import PreparedRunner, RuntimeUnavailable
from tflite_gate.run.runtimes import RuntimeSpec
from tflite_gate.run.workers import WorkerPool
from tflite_gate.support.cancel import Cancelled
from tflite_gate.support.files import disk_problem
from tflite_gate.support.layout import (
    ModelPlaces,
)
from tflite_gate.support.run_options import (
    OptionNames,
    Progress,
)
from tflite_gate.support.workspace_files import (
    SpecialFileError,
    refuse_special_files,
    unreadable_message,
)

Arrays = dict[str, np.ndarray]


@dataclass
class RunContext:
    """What every model's run shares: where things go, and runtimes prepared once."""

    workspace: Path
    artifacts: Path
    scratch: Path
    cache_dir: Path
    progress: Progress
    conversions: ConversionCache | None = None  # None: --no-cache
    only_runtimes: frozenset[str] = frozenset()  # empty: every runtime a model lists
    jobs: int = 1  # workers at once, whatever runs them
    split: int = 1  # workers one model's variants are converted in
    pool: WorkerPool | None = None  # conversion workers every model shares
    converting: set[str] = field(default_factory=set)  # models still to convert
    converting_lock: threading.Lock = field(default_factory=threading.Lock)
    runtime_lock: threading.Lock = field(default_factory=threading.Lock)
    names: OptionNames = field(default_factory=OptionNames)
    runtimes: dict[RuntimeSpec, PreparedRunner | RuntimeUnavailable] = field(default_factory=dict)
    unavailable_reported: set[tuple[str, RuntimeSpec]] = field(default_factory=set)
    # By model name: what each model's workers are told, built from the plan before
    # any model work.
    requests: dict[str, ModelRequests] = field(default_factory=dict)

    def places(self, config: ModelConfig) -> ModelPlaces:
        """Where this model's check writes, in scratch and in artifacts."""
        return ModelPlaces.of(self.scratch, self.artifacts, config.index, config.name)

    def requests_for(self, config: ModelConfig) -> ModelRequests:
        """The model's data sources and runtimes as its workers take them."""
        return self.requests[config.name]

    def relative(self, path: Path) -> str:
        """`path` relative to the workspace, as reports and annotations name files."""
        try:
            return path.resolve().relative_to(self.workspace.resolve()).as_posix()
        except ValueError:
            return str(path)


def serialized(progress: Progress) -> Progress:
    """`progress` callable from many threads, each line whole (never two interleaved)."""
    lock = threading.Lock()

    def say(message: str) -> None:
        with lock:
            progress(message)

    return say


def done_converting(config: ModelConfig, context: RunContext) -> None:
    """Once no model has conversions left, the idle TensorFlow workers give memory back."""
    with context.converting_lock:
        context.converting.discard(config.name)
        last = not context.converting
    if last and context.pool is not None:
        context.pool.shrink()


def environment_finding(
    error: OSError, config: ModelConfig, context: RunContext, variant: str | None = None
) -> Finding:
    """Name the file as the user knows it, and the option that moves its directory."""
    path = Path(error.filename) if isinstance(error.filename, str) else None
    if path is None:  # a failed write() names no file: find the disk that is full
        path = next((d for d in (context.scratch, context.artifacts) if disk_problem(d)), None)
    place, elsewhere = "a file", ""
    if path is not None:
        place = context.relative(path)
        if _inside(path, context.artifacts):
            option = context.names.artifacts
            elsewhere = f"give {option} a directory with room" if option else ""
        elif _inside(path, context.scratch):
            place = f"a temporary file in {tempfile.gettempdir()}"
            elsewhere = "set TMPDIR to a directory with room"
        elif _inside(path, context.cache_dir):
            elsewhere = f"give {context.names.cache_dir} another directory"
    return checks.check_environment_error(
        config, error, place=place, elsewhere=elsewhere, variant=variant
    )[0]


def _inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


def cancelled_finding(cancelled: Cancelled, report: Report) -> Finding:
    """Say which model was cut short; the ones before it finished (total timing set)."""
    unfinished = [m.name for m in report.models if "total" not in m.timings]
    where = f" while checking {', '.join(unfinished)}" if unfinished else ""
    finished = [m.name for m in report.models if "total" in m.timings]
    done = f"; complete: {', '.join(finished)}" if finished else "; no model finished"
    return make_finding(
        "cancelled",
        f"the run was cancelled by {cancelled.signal_name}{where}{done}",
        model=unfinished[0] if len(unfinished) == 1 else None,
        details={"signal": cancelled.signal_name, "finished_models": finished},
    )


def special_file_problem(raw: str, path: Path | None, context: RunContext) -> str | None:
    """Why a model a worker would read (file, SavedModel, factory module) is refused unread.

    A FIFO or a device blocks the worker that opens it until its timeout; the gate
    process opens none of them, it only checks their type. (`.tflite` files are read
    by the gate itself, through `read_tflite`, which checks too.)
    """
    paths = [path] if path is not None else factory_files(raw, context.workspace)
    try:
        for each in paths:
            refuse_special_files(each)
    except SpecialFileError as error:
        return error.message
    except OSError as error:
        return unreadable_message(error)
    return None


def special_data_files(plan: ModelPlan, context: RunContext) -> list[Finding]:
    """A data generator's module that is a FIFO or a device: data-invalid at its data line."""
    config = plan.config
    findings: list[Finding] = []
    for role, source in (
        ("calibration", plan.data.calibration),
        ("evaluation", plan.data.evaluation),
    ):
        if source is None or source.factory is None:
            continue
        problem = special_file_problem(source.factory, None, context)
        if problem is not None:
            findings.append(
                make_finding(
                    "data-invalid",
                    f"{config.name}: {role} data: {problem}",
                    model=config.name,
                    location=checks.data_location(config, role, None),
                    error=problem,
                )
            )
    return findings


def unless_reported(findings: list[Finding], evaluation: EvaluationResult | None) -> list[Finding]:
    """One data source serving both roles fails once: drop the calibration echo."""
    if evaluation is None or evaluation.error is None:
        return findings
    return [f for f in findings if not (f.rule == "data-invalid" and f.error == evaluation.error)]

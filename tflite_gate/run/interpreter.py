"""Run a .tflite model on samples in an isolated interpreter worker; parent side.

The worker (the `interpreter_worker/` directory) is self-contained and run by path
under any environment's Python, so the same code drives `ai_edge_litert` here and
e.g. `tflite-runtime` 2.14 in a cached virtual environment. It reports a
Python-level failure as a result; a segfault, abort, hang or memory blow-up
kills it, and then the last line of its status file names the phase and sample
it died in. Every failure except "needs the Flex delegate" and "needs a custom
op's kernel" (neither is a runtime bug) leaves a reproducer directory (model, the
failing sample, a plain script) a user can attach to a bug report.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydantic import TypeAdapter, ValidationError

from tflite_gate.run.arrays import save_npz
from tflite_gate.run.interpreter_worker.messages import InterpreterRequest, InterpreterResult
from tflite_gate.run.reproducer import write_reproducer
from tflite_gate.run.runner import Arrays, MemoryUse, RunOutcome, RunResult
from tflite_gate.run.workers import WorkerOutcome, cause_tail, run_worker
from tflite_gate.support.files import write_text_atomic

WORKER_DIRECTORY = Path(__file__).resolve().with_name("interpreter_worker")

# Failures that say what the model needs, not that the runtime broke: no reproducer.
_NO_REPRODUCER = {"ok", "unsupported-flex", "unresolved-custom-op", "import"}

# Samples per invoke for models that take any batch: fewer, larger invokes, with an
# arena that still fits the default memory limit for a MobileNet-sized model.
BATCH = 16
# The worker's own dataclasses, checked strictly as JSON gives them (no coercion: the
# worker's own checker coerces nothing either).
_REQUEST = TypeAdapter(InterpreterRequest)
_RESULT = TypeAdapter(InterpreterResult)


class WorkerFiles(NamedTuple):
    """The files a worker run reads and writes, all in its scratch directory."""

    scratch: Path
    request: Path
    inputs: Path
    outputs: Path
    result: Path
    status: Path
    log: Path

    @classmethod
    def in_scratch(cls, scratch: Path) -> WorkerFiles:
        return cls(
            scratch,
            request=scratch / "request.json",
            inputs=scratch / "inputs.npz",
            outputs=scratch / "outputs.npz",
            result=scratch / "result.json",
            status=scratch / "status.jsonl",
            log=scratch / "worker.log",
        )

    def clear(self) -> None:
        """Remove what an earlier attempt left, so nothing stale is read as this one's."""
        for stale in (self.outputs, self.result, self.status):
            stale.unlink(missing_ok=True)


def run_interpreter(
    model: Path,
    inputs: Arrays,
    *,
    python: str,
    module: str,
    scratch: Path,
    reproducer_dir: Path,
    timeout_s: float,
    memory_mb: int | None,
    num_threads: int = 2,
    env: dict[str, str] | None = None,
    custom_op_registerers: Sequence[str] = (),
    custom_op_libraries: Sequence[str] = (),
    pythonpath: Sequence[str] = (),
    batch: int = BATCH,
    latency_runs: int = 0,
    latency_threads: int = 0,
) -> RunResult:
    """Run every sample of `inputs` (name → [N, *sample_shape]) through `model` in a worker.

    `python` is the interpreter of the environment that has `module` (whose
    `Interpreter` class is used); `env` replaces the worker's environment. With
    `custom_op_registerers` (C symbol names, or `package.module:function` importable
    from `pythonpath`) the worker uses `InterpreterWithCustomOps`, after loading
    `custom_op_libraries` (absolute paths) into the process.

    Samples go `batch` at a time through a model that takes any batch. With
    `latency_runs`, the worker then times that many invokes of the first sample
    (on `latency_threads` threads, default `num_threads`) and reports their median.
    """
    started = time.monotonic()
    model, files = model.resolve(), WorkerFiles.in_scratch(scratch.resolve())  # runs there
    files.scratch.mkdir(parents=True, exist_ok=True)
    files.clear()
    save_npz(files.inputs, inputs)
    request = InterpreterRequest(
        model=str(model),
        module=module,
        num_threads=num_threads,
        batch=batch,
        latency_runs=latency_runs,
        latency_threads=latency_threads,
        custom_op_registerers=list(custom_op_registerers),
        custom_op_libraries=list(custom_op_libraries),
        pythonpath=list(pythonpath),
        inputs=str(files.inputs),
        outputs=str(files.outputs),
        result=str(files.result),
        status=str(files.status),
    )
    try:
        outcome = _run_worker(request, python, files, (timeout_s, memory_mb), env)
    except OSError as exc:
        message = f"cannot start {python}: {exc}"
        result = RunResult(
            status="import", phase="start", sample=None, signal=None, message=message
        )
    else:
        result = _from_worker(outcome, files)
    if result.status not in _NO_REPRODUCER:
        try:
            result.reproducer = write_reproducer(
                reproducer_dir, model, inputs, module, result, num_threads=num_threads
            )
        except OSError as error:  # the run's result stands; only its reproducer is lost
            result.reproducer_error = error
    result.duration_s = time.monotonic() - started
    return result


def _run_worker(
    request: InterpreterRequest,
    python: str,
    files: WorkerFiles,
    limits: tuple[float, int | None],
    env: dict[str, str] | None,
) -> WorkerOutcome:
    """The worker's outcome; a worker that died inside a batch runs again one sample at a
    time (unless it ran out of time), so a crash is still named by its sample and leaves
    that sample's reproducer."""
    started = time.monotonic()
    timeout_s, memory_mb = limits
    outcome = _attempt(request, python, files, timeout_s, memory_mb, env)
    if outcome.ok or outcome.timed_out or last_status(files.status).batch <= 1:
        return outcome
    files.clear()
    request.batch = 1
    remaining = max(timeout_s - (time.monotonic() - started), 1.0)
    return _attempt(request, python, files, remaining, memory_mb, env)


def _attempt(
    request: InterpreterRequest,
    python: str,
    files: WorkerFiles,
    timeout_s: float,
    memory_mb: int | None,
    env: dict[str, str] | None,
) -> WorkerOutcome:
    text = json.dumps(dataclasses.asdict(request), indent=1)
    _REQUEST.validate_json(text, strict=True)  # what the worker's own check will see
    write_text_atomic(files.request, text)
    return run_worker(
        [python, str(WORKER_DIRECTORY), str(files.request)],
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        log_path=files.log,
        cwd=files.scratch,
        env=_worker_env(env),
    )


def _worker_env(env: dict[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ if env is None else env)
    merged["PYTHONUNBUFFERED"] = "1"
    merged.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    return merged


def read_result(path: Path) -> InterpreterResult | None:
    """The worker's result; None when it is missing, cut short or does not fit the schema."""
    try:
        return _RESULT.validate_json(path.read_bytes(), strict=True)
    except (OSError, ValidationError):
        return None


class WorkerStatus(NamedTuple):
    phase: str | None
    sample: int | None
    batch: int = 1  # samples `sample` .. `sample + batch - 1` were in one invoke


def last_status(path: Path) -> WorkerStatus:
    """Phase and sample(s) of the last status line the worker flushed before it died."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return WorkerStatus(None, None)
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        if not isinstance(entry, dict):
            continue
        sample, batch, phase = entry.get("sample"), entry.get("batch"), entry.get("phase")
        return WorkerStatus(
            phase if isinstance(phase, str) else None,
            sample if isinstance(sample, int) else None,
            batch if isinstance(batch, int) and batch > 1 else 1,
        )
    return WorkerStatus(None, None)


def _from_worker(outcome: WorkerOutcome, files: WorkerFiles) -> RunResult:
    """The worker's result as the gate's; its outputs read back when it ran."""
    raw = read_result(files.result) if outcome.ok else None
    memory = MemoryUse(peak_rss_mb=outcome.peak_rss_mb)
    if raw is None:
        return _died(outcome, files, memory)
    if not raw.ok:
        known: dict[str, RunOutcome] = {
            "unsupported-flex": "unsupported-flex",
            "unresolved-custom-op": "unresolved-custom-op",
            "import": "import",
        }
        return RunResult(
            status=known.get(raw.kind or "error", "error"),
            phase=raw.phase,
            sample=raw.sample,
            signal=None,
            message=raw.error,
            unresolved_custom_ops=raw.unresolved_custom_ops,
            memory=memory,
        )
    return RunResult(
        status="ok",
        phase=None,
        sample=None,
        signal=None,
        message=None,
        outputs=_read_outputs(files.outputs, raw),
        runtime_version=raw.runtime_version,
        batched=raw.batched,
        latency_ms=raw.latency_ms,
        memory=memory,
    )


def _read_outputs(path: Path, raw: InterpreterResult) -> Arrays:
    """Outputs by name; one whose shape varies by sample is an object array, arr[i] still
    sample i."""
    with np.load(path) as archive:
        stored = {key: archive[key] for key in archive.files}
    outputs: dict[str, np.ndarray[Any, Any]] = {}
    ragged = raw.ragged
    for name in raw.outputs:
        if name in ragged:
            per_sample = np.empty(len(ragged[name]), dtype=object)
            per_sample[:] = [stored[key] for key in ragged[name]]
            outputs[name] = per_sample
        else:
            outputs[name] = stored[name]
    return outputs


def _died(outcome: WorkerOutcome, files: WorkerFiles, memory: MemoryUse) -> RunResult:
    """A worker that left no result: where its status file says it was, and its last words."""
    phase, sample, batch = last_status(files.status)
    where = f" during {phase or 'start-up'}"
    if sample is not None:
        where += (
            f" of samples {sample}-{sample + batch - 1}" if batch > 1 else f" of sample {sample}"
        )
    what = "exited without writing a result" if outcome.ok else outcome.describe()
    tail = cause_tail(files.log, 8)
    message = f"the interpreter {what}{where}"
    if tail:
        message += "; last output:\n" + "\n".join(tail)
    return RunResult(
        status="timeout" if outcome.timed_out else "crash",
        phase=phase,
        sample=sample,
        signal=outcome.signal_name,
        message=message,
        memory=memory,
    )

"""Run a .tflite model on samples in an isolated interpreter worker; parent side.

The worker (the `interpreter_worker/` directory) is self-contained and run by path
under any environment's Python, so the same code drives `ai_edge_litert` here
and e.g. `tflite-runtime` 2.14 in a cached virtual environment. It reports a
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
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import TypeAdapter, ValidationError

from tflite_gate.model.data import save_npz
from tflite_gate.run.interpreter_worker.messages import InterpreterRequest, InterpreterResult
from tflite_gate.run.workers import WorkerOutcome, cause_tail, run_worker
from tflite_gate.support.files import write_directory_atomic, write_text_atomic

WORKER_DIRECTORY = Path(__file__).resolve().with_name("interpreter_worker")

ExecutionStatus = Literal[
    "ok", "error", "unsupported-flex", "unresolved-custom-op", "crash", "timeout", "import"
]
# Failures that say what the model needs, not that the runtime broke: no reproducer.
_NO_REPRODUCER = {"ok", "unsupported-flex", "unresolved-custom-op", "import"}

# Samples per invoke for models that take any batch: fewer, larger invokes, with an
# arena that still fits the default memory limit for a MobileNet-sized model.
BATCH = 16
# The worker's own dataclasses, checked strictly as JSON gives them (no coercion: the
# worker's own checker coerces nothing either).
_REQUEST = TypeAdapter(InterpreterRequest)
_RESULT = TypeAdapter(InterpreterResult)


@dataclass
class ExecutionResult:
    status: ExecutionStatus
    phase: str | None
    sample: int | None
    signal: str | None
    message: str | None
    outputs: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    runtime_version: str | None = None
    reproducer: Path | None = None
    reproducer_error: OSError | None = None  # the reproducer could not be saved (disk full)
    duration_s: float = 0.0
    unresolved_custom_ops: list[str] = field(default_factory=list)
    batched: bool = False  # samples went through in batches (the model takes any batch)
    latency_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run_interpreter(
    model: Path,
    inputs: dict[str, np.ndarray[Any, Any]],
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
) -> ExecutionResult:
    """Run every sample of `inputs` (name → [N, *sample_shape]) through `model` in a worker.

    `python` is the interpreter of the environment that has `module` (whose
    `Interpreter` class is used); `env` replaces the worker's environment. With
    `custom_op_registerers` (C symbol names, or `package.module:function` importable
    from `pythonpath`) the worker uses `InterpreterWithCustomOps`, after loading
    `custom_op_libraries` (absolute paths) into the process.

    Samples go `batch` at a time through a model that takes any batch. A worker that
    dies inside a batch is run again one sample at a time (unless it ran out of time),
    so a crash is still named by its sample and leaves that sample's reproducer.

    With `latency_runs`, the worker then times that many invokes of the first sample
    (on `latency_threads` threads, default `num_threads`) and reports their median.
    """
    started = time.monotonic()
    model, scratch = model.resolve(), scratch.resolve()  # the worker runs in `scratch`
    scratch.mkdir(parents=True, exist_ok=True)
    paths = {
        "inputs": scratch / "inputs.npz",
        "outputs": scratch / "outputs.npz",
        "result": scratch / "result.json",
        "status": scratch / "status.jsonl",
    }
    for stale in (paths["outputs"], paths["result"], paths["status"]):
        stale.unlink(missing_ok=True)
    save_npz(paths["inputs"], inputs)
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
        inputs=str(paths["inputs"]),
        outputs=str(paths["outputs"]),
        result=str(paths["result"]),
        status=str(paths["status"]),
    )
    log = scratch / "worker.log"
    try:
        outcome = _attempt(request, python, scratch, timeout_s, memory_mb, env)
        if not outcome.ok and not outcome.timed_out and last_status(paths["status"]).batch > 1:
            for stale in (paths["outputs"], paths["result"], paths["status"]):
                stale.unlink(missing_ok=True)
            request.batch = 1
            remaining = max(timeout_s - (time.monotonic() - started), 1.0)
            outcome = _attempt(request, python, scratch, remaining, memory_mb, env)
    except OSError as exc:
        return ExecutionResult(
            status="import",
            phase="start",
            sample=None,
            signal=None,
            message=f"cannot start {python}: {exc}",
            duration_s=time.monotonic() - started,
        )
    result = _from_worker(outcome, paths, log)
    if result.status not in _NO_REPRODUCER:
        try:
            result.reproducer = write_reproducer(
                reproducer_dir, model, inputs, module, result, num_threads=num_threads
            )
        except OSError as error:  # the run's result stands; only its reproducer is lost
            result.reproducer_error = error
    result.duration_s = time.monotonic() - started
    return result


def _attempt(
    request: InterpreterRequest,
    python: str,
    scratch: Path,
    timeout_s: float,
    memory_mb: int | None,
    env: dict[str, str] | None,
) -> WorkerOutcome:
    request_path = scratch / "request.json"
    text = json.dumps(dataclasses.asdict(request), indent=1)
    _REQUEST.validate_json(text, strict=True)  # what the worker's own check will see
    write_text_atomic(request_path, text)
    return run_worker(
        [python, str(WORKER_DIRECTORY), str(request_path)],
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        log_path=scratch / "worker.log",
        cwd=scratch,
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


def _from_worker(outcome: WorkerOutcome, paths: dict[str, Path], log: Path) -> ExecutionResult:
    raw = read_result(paths["result"]) if outcome.ok else None
    if raw is None:
        return _died(outcome, paths["status"], log)
    if not raw.ok:
        known: dict[str, ExecutionStatus] = {
            "unsupported-flex": "unsupported-flex",
            "unresolved-custom-op": "unresolved-custom-op",
            "import": "import",
        }
        return ExecutionResult(
            status=known.get(raw.kind or "error", "error"),
            phase=raw.phase,
            sample=raw.sample,
            signal=None,
            message=raw.error,
            unresolved_custom_ops=raw.unresolved_custom_ops,
        )
    with np.load(paths["outputs"]) as archive:
        stored = {key: archive[key] for key in archive.files}
    outputs: dict[str, np.ndarray[Any, Any]] = {}
    ragged = raw.ragged
    for name in raw.outputs:
        if name in ragged:  # shape varies by sample: an object array, arr[i] is still sample i
            per_sample = np.empty(len(ragged[name]), dtype=object)
            per_sample[:] = [stored[key] for key in ragged[name]]
            outputs[name] = per_sample
        else:
            outputs[name] = stored[name]
    return ExecutionResult(
        status="ok",
        phase=None,
        sample=None,
        signal=None,
        message=None,
        outputs=outputs,
        runtime_version=raw.runtime_version,
        batched=raw.batched,
        latency_ms=raw.latency_ms,
    )


def _died(outcome: WorkerOutcome, status_path: Path, log: Path) -> ExecutionResult:
    phase, sample, batch = last_status(status_path)
    where = f" during {phase or 'start-up'}"
    if sample is not None:
        where += (
            f" of samples {sample}-{sample + batch - 1}" if batch > 1 else f" of sample {sample}"
        )
    what = "exited without writing a result" if outcome.ok else outcome.describe()
    tail = cause_tail(log, 8)
    message = f"the interpreter {what}{where}"
    if tail:
        message += "; last output:\n" + "\n".join(tail)
    return ExecutionResult(
        status="timeout" if outcome.timed_out else "crash",
        phase=phase,
        sample=sample,
        signal=outcome.signal_name,
        message=message,
    )


# --------------------------------------------------------------------------- reproducer

_SCRIPT = '''\
"""Reproduce what tflite-gate saw: {summary}

Run `python reproduce.py [MODULE]` next to {model!r} and inputs.npz; MODULE defaults to
{module!r} (any module with an `Interpreter` class, e.g. tflite_runtime.interpreter).
Needs numpy and the runtime only, not tflite-gate.
"""

import importlib
import sys
from pathlib import Path

import numpy as np

here = Path(__file__).resolve().parent
module = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else {module!r})
interpreter = module.Interpreter(model_path=str(here / {model!r}), num_threads={threads})
signatures = interpreter._get_full_signature_list()  # the gate feeds by signature names
key = "serving_default" if "serving_default" in signatures else next(iter(signatures), None)
details = {{d["index"]: d for d in interpreter.get_input_details()}}
names = signatures[key]["inputs"] if key else {{d["name"]: i for i, d in details.items()}}
interpreter.allocate_tensors()
feeds = np.load(here / "inputs.npz")
for sample in range(len(feeds[feeds.files[0]])):
    for name, index in names.items():
        value, detail = feeds[name][sample], details[index]
        scale, zero_point = detail["quantization"]
        if scale and value.dtype.kind == "f" and np.dtype(detail["dtype"]).kind in "iu":
            info = np.iinfo(detail["dtype"])  # the gate quantizes float data for int I/O
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
        value = value.astype(detail["dtype"])
        if list(value.shape) != list(detail["shape"]):
            interpreter.resize_tensor_input(index, list(value.shape), strict=False)
            interpreter.allocate_tensors()
            details = {{d["index"]: d for d in interpreter.get_input_details()}}
        interpreter.set_tensor(index, value)
    interpreter.invoke()
    print(f"sample {{sample}}: invoke returned", flush=True)
'''


def write_reproducer(
    directory: Path,
    model: Path,
    inputs: dict[str, np.ndarray[Any, Any]],
    module: str,
    result: ExecutionResult,
    *,
    num_threads: int = 2,
) -> Path:
    """Model copy, the failing sample (all samples if unknown) and a plain script.

    Written whole or not at all: a reproducer missing its model or inputs would send
    a user chasing the wrong bug.
    """
    count = min((len(v) for v in inputs.values()), default=0)
    sample = result.sample
    if sample is not None and 0 <= sample < count:
        inputs = {name: value[sample : sample + 1] for name, value in inputs.items()}
    what = result.signal or result.status
    where = f" in {result.phase}" if result.phase else ""
    at = f" of sample {sample}" if sample is not None else ""
    script = _SCRIPT.format(
        summary=f"{what}{where}{at}.", model=model.name, module=module, threads=num_threads
    )

    def fill(partial: Path) -> None:
        shutil.copyfile(model, partial / model.name)
        save_npz(partial / "inputs.npz", inputs)
        (partial / "reproduce.py").write_text(script)

    write_directory_atomic(directory, fill)
    return directory

"""Converting a model from the gate's side: workers started, watched and read back.

`convert_model` writes a request, runs the conversion worker (`convert.worker`) under
time and memory limits, and reads back what each variant produced. A variant that
kills the worker is recorded as failed and a fresh worker carries on with the rest.
With several jobs the variants are shared among workers whose results are joined
as one worker would have left them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tflite_gate.convert.scratch import (
    DEPENDENCIES_FILE,
    DIAGNOSIS_FILE,
    EVALUATION_FILE,
    EVALUATION_STARTED,
    LOAD_FILE,
    RESULT_FILE,
    variant_file,
)
from tflite_gate.run.protocol import (
    ConversionRequest,
    Dependencies,
    DiagnosisResult,
    EvaluationResult,
    LoadResult,
    PoolJob,
    VariantRequest,
    VariantResult,
    read_message,
    write_message,
)
from tflite_gate.run.workers import WorkerOutcome, WorkerPool, cause_tail, log_tail, run_worker

WORKER_MODULE = "tflite_gate.convert.worker"


@dataclass
class ConversionResult:
    """What the conversion workers left for one model, read back by the gate.

    A crash or a timeout is a result too: the variant it hit carries it, and the
    others keep what they converted.
    """

    load: LoadResult
    variants: dict[str, VariantResult]
    evaluation: EvaluationResult | None
    duration_s: float
    worker_log: str
    # One worker ran to its end: every result is its own, none stands for a crash or a
    # timeout (what may be kept and reused).
    complete: bool = False


def _crashed_variant(
    request: ConversionRequest, scratch: Path, known: dict[str, VariantResult]
) -> str | None:
    """The variant the worker was converting when it died (one not already known)."""
    for variant in request.variants:
        if variant.name in known:
            continue
        started = (scratch / variant_file(variant.name, "started")).exists()
        done = (scratch / variant_file(variant.name, "json")).exists()
        if started and not done:
            return variant.name
    return None


Heartbeat = Callable[[float], None]


def convert_model(
    request: ConversionRequest,
    *,
    timeout_s: float,
    memory_mb: int | None,
    jobs: int = 1,
    heartbeat: Heartbeat | None = None,
    pool: WorkerPool | None = None,
) -> ConversionResult:
    """Every variant's result; crashes fail only their variant.

    With `jobs` > 1 the variants are split over that many workers running at once
    (`worker_shares`), each loading the model itself; the evaluation data and reference
    outputs are one worker's share too. Their results are joined into the request's
    scratch as one worker would have left them.
    """
    parts = worker_shares(request, jobs)
    if len(parts) == 1:
        return _convert_part(request, timeout_s, memory_mb, heartbeat, pool)
    started = time.monotonic()
    with ThreadPoolExecutor(len(parts)) as threads:
        done = list(
            threads.map(lambda p: _convert_part(p, timeout_s, memory_mb, heartbeat, pool), parts)
        )
    return _joined(request, parts, done, time.monotonic() - started)


# Rough relative costs (measured on MobileNetV2): calibration makes full-integer
# conversions about twice as long; reference outputs about half a float conversion.
_CALIBRATED = {"int8", "int16x8"}
_REFERENCE_COST = 0.5


def worker_shares(request: ConversionRequest, jobs: int) -> list[ConversionRequest]:
    """The work in `jobs` workers' shares: longest first onto the least loaded.

    The reference outputs are a share of work too; the worker that computes them
    loads the model like the others.
    """
    count = max(1, min(jobs, len(request.variants)))
    if count == 1:
        return [request]
    costs = {v.name: 2.0 if v.quantization in _CALIBRATED else 1.0 for v in request.variants}
    items: list[tuple[float, VariantRequest | None]] = [
        (costs[v.name], v) for v in request.variants
    ]
    if request.reference:
        items.append((_REFERENCE_COST, None))  # None: the reference outputs
    loads = [0.0] * count
    shares: list[list[VariantRequest | None]] = [[] for _ in range(count)]
    for cost, item in sorted(items, key=lambda pair: -pair[0]):
        lightest = loads.index(min(loads))
        shares[lightest].append(item)
        loads[lightest] += cost
    order = {v.name: i for i, v in enumerate(request.variants)}
    return [
        request.model_copy(
            update={
                "scratch": str(Path(request.scratch) / f"part-{index}"),
                "variants": sorted(
                    (v for v in share if v is not None), key=lambda v: order[v.name]
                ),
                "reference": None in share,
                "skip": [],
            }
        )
        for index, share in enumerate(shares)
        if share
    ]


def _joined(
    request: ConversionRequest,
    parts: list[ConversionRequest],
    done: list[ConversionResult],
    duration_s: float,
) -> ConversionResult:
    """The parts' files moved into the request's scratch, read back as one result.

    When no part loaded the model, the first part's result says why (a crash while
    loading leaves no file to join).
    """
    if not any(result.load.ok for result in done):
        done[0].duration_s, done[0].complete = duration_s, False
        return done[0]
    scratch = Path(request.scratch)
    used = Dependencies()
    loaded_first = sorted(zip(parts, done, strict=True), key=lambda pair: not pair[1].load.ok)
    for part, _ in loaded_first:
        for path in Path(part.scratch).iterdir():
            if path.name == DEPENDENCIES_FILE:
                listed = read_message(path, Dependencies) or Dependencies()
                used.files = sorted({*used.files, *listed.files})
                used.packages |= listed.packages
            elif RESULT_FILE.match(path.name) and not (scratch / path.name).exists():
                path.replace(scratch / path.name)  # load.json: the first (a loaded one) wins
    if all(result.complete for result in done):
        write_message(scratch / DEPENDENCIES_FILE, used)
    joined = finished_results(request, duration_s)
    for part, result in zip(parts, done, strict=True):  # crashes left no file to join
        for name, variant in result.variants.items():
            if variant.crash is not None:
                joined.variants[name] = variant
        if not result.load.ok:  # this worker died loading what another one loaded
            for unconverted in part.variants:
                joined.variants[unconverted.name] = VariantResult(
                    name=unconverted.name,
                    ok=False,
                    crash=f"not converted: {result.load.error}",
                    crash_cause=result.load.crash_cause,
                )
        if result.evaluation is not None and result.evaluation.crash_cause is not None:
            joined.evaluation = result.evaluation
    joined.worker_log = done[0].worker_log
    joined.complete = all(result.complete for result in done)
    return joined


def _convert_part(
    request: ConversionRequest,
    timeout_s: float,
    memory_mb: int | None,
    heartbeat: Heartbeat | None,
    pool: WorkerPool | None,
) -> ConversionResult:
    """Run workers until every variant of `request` has a result.

    With a `pool`, its workers (TensorFlow already imported) take the request; without,
    each attempt is a process of its own.
    """
    scratch = Path(request.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    crashes: dict[str, VariantResult] = {}
    attempt = 0
    worker_log = scratch / "worker-0.log"
    while True:
        request.skip = [*crashes, *_finished(request, scratch)]
        request_path = scratch / f"request-{attempt}.json"
        write_message(request_path, request)
        worker_log = scratch / f"worker-{attempt}.log"
        remaining = max(timeout_s - (time.monotonic() - started), 1.0)
        outcome = _launch(request, request_path, worker_log, remaining, memory_mb, heartbeat, pool)
        if outcome.ok or not (scratch / LOAD_FILE).exists():
            break
        crashed = _crashed_variant(request, scratch, crashes)
        if crashed is None:
            _record_evaluation_crash(scratch, outcome, worker_log)
            break
        crashes[crashed] = _crash_result(crashed, outcome, worker_log)
        attempt += 1
        if outcome.timed_out or attempt > len(request.variants):
            break
    result = _collect(request, scratch, outcome, crashes, worker_log, time.monotonic() - started)
    result.complete = outcome.ok and not crashes
    return result


def _launch(
    request: ConversionRequest,
    request_path: Path,
    worker_log: Path,
    timeout_s: float,
    memory_mb: int | None,
    heartbeat: Heartbeat | None,
    pool: WorkerPool | None,
) -> WorkerOutcome:
    """One conversion worker run of `request_path`: a pooled worker's job, or a process."""
    if pool is not None:
        return pool.run(
            PoolJob(log=str(worker_log), job=str(request_path)).model_dump_json(),
            log_path=worker_log,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            heartbeat=heartbeat,
        )
    return run_worker(
        [sys.executable, "-m", WORKER_MODULE, str(request_path)],
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        log_path=worker_log,
        cwd=Path(request.workspace),
        env=_worker_env(),
        heartbeat=heartbeat,
    )


def run_diagnosis(
    request: ConversionRequest,
    *,
    timeout_s: float,
    memory_mb: int | None,
    pool: WorkerPool | None,
) -> DiagnosisResult:
    """Per-layer error and keep_float candidates of `request.diagnose`'s variant.

    Never raises for the worker's sake: one that dies or runs out of time is a result
    that says so, and the run it diagnoses keeps its own verdict.
    """
    scratch = Path(request.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    request_path = scratch / "request.json"
    write_message(request_path, request)
    log = scratch / "worker.log"
    outcome = _launch(request, request_path, log, timeout_s, memory_mb, None, pool)
    found = read_message(scratch / DIAGNOSIS_FILE, DiagnosisResult)
    if found is not None:
        return found
    load = read_message(scratch / LOAD_FILE, LoadResult)
    if load is not None and not load.ok:
        return DiagnosisResult(ok=False, error=load.error)
    return DiagnosisResult(ok=False, error=f"the worker {_ended(outcome)}")


def _ended(outcome: WorkerOutcome) -> str:
    if outcome.timed_out:
        return "ran out of time"
    if outcome.memory_exceeded:
        return "ran out of memory"
    if outcome.signal_name:
        return f"was killed by {outcome.signal_name}"
    return f"exited with code {outcome.returncode}"


def finished_results(request: ConversionRequest, duration_s: float) -> ConversionResult:
    """The results a finished worker left in the request's scratch (restored from a cache)."""
    scratch = Path(request.scratch)
    return _collect(request, scratch, None, {}, scratch / "worker-0.log", duration_s)


def _record_evaluation_crash(scratch: Path, outcome: WorkerOutcome, log: Path) -> None:
    """The worker died while preparing evaluation data or reference outputs."""
    if (scratch / EVALUATION_STARTED).exists() and not (scratch / EVALUATION_FILE).exists():
        cause = cause_tail(log, 1)
        failure = EvaluationResult(
            ok=False,
            error=f"the conversion worker {outcome.describe()} while preparing evaluation "
            "data and reference outputs" + (f": {cause[-1]}" if cause else ""),
        )
        failure.crash_cause = outcome.cause
        write_message(scratch / EVALUATION_FILE, failure)


def _finished(request: ConversionRequest, scratch: Path) -> list[str]:
    return [v.name for v in request.variants if (scratch / variant_file(v.name, "json")).exists()]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    return env


def _crash_result(name: str, outcome: WorkerOutcome, log: Path) -> VariantResult:
    return VariantResult(
        name=name,
        ok=False,
        crash=f"the converter {outcome.describe()}",
        crash_cause=outcome.cause,
        log_lines=log_tail(log),
        duration_s=outcome.duration_s,
    )


def _collect(
    request: ConversionRequest,
    scratch: Path,
    outcome: WorkerOutcome | None,
    crashes: dict[str, VariantResult],
    worker_log: Path,
    duration: float,
) -> ConversionResult:
    what = outcome.describe() if outcome else "left no result"
    load = read_message(scratch / LOAD_FILE, LoadResult)
    if load is None:
        cause = cause_tail(worker_log, 1)
        load = LoadResult(
            ok=False,
            error=f"the conversion worker {what} while loading the model"
            + (f": {cause[-1]}" if cause else ""),
            log_lines=log_tail(worker_log),
            crash_cause=outcome.cause if outcome else None,
        )
        return ConversionResult(load, {}, None, duration, str(worker_log))
    variants: dict[str, VariantResult] = {}
    for variant in request.variants:
        result = read_message(scratch / variant_file(variant.name, "json"), VariantResult)
        if result is not None:
            result.tflite_path = _in_scratch(scratch, result.tflite_path)
            variants[variant.name] = result
        elif variant.name in crashes:
            variants[variant.name] = crashes[variant.name]
        elif load.ok:
            variants[variant.name] = VariantResult(
                name=variant.name,
                ok=False,
                crash=f"not converted: the conversion worker {what}",
                crash_cause=outcome.cause if outcome else None,
            )
    evaluation = read_message(scratch / EVALUATION_FILE, EvaluationResult)
    if evaluation is not None:
        evaluation.inputs_path = _in_scratch(scratch, evaluation.inputs_path)
        evaluation.reference_path = _in_scratch(scratch, evaluation.reference_path)
    return ConversionResult(load, variants, evaluation, duration, str(worker_log))


def _in_scratch(scratch: Path, name: str | None) -> str | None:
    return str(scratch / name) if name else None


def conversion_pool(workspace: Path, size: int, scratch: Path) -> WorkerPool:
    """Conversion workers shared by every model of a run: one TensorFlow import each.

    Their temporary files go under `scratch`, which the run removes even when a worker
    was killed before it could clean up.
    """
    temporary = scratch / "conversion-tmp"
    temporary.mkdir(parents=True, exist_ok=True)
    return WorkerPool(
        [sys.executable, "-m", WORKER_MODULE, "--serve"],
        size=size,
        cwd=workspace,
        env={**_worker_env(), "TMPDIR": str(temporary)},
        startup_log=scratch / "conversion-workers.log",
    )

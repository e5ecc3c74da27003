"""Representative data from a workspace generator, read in a worker under the model's limits.

A `.tflite` source needs no conversion worker, but a `module:function` generator is
the pull request's own code: one that never ends, or eats all memory, would hold
the gate process itself. So the samples are read in a child process (the same
`run_worker` as the converter: timeout, memory limit, cancellation) and handed
back as a sample-major `.npz`; a failure comes back as a `DataError`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from tflite_gate.model.data import (
    DataError,
    InputSignature,
    representative_samples,
    stack,
)
from tflite_gate.run.arrays import save_npz
from tflite_gate.run.protocol import (
    DataFailure,
    DataRequest,
    DataRole,
    SourceSpec,
    read_message,
    read_request,
    write_message,
)
from tflite_gate.run.workers import WorkerOutcome, cause_tail, run_worker

_SAMPLES = "samples.npz"
_ERROR = "error.json"


def needs_worker(*specs: SourceSpec | None) -> bool:
    """True when reading the data runs workspace code (a generator)."""
    return any(spec is not None and spec.kind == "generator" for spec in specs)


def worker_main(request_path: str) -> int:
    """Entry point of the data worker: samples to `samples.npz`, a DataError to `error.json`."""
    request = read_request(Path(request_path), DataRequest)
    scratch = Path(request.scratch)
    try:
        feeds = representative_samples(
            request.role,
            request.calibration,
            request.evaluation,
            request.inputs,
            samples=request.samples,
            workspace=Path(request.workspace),
        )
    except DataError as error:
        write_message(scratch / _ERROR, DataFailure(error=error.message, location=error.location))
        return 0
    save_npz(scratch / _SAMPLES, stack(feeds))
    return 0


def samples_in_worker(
    role: DataRole,
    calibration: SourceSpec | None,
    evaluation: SourceSpec | None,
    inputs: InputSignature,
    *,
    samples: int,
    workspace: Path,
    scratch: Path,
    timeout_s: float,
    memory_mb: int | None,
) -> dict[str, np.ndarray]:
    """`representative_samples` stacked sample-major, read by a worker; DataError on failure."""
    scratch.mkdir(parents=True, exist_ok=True)
    request = DataRequest(
        role=role,
        calibration=calibration,
        evaluation=evaluation,
        inputs=inputs,
        samples=samples,
        workspace=str(workspace),
        scratch=str(scratch),
    )
    request_path = scratch / "data-request.json"
    write_message(request_path, request)
    log = scratch / "data-worker.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    outcome = run_worker(
        [sys.executable, "-m", "tflite_gate.model.data_worker", str(request_path)],
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        log_path=log,
        cwd=workspace,
        env=env,
    )
    factory = next(s.factory for s in (calibration, evaluation) if s and s.factory)
    failure = read_message(scratch / _ERROR, DataFailure) if outcome.ok else None
    if failure is not None:
        raise DataError(failure.error, failure.location)
    if not outcome.ok or not (scratch / _SAMPLES).exists():
        raise DataError(f"the data generator {factory} {outcome.describe()}{_advice(outcome, log)}")
    with np.load(scratch / _SAMPLES, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _advice(outcome: WorkerOutcome, log: Path) -> str:
    if outcome.timed_out:
        return "; make it stop after the samples it needs, or raise `limits.timeout_s`"
    if outcome.memory_exceeded:
        return "; make it yield smaller samples, or raise `limits.memory_mb`"
    cause = cause_tail(log, 1)
    return f": {cause[-1]}" if cause else ""


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1]))

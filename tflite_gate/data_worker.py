"""Representative data from a workspace generator, read in a worker under the model's limits.

A `.tflite` source needs no conversion worker, but a `module:function` generator is
the pull request's own code: one that never ends, or eats all memory, would hold
the gate process itself. So the samples are read in a child process (the same
`run_worker` as the converter: timeout, memory limit, cancellation) and handed
back as a sample-major `.npz`; a failure comes back as a `DataError`.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tflite_gate.data import (
    DataError,
    InputSignature,
    SourceSpec,
    representative_samples,
    save_npz,
    stack,
)
from tflite_gate.workers import WorkerOutcome, log_tail, run_worker

_SAMPLES = "samples.npz"
_ERROR = "error.json"


def needs_worker(*specs: SourceSpec | None) -> bool:
    """True when reading the data runs workspace code (a generator)."""
    return any(spec is not None and spec.kind == "generator" for spec in specs)


def _spec(raw: dict[str, Any] | None) -> SourceSpec | None:
    return SourceSpec(**raw) if raw is not None else None


def worker_main(request_path: str) -> int:
    """Entry point of the data worker: samples to `samples.npz`, a DataError to `error.json`."""
    raw = json.loads(Path(request_path).read_text(encoding="utf-8"))
    scratch = Path(raw["scratch"])
    inputs: InputSignature = [(n, list(s), d) for n, s, d in raw["inputs"]]
    try:
        feeds = representative_samples(
            raw["role"],
            _spec(raw["calibration"]),
            _spec(raw["evaluation"]),
            inputs,
            samples=raw["samples"],
            workspace=Path(raw["workspace"]),
        )
    except DataError as error:
        failure = {"error": error.message, "location": error.location}
        (scratch / _ERROR).write_text(json.dumps(failure), encoding="utf-8")
        return 0
    save_npz(scratch / _SAMPLES, stack(feeds))
    return 0


def samples_in_worker(
    role: str,
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
    request = {
        "role": role,
        "calibration": asdict(calibration) if calibration else None,
        "evaluation": asdict(evaluation) if evaluation else None,
        "inputs": inputs,
        "samples": samples,
        "workspace": str(workspace),
        "scratch": str(scratch),
    }
    request_path = scratch / "data-request.json"
    request_path.write_text(json.dumps(request), encoding="utf-8")
    log = scratch / "data-worker.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    outcome = run_worker(
        [sys.executable, "-m", "tflite_gate.data_worker", str(request_path)],
        timeout_s=timeout_s,
        memory_mb=memory_mb,
        log_path=log,
        cwd=workspace,
        env=env,
    )
    factory = next(s.factory for s in (calibration, evaluation) if s and s.factory)
    if outcome.ok and (scratch / _ERROR).exists():
        failure = json.loads((scratch / _ERROR).read_text(encoding="utf-8"))
        where = failure.get("location")
        raise DataError(failure["error"], (where[0], int(where[1])) if where else None)
    if not outcome.ok or not (scratch / _SAMPLES).exists():
        raise DataError(f"the data generator {factory} {outcome.describe()}{_advice(outcome, log)}")
    with np.load(scratch / _SAMPLES, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _advice(outcome: WorkerOutcome, log: Path) -> str:
    if outcome.timed_out:
        return "; make it stop after the samples it needs, or raise `limits.timeout_s`"
    if outcome.memory_exceeded:
        return "; make it yield smaller samples, or raise `limits.memory_mb`"
    tail = log_tail(log, 3)
    return f": {tail[-1]}" if tail else ""


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1]))

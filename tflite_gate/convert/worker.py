"""The conversion worker: what runs inside the TensorFlow process.

The gate starts it as `python -m tflite_gate.convert.worker REQUEST` (one request)
or `... --serve FD` (a pooled worker that imports TensorFlow once and takes jobs on
stdin). It loads the model once, then converts variant after variant, computes the
evaluation data and reference outputs, or diagnoses a variant, and leaves each
result in its scratch as soon as it has it (`convert.scratch`): a variant that
kills the process loses only itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from tflite_gate.convert.diagnosis import diagnose
from tflite_gate.convert.log import interesting_log_lines, output_to
from tflite_gate.convert.scratch import (
    DEPENDENCIES_FILE,
    DIAGNOSIS_FILE,
    EVALUATION_FILE,
    EVALUATION_INPUTS_FILE,
    EVALUATION_STARTED,
    LOAD_FILE,
    REFERENCE_OUTPUTS_FILE,
    variant_file,
)
from tflite_gate.convert.variants import convert_variant, request_samples
from tflite_gate.model.loader import PreparedModel, load_as_saved_model
from tflite_gate.model.sources import SourceError, written_by
from tflite_gate.model.workspace_code import WorkspaceReads, missing_module
from tflite_gate.run.protocol import (
    ConversionRequest,
    Dependencies,
    DiagnosisResult,
    EvaluationResult,
    LoadResult,
    PoolJob,
    read_request,
    write_message,
)
from tflite_gate.support.files import failure_errno


def _reference_outputs(prepared: PreparedModel, feeds: list[dict[str, Any]]) -> dict[str, Any]:
    """The source model's outputs, batched: one signature call per chunk, never per sample.

    Samples are concatenated on the batch axis when every input's batch is dynamic;
    a model with a fixed batch is called once per sample (still a traced graph).
    """
    import numpy as np
    import tensorflow as tf

    function = tf.saved_model.load(str(prepared.saved_model_dir)).signatures[prepared.signature_key]
    batchable = all(spec.shape and spec.shape[0] is None for spec in prepared.inputs)
    size = 64 if batchable else 1
    pieces: dict[str, list[Any]] = {}
    for start in range(0, len(feeds), size):
        chunk = feeds[start : start + size]
        arguments = {
            name: tf.constant(np.concatenate([feed[name] for feed in chunk])) for name in chunk[0]
        }
        for name, value in function(**arguments).items():
            array = value.numpy()
            split = [array[i : i + 1] for i in range(len(chunk))] if batchable else [array]
            pieces.setdefault(name, []).extend(split)
    return {name: np.stack(values) for name, values in pieces.items()}


def _evaluate(
    request: ConversionRequest, prepared: PreparedModel, scratch: Path
) -> EvaluationResult:
    """Evaluation samples and reference outputs, written for the interpreter workers."""
    from tflite_gate.model.data import DataError, stack
    from tflite_gate.run.arrays import save_npz

    started = time.monotonic()
    names = prepared.data_names  # a .tflite's reference: the data uses the .tflite's names
    specs = [
        spec.model_copy(update={"name": names.get(spec.name, spec.name)})
        for spec in prepared.inputs
    ]
    try:
        feeds = request_samples(request, specs, "evaluation")
    except DataError as exc:
        return EvaluationResult(ok=False, error=exc.message, location=exc.location)
    inputs_path = scratch / EVALUATION_INPUTS_FILE
    save_npz(inputs_path, stack(feeds))
    own = {data: name for name, data in names.items()}
    try:
        with output_to(scratch / "reference.log"):
            reference = _reference_outputs(
                prepared, [{own.get(name, name): v for name, v in feed.items()} for feed in feeds]
            )
    except Exception as exc:
        text = str(exc).strip().splitlines()
        return EvaluationResult(
            ok=False,
            error=f"the source model failed on the evaluation data: {type(exc).__name__}: "
            f"{text[0] if text else ''}",
        )
    reference_path = scratch / REFERENCE_OUTPUTS_FILE
    save_npz(reference_path, reference)
    return EvaluationResult(
        ok=True,
        inputs_path=inputs_path.name,
        reference_path=reference_path.name,
        samples=len(feeds),
        outputs=sorted(reference),
        duration_s=time.monotonic() - started,
    )


def _load(request: ConversionRequest, scratch: Path) -> tuple[LoadResult, PreparedModel | None]:
    log = scratch / "load.log"
    kind = request.source_kind
    path = Path(request.source_path) if request.source_path else None
    recorded = written_by(kind, path) if path is not None else None
    try:
        with output_to(log):
            prepared = load_as_saved_model(
                kind=kind,
                source=request.source,
                path=path,
                workspace=Path(request.workspace),
                scratch=scratch,
                input_shapes=request.input_shapes,
                signature=request.signature,
                safe_mode=request.safe_mode,
                input_map=request.input_map,
            )
    except SourceError as exc:
        return LoadResult(
            ok=False,
            error=exc.message,
            location=exc.location,
            policy_key=exc.policy_key,
            missing_module=exc.missing_module,
            written_by=recorded,
        ), None
    except Exception as exc:
        text = str(exc).strip().splitlines()
        error = f"{type(exc).__name__}: {text[0] if text else ''}"
        return LoadResult(
            ok=False,
            error=error,
            missing_module=missing_module(exc),
            errno=failure_errno(exc, scratch),
            written_by=recorded,
        ), None
    return LoadResult(
        ok=True,
        written_by=recorded,
        inputs=prepared.inputs,
        log_lines=interesting_log_lines(log.read_text(errors="replace")),
    ), prepared


def worker_main(request_path: str) -> int:
    """Entry point of the conversion worker process."""
    request = read_request(Path(request_path), ConversionRequest)
    scratch = Path(request.scratch)
    reads = WorkspaceReads(Path(request.workspace), scratch=scratch)
    reads.start()
    load, prepared = _load(request, scratch)
    write_message(scratch / LOAD_FILE, load)
    if prepared is None:
        return 0
    if request.diagnose is not None:
        try:
            diagnosis = diagnose(request, prepared, scratch)
        except Exception as exc:  # the diagnosis of a failure must not hide the failure
            last = (str(exc).strip().splitlines() or [""])[-1][:500]
            diagnosis = DiagnosisResult(ok=False, error=f"{type(exc).__name__}: {last}")
        write_message(scratch / DIAGNOSIS_FILE, diagnosis)
        return 0
    for variant in request.variants:
        if variant.name in request.skip:
            continue
        (scratch / variant_file(variant.name, "started")).touch()
        result = convert_variant(
            request,
            prepared.saved_model_dir,
            prepared.signature_key,
            variant,
            prepared.inputs,
            scratch,
            prepared.layer_sites,
        )
        write_message(scratch / variant_file(variant.name, "json"), result)
    if request.reference and not (scratch / EVALUATION_FILE).exists():
        (scratch / EVALUATION_STARTED).touch()
        write_message(scratch / EVALUATION_FILE, _evaluate(request, prepared, scratch))
    used = Dependencies(files=reads.files(), packages=reads.packages())
    write_message(scratch / DEPENDENCIES_FILE, used)
    return 0


def serve(control_fd: int) -> int:
    """Entry point of a pooled conversion worker: TensorFlow imported once, then jobs.

    Each job is a line `{"log": PATH, "job": REQUEST}` on stdin; while it runs, the
    process's output goes to its log, and "done" on `control_fd` says it finished.
    A job that raises ends the worker, as a one-job worker would end.
    """
    import tensorflow  # noqa: F401  (the import every job would otherwise pay)

    for line in sys.stdin:
        job = PoolJob.model_validate_json(line)
        with output_to(Path(job.log), (1, 2)):
            _fresh_keras_state()
            worker_main(job.job)
        os.write(control_fd, b"done\n")
    return 0


def _fresh_keras_state() -> None:
    """Layer names and global settings from an earlier job must not reach this one."""
    for name in ("keras", "tf_keras"):
        module = sys.modules.get(name)
        if module is not None:
            with contextlib.suppress(Exception):
                module.backend.clear_session()


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        raise SystemExit(serve(int(sys.argv[2])))
    raise SystemExit(worker_main(sys.argv[1]))

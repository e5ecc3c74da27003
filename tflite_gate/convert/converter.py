"""Convert a model into its variants, inside a worker process.

The parent side (`convert_model`) writes a request, runs this module as a
worker (`python -m tflite_gate.convert.converter REQUEST`) under time and memory limits,
and reads back what each variant produced. The worker loads the model once,
then converts variant after variant, capturing file descriptor 2 for each
(the converter logs through C++ straight to it) and the structured
`ConverterError.errors`. A variant that kills the worker is recorded as failed
and a fresh worker carries on with the rest.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tflite_gate.findings import Location
from tflite_gate.model.workspace_code import LayerSites, WorkspaceReads, missing_module
from tflite_gate.report.model import ConverterError
from tflite_gate.run.protocol import (
    Candidate,
    ConversionRequest,
    Dependencies,
    DiagnosisResult,
    EvaluationResult,
    KeepFloat,
    LoadResult,
    PoolJob,
    TensorSpec,
    VariantRequest,
    VariantResult,
    read_message,
    read_request,
    write_message,
)
from tflite_gate.run.workers import WorkerOutcome, WorkerPool, cause_tail, log_tail, run_worker
from tflite_gate.support.files import failure_errno

# What a finished worker leaves in its scratch, and all a cached conversion keeps.
DEPENDENCIES_FILE = "dependencies.json"
DIAGNOSIS_FILE = "diagnosis.json"


@dataclass
class ConversionResult:
    load: LoadResult
    variants: dict[str, VariantResult]
    evaluation: EvaluationResult | None
    duration_s: float
    worker_log: str
    # One worker ran to its end: every result is its own, none stands for a crash or a
    # timeout (what may be kept and reused).
    complete: bool = False


# --------------------------------------------------------------------------- log filtering

_ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ (?P<where>[\w./-]+:\d+)\] ")
_NOISE = (
    "Ignored output_format",
    "Ignored drop_control_dependency",
    "cpu_feature_guard",
    "absl::InitializeLog",
    "To enable the following instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
    "failed call to cuInit",
    "Could not find cuda drivers",
    "oneDNN custom operations are on",
    "Unable to register cu",
    "Skipping runtime version metadata in the model",
)
_SIGNAL = re.compile(
    r"flex|select tf|custom op|resource|fall(s|ing)? ?back|not quantized|quantiz\w* (is )?"
    r"(skipped|failed|not supported)|unsupported|not supported|will not be|won't be",
    re.IGNORECASE,
)


_STANDALONE = re.compile(r"^(\S+\.py:\d+: \w*Warning|WARNING:|Traceback|Saved artifact)")


def _records(text: str) -> list[tuple[str, str]]:
    """Group the log into (level, message) records.

    A C++ log message may span lines ("...Select TFop(s):\nFlex ops: FlexFoo\nDetails:");
    lines after an absl-prefixed line belong to it unless they start something else
    (a Python warning, a traceback).
    """
    records: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _ABSL_PREFIX.match(line)
        if match:
            records.append((line[0], f"{match['where']}: {line[match.end() :]}"))
        elif records and records[-1][0] and not _STANDALONE.match(line):
            level, message = records[-1]
            records[-1] = (level, f"{message}\n{line}")
        else:
            records.append(("", line))
    return records


def interesting_log_lines(text: str) -> list[str]:
    """Converter messages worth a user's look: Flex/custom/resource ops, float fallbacks."""
    kept: list[str] = []
    for level, message in _records(text):
        message = message.rstrip()
        if not message or any(noise in message for noise in _NOISE):
            continue
        if (level in {"W", "E"} or _SIGNAL.search(message)) and message not in kept:
            kept.append(message)
    return kept


# --------------------------------------------------------------------------- worker side


@contextlib.contextmanager
def _descriptors_to(path: Path, descriptors: tuple[int, ...] = (2,)) -> Iterator[None]:
    """`descriptors` (stderr by default: the converter's C++ log) into `path`, then back."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in descriptors]
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd in descriptors:
        os.dup2(target, fd)
    os.close(target)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(descriptors, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


# The files of a worker's results (what `_collect` reads), as opposed to its logs,
# requests and intermediate SavedModel.
RESULT_FILE = re.compile(
    r"^(load\.json|evaluation\.json|evaluation-inputs\.npz|reference-outputs\.npz"
    r"|variant-.+\.(json|tflite))$"
)


# Where a converter message turns from what failed to what to try.
_ADVICE_START = re.compile(
    r"\b(?:please consider|consider|try|you (?:can|may|should|need)|see instructions"
    r"|for example)\b",
    re.IGNORECASE,
)
_MAX_ADVICE_LINES = 8
# MLIR's own dump of the failing operation and the error code: not advice for a user
# (the op and the code are reported in their own fields).
_NOT_ADVICE = re.compile(r"^(see current operation:|Error code:)", re.IGNORECASE)


def split_converter_message(text: str) -> tuple[str, list[str]]:
    """A converter error message as (what failed, the converter's advice lines).

    The converter packs its advice behind the first sentence ("Lowering tensor list
    ops is failed. Please consider using Select TF ops ...") and separates lines with
    real or escaped newlines; keeping only the first line loses what to do.
    """
    lines = [line.strip() for line in text.replace("\\n", "\n").splitlines() if line.strip()]
    if not lines:
        return "", []
    first, rest = lines[0], lines[1:]
    start = _ADVICE_START.search(first)
    if start is not None and start.start() > 0:
        rest = [first[start.start() :].strip(), *rest]
        first = first[: start.start()].strip()
    advice = [line for line in rest if not _NOT_ADVICE.match(line)]
    return first, advice[:_MAX_ADVICE_LINES]


def _converter_errors(
    exc: BaseException, workspace: Path, layer_sites: LayerSites
) -> list[ConverterError]:
    """The converter's structured errors, each at the workspace line that made its op: from
    the op's creation stack, else from the Keras layer its name says it belongs to."""
    from tflite_gate.model.workspace_code import layer_site, workspace_frame

    found: list[ConverterError] = []
    for error in getattr(exc, "errors", None) or []:
        code = type(error).ErrorCode.Name(error.error_code) if error.error_code else None
        frames = [(c.source.filename, c.source.line) for c in error.location.call]
        frame = workspace_frame(frames, workspace) or layer_site(
            (c.name for c in error.location.call if c.name), layer_sites
        )
        message, advice = split_converter_message(error.error_message or "")
        if not message:
            message, advice = split_converter_message(str(exc))
        entry = ConverterError(
            code=code,
            op=error.operator.name or None,
            message=message,
            advice=advice,
            location=Location(path=frame[0], line=frame[1]) if frame else None,
        )
        if entry not in found:
            found.append(entry)
    if not found:
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        found.append(ConverterError(message=lines[-1] if lines else type(exc).__name__))
    return found


def _make_converter(
    request: ConversionRequest,
    saved: Path,
    key: str,
    variant: VariantRequest,
    calibration: list[dict[str, Any]] | None,
    select_tf_ops: bool,
) -> Any:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[key])
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    quantization = variant.quantization
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization in {"int8", "int16x8"}:
        samples = calibration or []
        converter.representative_dataset = lambda: iter(samples)
        ops = (
            [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if quantization == "int8"
            else [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        )
        io_type = {"int8": tf.int8, "uint8": tf.uint8, "int16": tf.int16}.get(variant.io)
        if io_type is not None:
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
    if select_tf_ops:
        ops = [*ops, tf.lite.OpsSet.SELECT_TF_OPS]
        if tf.lite.OpsSet.TFLITE_BUILTINS not in ops:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    converter.target_spec.supported_ops = ops
    converter.allow_custom_ops = request.allow_custom_ops
    return converter


def _samples(
    request: ConversionRequest, inputs: list[TensorSpec], role: str
) -> list[dict[str, Any]]:
    from tflite_gate.model.data import representative_samples

    return representative_samples(
        role,
        request.calibration,
        request.evaluation,
        inputs,
        samples=request.samples,
        workspace=Path(request.workspace),
    )


def _convert_variant(
    request: ConversionRequest,
    saved: Path,
    key: str,
    variant: VariantRequest,
    inputs: list[TensorSpec],
    scratch: Path,
    layer_sites: LayerSites,
) -> VariantResult:
    started = time.monotonic()
    result = VariantResult(name=variant.name, ok=False)
    log = scratch / f"variant-{variant.name}.log"
    calibration = None
    if variant.quantization in {"int8", "int16x8"}:
        from tflite_gate.model.data import DataError

        try:
            calibration = _samples(request, inputs, "calibration")
        except DataError as exc:
            result.data_error = exc.message
            result.data_location = exc.location
            result.duration_s = time.monotonic() - started
            return result
    workspace = Path(request.workspace)
    try:
        with _descriptors_to(log):
            converter = _make_converter(
                request, saved, key, variant, calibration, request.select_tf_ops
            )
            if variant.keep_float is None:
                blob = converter.convert()
            else:
                blob = _quantized(_calibrated(converter), converter, variant, variant.keep_float)
    except Exception as exc:
        result.errors = _converter_errors(exc, workspace, layer_sites)
    else:
        target = scratch / f"variant-{variant.name}.tflite"
        target.write_bytes(blob)
        result.ok = True
        result.tflite_path = target.name  # relative to scratch: results can move (the cache)
    result.log_lines = interesting_log_lines(log.read_text(errors="replace"))
    result.duration_s = time.monotonic() - started
    return result


def _calibrated(converter: Any) -> bytes:
    """The float model with the calibration statistics the quantizer starts from."""
    converter._experimental_calibrate_only = True
    calibrated: bytes = converter.convert()
    return calibrated


def _quantized(
    calibrated: bytes,
    converter: Any,
    variant: VariantRequest,
    keep: KeepFloat,
    *,
    numeric_verify: bool = False,
) -> bytes:
    """Full-integer quantization of a calibrated model, with `keep` left in float.

    The converter's own MLIR quantizer call (TensorFlow's `lite.py`), plus the
    denylists `tf.lite.experimental.QuantizationDebugger` passes. Names the quantizer
    does not know would be ignored without a word: they are refused first. With
    `numeric_verify`, the debugger's model: each quantized op beside its float op on
    the same inputs (`layer_errors` reads what each op made).
    """
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    _refuse_unknown(calibrated, keep)
    io = {"int8": tf.int8, "uint8": tf.uint8}.get(variant.io, tf.float32)
    quantized: bytes = mlir_quantize(
        calibrated,
        converter._experimental_disable_per_channel,
        input_data_type=io,
        output_data_type=io,
        enable_numeric_verify=numeric_verify,
        denylisted_ops=keep.ops or None,
        denylisted_nodes=keep.nodes or None,
        disable_per_channel_for_dense_layers=(
            converter._experimental_disable_per_channel_quantization_for_dense_layers
        ),
    )
    return quantized


class UnknownKeepFloat(ValueError):  # noqa: N818 -- a converter error, reported as such
    """keep_float names a tensor or an op the model does not have."""


def _refuse_unknown(calibrated: bytes, keep: KeepFloat) -> None:
    from tflite_gate.tflite.facts import tensor_and_op_names

    names, ops = tensor_and_op_names(calibrated)
    for name in keep.nodes:
        if name not in names:
            close = ", ".join(difflib.get_close_matches(name, sorted(names), n=3)) or "none close"
            raise UnknownKeepFloat(
                f"keep_float.nodes: {name!r} is not a tensor of the converted model "
                f"(closest: {close}); name op outputs as the report's layers list them"
            )
    for op in keep.ops:
        if op not in ops:
            raise UnknownKeepFloat(
                f"keep_float.ops: {op!r} is not an op of the converted model; it has "
                f"{', '.join(sorted(ops))}"
            )


Requantize = Callable[[KeepFloat, bool], bytes]
"""(ops left in float, numeric_verify) → the calibrated twin quantized again."""


def _float_twin(
    request: ConversionRequest, prepared: Any, variant: VariantRequest, log: Path
) -> tuple[bytes, Requantize | None]:
    """The float model to compare the variant with, and how to quantize it again.

    For int8 the twin is the calibrated model the quantizer starts from (every op
    output has a namesake, and keep_float candidates come from the same calibration).
    Dynamic-range and int16x8 variants are compared with a float conversion of the
    same model; the converter cannot leave their ops float, so there is no requantize.
    """
    saved, key, select = prepared.saved_model_dir, prepared.signature_key, request.select_tf_ops
    with _descriptors_to(log):
        if variant.quantization == "int8":
            calibration = _samples(request, prepared.inputs, "calibration")
            converter = _make_converter(request, saved, key, variant, calibration, select)
            calibrated = _calibrated(converter)

            def requantize(keep: KeepFloat, numeric_verify: bool) -> bytes:
                return _quantized(
                    calibrated, converter, variant, keep, numeric_verify=numeric_verify
                )

            return calibrated, requantize
        as_float = VariantRequest(name=variant.name, quantization="none")
        twin: bytes = _make_converter(request, saved, key, as_float, None, select).convert()
        return twin, None


def _diagnose(request: ConversionRequest, prepared: Any, scratch: Path) -> DiagnosisResult:
    """Per-layer error of a quantized variant, and keep_float candidates to verify (int8)."""
    from tflite_gate.convert.layer_errors import keep_float_candidates, measure, rank

    assert request.diagnose is not None
    started = time.monotonic()
    order = request.diagnose
    log = scratch / "diagnosis.log"
    twin, requantize = _float_twin(request, prepared, order.variant, log)
    quantized = Path(order.model).read_bytes()  # the variant as checked, not a new conversion
    kept = order.variant.keep_float or KeepFloat()
    with _descriptors_to(log):
        verify = requantize(kept, True) if requantize is not None else None
    tensors = measure(twin, quantized, _stored_samples(Path(order.inputs)), verify)
    layers = rank(tensors, order.top)
    candidates: list[Candidate] = []
    for keep in keep_float_candidates(tensors, layers, order.candidates, kept):
        if requantize is None:
            break
        target = scratch / f"candidate-{len(candidates)}.tflite"
        with _descriptors_to(log):
            target.write_bytes(requantize(keep, False))
        candidates.append(Candidate(nodes=keep.nodes, ops=keep.ops, tflite_path=target.name))
    return DiagnosisResult(
        ok=True, layers=layers, candidates=candidates, duration_s=time.monotonic() - started
    )


def _stored_samples(path: Path) -> list[dict[str, Any]]:
    """One feed dict per sample of a sample-major .npz."""
    import numpy as np

    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}  # each access reads the file
    count = len(next(iter(arrays.values()))) if arrays else 0
    return [{name: array[i : i + 1] for name, array in arrays.items()} for i in range(count)]


def _reference_outputs(prepared: Any, feeds: list[dict[str, Any]]) -> dict[str, Any]:
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


def _evaluate(request: ConversionRequest, prepared: Any, scratch: Path) -> EvaluationResult:
    """Evaluation samples and reference outputs, written for the interpreter workers."""

    from tflite_gate.model.data import DataError, save_npz, stack

    started = time.monotonic()
    names = prepared.data_names  # a .tflite's reference: the data uses the .tflite's names
    specs = [
        spec.model_copy(update={"name": names.get(spec.name, spec.name)})
        for spec in prepared.inputs
    ]
    try:
        feeds = _samples(request, specs, "evaluation")
    except DataError as exc:
        return EvaluationResult(ok=False, error=exc.message, location=exc.location)
    inputs_path = scratch / "evaluation-inputs.npz"
    save_npz(inputs_path, stack(feeds))
    own = {data: name for name, data in names.items()}
    try:
        with _descriptors_to(scratch / "reference.log"):
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
    reference_path = scratch / "reference-outputs.npz"
    save_npz(reference_path, reference)
    return EvaluationResult(
        ok=True,
        inputs_path=inputs_path.name,
        reference_path=reference_path.name,
        samples=len(feeds),
        outputs=sorted(reference),
        duration_s=time.monotonic() - started,
    )


def _load(request: ConversionRequest, scratch: Path) -> tuple[LoadResult, Any]:
    from tflite_gate.model.sources import SourceError, load_as_saved_model, written_by

    log = scratch / "load.log"
    kind = request.source_kind
    path = Path(request.source_path) if request.source_path else None
    recorded = written_by(kind, path) if path is not None else None
    try:
        with _descriptors_to(log):
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
    write_message(scratch / "load.json", load)
    if prepared is None:
        return 0
    if request.diagnose is not None:
        try:
            diagnosis = _diagnose(request, prepared, scratch)
        except Exception as exc:  # the diagnosis of a failure must not hide the failure
            last = (str(exc).strip().splitlines() or [""])[-1][:500]
            diagnosis = DiagnosisResult(ok=False, error=f"{type(exc).__name__}: {last}")
        write_message(scratch / DIAGNOSIS_FILE, diagnosis)
        return 0
    for variant in request.variants:
        if variant.name in request.skip:
            continue
        (scratch / f"variant-{variant.name}.started").touch()
        result = _convert_variant(
            request,
            prepared.saved_model_dir,
            prepared.signature_key,
            variant,
            prepared.inputs,
            scratch,
            prepared.layer_sites,
        )
        write_message(scratch / f"variant-{variant.name}.json", result)
    if request.reference and not (scratch / "evaluation.json").exists():
        (scratch / "evaluation.started").touch()
        write_message(scratch / "evaluation.json", _evaluate(request, prepared, scratch))
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
        with _descriptors_to(Path(job.log), (1, 2)):
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


# --------------------------------------------------------------------------- parent side


def _crashed_variant(
    request: ConversionRequest, scratch: Path, known: dict[str, VariantResult]
) -> str | None:
    """The variant the worker was converting when it died (one not already known)."""
    for variant in request.variants:
        if variant.name in known:
            continue
        started = (scratch / f"variant-{variant.name}.started").exists()
        done = (scratch / f"variant-{variant.name}.json").exists()
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

    With `jobs` > 1 the variants are split over that many workers running at once,
    each loading the model itself, and the last (with the fewest variants) also
    computes the evaluation data and reference outputs. Their results are joined
    into the request's scratch as one worker would have left them.
    """
    parts = _parts(request, jobs)
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


def _parts(request: ConversionRequest, jobs: int) -> list[ConversionRequest]:
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
        if outcome.ok or not (scratch / "load.json").exists():
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
        [sys.executable, "-m", "tflite_gate.convert.converter", str(request_path)],
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
    load = read_message(scratch / "load.json", LoadResult)
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
    if (scratch / "evaluation.started").exists() and not (scratch / "evaluation.json").exists():
        cause = cause_tail(log, 1)
        failure = EvaluationResult(
            ok=False,
            error=f"the conversion worker {outcome.describe()} while preparing evaluation "
            "data and reference outputs" + (f": {cause[-1]}" if cause else ""),
        )
        failure.crash_cause = outcome.cause
        write_message(scratch / "evaluation.json", failure)


def _finished(request: ConversionRequest, scratch: Path) -> list[str]:
    return [v.name for v in request.variants if (scratch / f"variant-{v.name}.json").exists()]


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
    load = read_message(scratch / "load.json", LoadResult)
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
        result = read_message(scratch / f"variant-{variant.name}.json", VariantResult)
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
    evaluation = read_message(scratch / "evaluation.json", EvaluationResult)
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
        [sys.executable, "-m", "tflite_gate.convert.converter", "--serve"],
        size=size,
        cwd=workspace,
        env={**_worker_env(), "TMPDIR": str(temporary)},
        startup_log=scratch / "conversion-workers.log",
    )


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        raise SystemExit(serve(int(sys.argv[2])))
    raise SystemExit(worker_main(sys.argv[1]))

"""Inside the conversion worker: one variant converted, with the converter's own words.

Each variant gets a `TFLiteConverter` of its own from the prepared SavedModel; its
C++ log goes to the variant's log file and a `ConverterError` becomes structured
errors at the workspace line that made the failing op. A `keep_float` variant is
calibrated, then quantized by the converter's MLIR quantizer with those ops and
tensors left in float.
"""

from __future__ import annotations

import difflib
import time
from pathlib import Path
from typing import Any

from tflite_gate.convert.log import interesting_log_lines, output_to, split_converter_message
from tflite_gate.convert.scratch import variant_file
from tflite_gate.findings import Location
from tflite_gate.model.workspace_code import LayerSites
from tflite_gate.report.model import ConverterError
from tflite_gate.run.protocol import (
    ConversionRequest,
    KeepFloat,
    TensorSpec,
    VariantRequest,
    VariantResult,
)


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


def make_converter(
    request: ConversionRequest,
    saved: Path,
    key: str,
    variant: VariantRequest,
    calibration: list[dict[str, Any]] | None,
    select_tf_ops: bool,
) -> Any:
    """A `TFLiteConverter` set up for `variant`: its quantization, I/O type and op sets.

    One per variant (and per trial of a diagnosis): a converter keeps its settings, so
    reusing one would carry a variant's options into the next.
    """
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


def request_samples(
    request: ConversionRequest, inputs: list[TensorSpec], role: str
) -> list[dict[str, Any]]:
    """The request's calibration or evaluation samples for `inputs`, as feed dicts."""
    from tflite_gate.model.data import representative_samples

    return representative_samples(
        role,
        request.calibration,
        request.evaluation,
        inputs,
        samples=request.samples,
        workspace=Path(request.workspace),
    )


def convert_variant(
    request: ConversionRequest,
    saved: Path,
    key: str,
    variant: VariantRequest,
    inputs: list[TensorSpec],
    scratch: Path,
    layer_sites: LayerSites,
) -> VariantResult:
    """Convert one variant, its log captured; a converter failure is a result, not a raise."""
    started = time.monotonic()
    result = VariantResult(name=variant.name, ok=False)
    log = scratch / variant_file(variant.name, "log")
    calibration = None
    if variant.quantization in {"int8", "int16x8"}:
        from tflite_gate.model.data import DataError

        try:
            calibration = request_samples(request, inputs, "calibration")
        except DataError as exc:
            result.data_error = exc.message
            result.data_location = exc.location
            result.duration_s = time.monotonic() - started
            return result
    workspace = Path(request.workspace)
    try:
        with output_to(log):
            converter = make_converter(
                request, saved, key, variant, calibration, request.select_tf_ops
            )
            if variant.keep_float is None:
                blob = converter.convert()
            else:
                blob = quantized_model(
                    calibrated_model(converter), converter, variant, variant.keep_float
                )
    except Exception as exc:
        result.errors = _converter_errors(exc, workspace, layer_sites)
    else:
        target = scratch / variant_file(variant.name, "tflite")
        target.write_bytes(blob)
        result.ok = True
        result.tflite_path = target.name  # relative to scratch: results can move (the cache)
    result.log_lines = interesting_log_lines(log.read_text(errors="replace"))
    result.duration_s = time.monotonic() - started
    return result


def calibrated_model(converter: Any) -> bytes:
    """The float model with the calibration statistics the quantizer starts from."""
    converter._experimental_calibrate_only = True
    calibrated: bytes = converter.convert()
    return calibrated


def quantized_model(
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

    refuse_unknown(calibrated, keep)
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


def refuse_unknown(calibrated: bytes, keep: KeepFloat) -> None:
    """Raise `UnknownKeepFloat` for a name `keep` gives that `calibrated` does not have.

    The quantizer ignores unknown names without a word, so a typo would quietly
    quantize what the user meant to keep in float.
    """
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

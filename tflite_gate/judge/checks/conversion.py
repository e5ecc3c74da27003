"""Converter failures and warnings, each led by what to do, at the user's line of
model code where the converter leads back to one.
"""

from __future__ import annotations

import re
from typing import Any

from tflite_gate.findings import Finding, Location
from tflite_gate.judge.checks.common import (
    crash_location,
    fixed_batch_hint,
    limit_action,
    setting_location,
)
from tflite_gate.judge.checks.data import data_location
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import (
    ConverterError,
    TensorInfo,
    VariantReport,
)
from tflite_gate.rules import make_finding
from tflite_gate.run.protocol import VariantResult


def _flex_name(tf_op: str | None) -> str | None:
    return f"Flex{tf_op.removeprefix('tf.')}" if tf_op else None


def _is_tensor_list(error: ConverterError) -> bool:
    text = " ".join([error.op or "", error.message, *error.advice])
    return "TensorList" in text or "tensor list" in text or "element_shape" in text


def _at(location: Location | None) -> str:
    return f" at {location}" if location is not None else ""


def _ops_named(errors: list[ConverterError]) -> str:
    return ", ".join(dict.fromkeys(e.op for e in errors if e.op)) or "ops"


def _tensor_list_finding(
    config: ModelConfig,
    variant: VariantReport,
    errors: list[ConverterError],
    inputs: list[TensorInfo],
) -> Finding:
    """An RNN's TensorList ops that cannot be lowered: usually a dynamic batch.

    It is annotated at the line that made the ops (the RNN layer) where the converter's
    errors lead back to one, else at the policy's `input_shapes` or `source`.
    """
    static = next((e.message for e in errors if "element_shape" in e.message), errors[0].message)
    ops = _ops_named([e for e in errors if "TensorList" in (e.op or "")] or errors)
    flex = "or set ops.select_tf_ops: true if the app links the Flex delegate"
    hint = fixed_batch_hint(inputs)
    if hint is not None:
        action = f"{hint}, {flex}"
        cause = f"the batch is dynamic, so the TensorList ops {ops} have no static element shape"
    else:
        action = (
            "set ops.select_tf_ops: true if the app links the Flex delegate (the TensorList "
            "ops then run as Flex ops; the converter's `_experimental_lower_tensor_list_ops"
            "=False` is not needed), or give every element of the tensor list one static shape"
        )
        cause = f"the TensorList ops {ops} have no static element shape"
    location = next(
        (e.location for e in errors if e.location is not None),
        config.key_locations.get("input_shapes", config.source_location),
    )
    return make_finding(
        "conversion-failed",
        f"{config.name}/{variant.name}: {action}: {cause} (converter: {static})",
        location=location,
        details={
            "cause": "dynamic-batch" if hint else "tensor-list",
            "errors": [error.model_dump(mode="json") for error in errors],
        },
        hint=hint,
        model=config.name,
        variant=variant.name,
    )


# TensorFlow's text ops (and the ragged ops that splitting text makes): TFLite has no
# builtin for any of them, only Select TF ops.
_TEXT_OP = re.compile(r"^tf\.(String|StaticRegex|Regex|Unicode|Substr|Ragged)")


def _is_text_op(error: ConverterError, inputs: list[TensorInfo]) -> bool:
    """A Flex-only text op in a model that takes strings (text preprocessing in the model)."""
    takes_text = any(tensor.dtype == "string" for tensor in inputs)
    needs_flex = error.code == "ERROR_NEEDS_FLEX_OPS"
    return takes_text and needs_flex and bool(_TEXT_OP.match(error.op or ""))


def _text_ops_finding(
    config: ModelConfig, variant: VariantReport, errors: list[ConverterError]
) -> Finding:
    """Text preprocessing inside a string-input model: no builtin-only model can be made."""
    ops = _ops_named(errors)
    flex = ", ".join(dict.fromkeys(f for e in errors if (f := _flex_name(e.op))))
    location = next((e.location for e in errors if e.location is not None), None)
    return make_finding(
        "flex-op",
        f"{config.name}/{variant.name}: standardize and split the text in the app and feed "
        "the tokens (StringLookup, or TextVectorization with standardize=None and "
        "split=None, convert to builtins), or set ops.select_tf_ops: true if the app links "
        "the Flex delegate: this string-input model cannot be converted to a builtin-only "
        f"TFLite model: {ops}{_at(location)} have no TFLite builtin, only Select TF ops "
        f"({flex}); conversion failed",
        location=location or setting_location(config.select_tf_ops, config),
        details={
            "cause": "text-ops",
            "flex_ops": flex.split(", "),
            "errors": [error.model_dump(mode="json") for error in errors],
        },
        model=config.name,
        variant=variant.name,
    )


def _error_finding(config: ModelConfig, variant: VariantReport, error: ConverterError) -> Finding:
    """One converter error, led by what to do about it."""
    op, code = error.op, error.code
    code_location = error.location
    message, advice = error.message, error.advice
    details = {"error_code": code, "converter": message, "advice": advice}
    common: dict[str, Any] = {"model": config.name, "variant": variant.name, "op": op}
    flex = _flex_name(str(op)) if op else None
    if flex and code == "ERROR_NEEDS_FLEX_OPS":
        return make_finding(
            "flex-op",
            f"{config.name}/{variant.name}: set ops.select_tf_ops: true if the app links the "
            f"Flex delegate, or replace {op}{_at(code_location)}: it has no TFLite builtin, "
            f"only a Select TF op ({flex}); conversion failed",
            location=code_location or setting_location(config.select_tf_ops, config),
            details=details,
            flex_op=flex,
            **common,
        )
    if op and code == "ERROR_NEEDS_CUSTOM_OPS":
        what = (
            f"implement {op} as a custom op and list it in ops.custom, or replace it"
            f"{_at(code_location)}: it is neither a TFLite builtin nor a Select TF op"
        )
    elif op:
        what = f"replace {op}{_at(code_location)}: {message}"
    else:
        what = message
    suggestion = f" (converter: {' '.join(advice)})" if advice else ""
    return make_finding(
        "conversion-failed",
        f"{config.name}/{variant.name}: {what}{suggestion}",
        location=code_location or config.source_location,
        details=details,
        **common,
    )


_QUANTIZATIONS = ("int8", "dynamic", "float16")


# TensorFlow's quantizer about an op it has no quantized kernel for ("Quantization to
# 16x8-bit not yet supported for op: 'PRELU'.").
_UNQUANTIZABLE = re.compile(r"Quantization (?:to \S+ )?not yet supported for op: '([^']+)'")


def _other_quantizations(mode: str) -> str:
    return ", ".join(other for other in _QUANTIZATIONS if other != mode)


def _variant_location(config: ModelConfig, variant: VariantReport) -> Location:
    """The variant's `quantization` as written, else its entry, else the model's source."""
    for index, spec in enumerate(config.variants):
        if spec.name == variant.name:
            for key in (f"variants[{index}].quantization", f"variants[{index}]"):
                if key in config.key_locations:
                    return config.key_locations[key]
    return config.source_location


def _crash_finding(config: ModelConfig, variant: VariantReport, result: VariantResult) -> Finding:
    """A converter killed at a limit says which; one that crashed is a converter bug, and
    the way around it is another quantization or another TensorFlow, never the model's ops."""
    crash = str(result.crash)
    limit = limit_action(result.crash_cause, config, "converting the model")
    location = crash_location(result.crash_cause, config)
    if limit is not None:
        message = f"{limit}: {crash}"
    elif result.crash_cause == "signal" and variant.quantization != "none":
        others = _other_quantizations(variant.quantization)
        message = (
            f"use another quantization for this variant ({others}) or another TensorFlow "
            f"version: {crash} (a bug in the converter, not in the model)"
        )
        location = _variant_location(config, variant)
    elif result.crash_cause == "signal":
        message = f"try another TensorFlow version: {crash} (a bug in the converter)"
    else:
        message = crash
    return make_finding(
        "conversion-failed",
        f"{config.name}/{variant.name}: {message}",
        location=location,
        details={"crash": result.crash, "log_tail": result.log_lines},
        model=config.name,
        variant=variant.name,
    )


def _unquantizable_finding(
    config: ModelConfig, variant: VariantReport, error: ConverterError, op: str
) -> Finding:
    """An op the quantizer has no kernel for in this mode: the mode is what can change."""
    mode = "16x8" if variant.quantization == "int16x8" else variant.quantization
    return make_finding(
        "conversion-failed",
        f"{config.name}/{variant.name}: use another quantization for this variant "
        f"({_other_quantizations(variant.quantization)}) or replace {op} in the model: the "
        f"converter cannot quantize {op} to {mode} (converter: {error.message})",
        location=_variant_location(config, variant),
        details={"converter": error.message, "advice": error.advice},
        op=op,
        model=config.name,
        variant=variant.name,
    )


def check_conversion(
    config: ModelConfig,
    variant: VariantReport,
    result: VariantResult,
    inputs: list[TensorInfo] | None = None,
) -> list[Finding]:
    """Converter failures, each led by what to do, at the user's line of model code.

    Errors with one known cause (an RNN's TensorList ops, a string-input model's text
    ops) become one finding with that cause's fix; `inputs` (the model's, batch -1 if
    dynamic) tell whether a fixed batch is that fix, and whether the model takes text.
    """
    if result.data_error:
        return [
            make_finding(
                "data-invalid",
                f"{config.name}/{variant.name}: calibration data: {result.data_error}",
                location=data_location(config, "calibration", result.data_location),
                error=result.data_error,
                model=config.name,
                variant=variant.name,
            )
        ]
    if result.crash:
        return [_crash_finding(config, variant, result)]
    tensor_list = [e for e in result.errors if _is_tensor_list(e)]
    text_ops = [e for e in result.errors if _is_text_op(e, inputs or [])]
    findings = []
    if tensor_list:
        findings.append(_tensor_list_finding(config, variant, tensor_list, inputs or []))
    if text_ops:
        findings.append(_text_ops_finding(config, variant, text_ops))
    for error in result.errors:
        if error in tensor_list or error in text_ops:
            continue
        unquantizable = _UNQUANTIZABLE.search(error.message)
        if unquantizable is not None:
            findings.append(_unquantizable_finding(config, variant, error, unquantizable[1]))
        else:
            findings.append(_error_finding(config, variant, error))
    return findings


def check_converter_warnings(
    config: ModelConfig, variant: VariantReport, result: VariantResult
) -> list[Finding]:
    """Log lines that survived noise filtering: often a silent fallback.

    A failed conversion's log repeats its error, which the error findings already
    report at the right line; its log stays in the report, not in the findings.
    """
    if not result.ok:
        return []
    accepted_flex = config.select_tf_ops.value
    return [
        make_finding(
            "converter-warning",
            f"{config.name}/{variant.name}: {line.splitlines()[0]}",
            model=config.name,
            variant=variant.name,
            location=config.source_location,
            details={"log": line},
        )
        for line in result.log_lines
        if not (accepted_flex and "Flex" in line)  # the flex-op notice says it already
        and not _declared_custom_ops_line(line, config.custom_ops.value)
    ]


def _declared_custom_ops_line(line: str, declared: list[str]) -> bool:
    """The converter's "need TFLite custom op implementation(s)" about ops ops.custom lists."""
    match = re.search(r"^Custom ops: (.+)$", line, re.MULTILINE)
    return match is not None and set(match.group(1).split(", ")) <= set(declared)

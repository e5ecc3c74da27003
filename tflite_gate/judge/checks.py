"""Facts → findings: one small function per rule.

Checks read a model's resolved policy (`ModelConfig`) and what the pipeline
recorded in the report, and return findings. They never print and never
decide the verdict. A finding caused by a policy setting points at that
setting; one caused by model code points at the code.
"""

from __future__ import annotations

import errno
import math
import os
import re
import tempfile
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from tflite_gate.findings import Finding, Location, Severity, make_finding
from tflite_gate.judge.compare import MAX_METRICS
from tflite_gate.model.input_pairing import PairingError
from tflite_gate.policy.resolve import ModelConfig, Setting
from tflite_gate.policy.schema import is_factory, runtime_name
from tflite_gate.report.model import (
    ConverterError,
    MetricChange,
    ModelReport,
    OpInfo,
    OutputMetrics,
    RuntimeRun,
    SkippedThreshold,
    TensorInfo,
    ThresholdViolation,
    VariantChange,
    VariantReport,
)
from tflite_gate.report.text import (
    AGREEMENT_METRICS,
    format_number,
    format_threshold,
    metric_change_text,
)
from tflite_gate.run.protocol import EvaluationResult, LoadResult, VariantResult
from tflite_gate.support.environment import installed_version
from tflite_gate.tflite.runtime_versions import ops_newer_than, runtime_version_less


def _where(setting: Setting[Any], config: ModelConfig) -> Location:
    return setting.location or config.source_location


def _crash_location(cause: str | None, config: ModelConfig) -> Location:
    """A worker killed at a limit points at that limit's setting, where one is written."""
    if cause == "timeout":
        return _where(config.timeout_s, config)
    if cause == "memory":
        return _where(config.memory_mb, config)
    return config.source_location


def _raise_limit(key: str, setting: Setting[Any], unit: str, when: str) -> str:
    """`raise limits.timeout_s (1 s, at tflite-gate.yml:7:16) if ...`: a limit a worker
    was killed at, with its value and where it is written."""
    written = f"at {setting.location}" if setting.location else "the default"
    return f"raise {key} ({setting.value:g} {unit}, {written}) {when}"


def _limit_action(cause: str | None, config: ModelConfig, work: str) -> str | None:
    """What to raise when the conversion worker was killed at a limit; None otherwise."""
    if cause == "timeout":
        return _raise_limit(
            "limits.timeout_s", config.timeout_s, "s", f"if {work} just takes longer"
        )
    if cause == "memory":
        return _raise_limit(
            "limits.memory_mb", config.memory_mb, "MB", "if the machine has the memory"
        )
    return None


# --------------------------------------------------------------------------- versions


def check_version_spec(name: str, spec: Setting[str], model: str | None) -> list[Finding]:
    """`versions: {dist: specifier}` against what is installed where the gate runs."""
    installed = installed_version(name)
    if installed is None:
        return [
            make_finding(
                "version-mismatch",
                f"{name} is not installed, but the policy requires {name}{spec.value}",
                model=model,
                location=spec.location,
                details={"package": name, "specifier": spec.value, "installed": None},
            )
        ]
    try:
        satisfied = SpecifierSet(spec.value).contains(Version(installed), prereleases=True)
    except InvalidVersion:
        satisfied = False
    if satisfied:
        return []
    return [
        make_finding(
            "version-mismatch",
            f"{name} {installed} is installed, the policy requires {name}{spec.value}",
            model=model,
            location=spec.location,
            details={"package": name, "specifier": spec.value, "installed": installed},
        )
    ]


# --------------------------------------------------------------------------- loading


def check_load(config: ModelConfig, load: LoadResult, report: ModelReport) -> list[Finding]:
    """A model that cannot be loaded, with the versions that wrote it and that read it."""
    if load.ok:
        return []
    limit = _limit_action(load.crash_cause, config, "loading the model")
    if limit is not None:  # a valid model may just be slow to load: no "cannot load"
        return [
            make_finding(
                "model-load-failed",
                f"{config.name}: {limit}: {load.error}",
                model=config.name,
                location=_crash_location(load.crash_cause, config),
                details={"error": load.error, "cause": load.crash_cause},
            )
        ]
    if load.policy_key:
        return [
            make_finding(
                "policy-invalid",
                f"{config.name}: {load.error}",
                model=config.name,
                location=config.key_locations.get(load.policy_key, config.source_location),
                details={"key": load.policy_key},
            )
        ]
    full = environment_errno(load.error or "")
    if full is not None:  # the worker's disk, not the model: TF saves it to scratch first
        return check_environment_error(
            config,
            OSError(full, os.strerror(full)),
            place=f"a temporary file in {tempfile.gettempdir()}",
            elsewhere="set TMPDIR to a directory with room",
            error_text=load.error,
        )
    location = (
        Location(path=load.location[0], line=load.location[1])
        if load.location
        else _crash_location(load.crash_cause, config)
    )
    message = f"{config.name}: cannot load {config.source}: {load.error}"
    if load.missing_module:
        message = (
            f"{config.name}: install the package that provides the module "
            f"{load.missing_module!r} where the gate runs, or stop importing it: {config.source} "
            f"needs it ({load.error})"
        )
    written = report.written_by
    if written and (written.tensorflow or written.keras):
        wrote = ", ".join(
            f"{lib} {version}"
            for lib, version in (("TensorFlow", written.tensorflow), ("Keras", written.keras))
            if version
        )
        now = ", ".join(
            f"{lib} {installed_version(dist) or 'not installed'}"
            for lib, dist in (
                ("TensorFlow", "tensorflow"),
                ("Keras", "keras"),
                ("tf-keras", "tf-keras"),
            )
        )
        message += f" (written by {wrote}; installed: {now})"
    return [
        make_finding(
            "model-load-failed",
            message,
            model=config.name,
            location=location,
            details={
                "error": load.error,
                "written_by": written.model_dump() if written else None,
            },
        )
    ]


_NOT_CONVERTED = "a .tflite source runs as-is (it is not converted)"


def _tflite_key_problem(
    key: str, reference_kind: str | None, generated: bool, compared: bool
) -> str | None:
    """What to do about a key written on a .tflite source's entry, or None if it applies.

    `reference_kind` is the kind of the model's `reference` (None: it has none);
    `generated`: its data comes from a generator; `compared`: its outputs are compared
    with a reference, or (several runtimes, no reference) with its first runtime's.
    """
    if re.fullmatch(r"variants\[[1-9]\d*\]", key) or re.fullmatch(
        r"variants\[\d+\]\.(quantization|io)", key
    ):
        return (
            "keep at most one variant, with only a name and max_divergence, or remove "
            f"`variants`: {_NOT_CONVERTED}"
        )
    if key == "signature":
        return (
            f"remove `signature`: {_NOT_CONVERTED} on its serving_default signature "
            "(else its first); choosing another one is not supported"
        )
    if key == "data.calibration":
        return f"use data.evaluation: {_NOT_CONVERTED}, so nothing is calibrated"
    if reference_kind == "unusable":
        return None  # the reference is reported; what depends on its kind cannot be judged
    if key == "safe_mode" and reference_kind != "keras":
        return (
            "remove `safe_mode`: it applies to loading .keras files, here only a .keras reference"
        )
    if not compared and key == "classification":
        return (
            "add `reference:` (the model this .tflite was made from), or remove it: without "
            "a reference no output is compared, so no top1 is gated"
        )
    if reference_kind is None and key == "input_map":
        return (
            "add `reference:` (the model this .tflite was made from), or remove it: "
            "input_map pairs the .tflite's inputs with the reference's"
        )
    if not compared and re.fullmatch(r"(variants\[0\]\.)?max_divergence", key):
        return (
            "add `reference:` (the model this .tflite was made from: a .tflite, .keras, "
            ".h5, SavedModel or module:function), or remove it: there is nothing to compare with"
        )
    if key == "limits.timeout_s" and reference_kind in {None, "tflite"} and not generated:
        return (
            "use limits.interpreter_timeout_s: limits.timeout_s bounds the TensorFlow worker, "
            "which a .tflite source without a Keras/SavedModel/factory reference or a data "
            "generator does not use"
        )
    return None


def _generated_data(config: ModelConfig) -> bool:
    """The data comes from a `module:function` generator, run in a worker under timeout_s."""
    values = (config.calibration.value, config.evaluation.value)
    return any(isinstance(value, str) and is_factory(value) for value in values)


def _converted_key_problem(key: str, kind: str) -> str | None:
    """What to do about a key written on a converted source's entry, or None if it applies."""
    if key == "reference":
        return (
            "remove `reference`: it gives a .tflite source something to compare with; a "
            "converted model is compared with its own source"
        )
    if key == "input_map":
        return (
            "remove `input_map`: it pairs a .tflite source's inputs with its reference's; a "
            "converted model is fed its own inputs"
        )
    if key == "signature" and kind != "saved_model":
        return f"remove `signature`: it selects a SavedModel signature; a {kind} source has none"
    if key == "safe_mode" and kind != "keras":
        return f"remove `safe_mode`: it applies to loading .keras files, not a {kind} source"
    return None


def check_source_keys(config: ModelConfig, kind: str, reference_kind: str | None) -> list[Finding]:
    """Keys written for a model that cannot apply to its kind of source.

    A key that is accepted and then ignored is a check silently switched off, so each
    one is refused at its own line.
    """
    findings = []
    by_line = sorted(config.key_locations.items(), key=lambda item: _line_order(item[1]))
    for key, location in by_line:
        if kind == "tflite":
            compared = reference_kind is not None or len(config.runtimes.value) > 1
            problem = _tflite_key_problem(key, reference_kind, _generated_data(config), compared)
        else:
            problem = _converted_key_problem(key, kind)
        if problem is not None:
            findings.append(
                make_finding(
                    "policy-invalid",
                    f"{config.name}: {key}: {problem}",
                    model=config.name,
                    location=location,
                    details={"key": key, "source_kind": kind},
                )
            )
    return findings


def _line_order(location: Location) -> tuple[int, int]:
    return location.line or 0, location.column or 0


def check_reference(
    config: ModelConfig, error: str, *, rule: str = "model-load-failed"
) -> list[Finding]:
    """A reference model that cannot give reference outputs: the outputs are not compared."""
    return [
        make_finding(
            rule,
            f"{config.name}: reference {config.reference.value}: {error}; outputs not compared",
            model=config.name,
            location=_where(config.reference, config),
            details={"reference": config.reference.value, "error": error},
        )
    ]


def check_input_pairing(config: ModelConfig, error: PairingError) -> list[Finding]:
    """Inputs of a .tflite and its reference that cannot be paired, at the line to change.

    An `input_map` entry at fault is pointed at (its key, or its value when the
    reference lacks that input); otherwise the map, or the reference, when none is written.
    """
    entry = next((e for e in config.input_map if e.tflite == error.entry), None)
    if entry is not None:
        location = entry.reference_location if error.in_value else entry.tflite_location
    else:
        location = config.key_locations.get("input_map") or _where(config.reference, config)
    return [
        make_finding(
            "policy-invalid",
            f"{config.name}: {error.message}; outputs not compared",
            model=config.name,
            location=location,
            details={"reference": config.reference.value, "error": error.message},
        )
    ]


# --------------------------------------------------------------------------- conversion


def data_location(config: ModelConfig, role: str, code: Any) -> Location:
    """A generator's own line if it raised, else the policy's data setting for `role`."""
    if isinstance(code, list | tuple) and len(code) == 2:
        return Location(path=str(code[0]), line=int(code[1]))
    own = config.calibration if role == "calibration" else config.evaluation
    other = config.evaluation if role == "calibration" else config.calibration
    return own.location or other.location or config.source_location


def _flex_name(tf_op: str | None) -> str | None:
    return f"Flex{tf_op.removeprefix('tf.')}" if tf_op else None


# Ops the converter emits to compute shapes at run time when the batch is dynamic.
DYNAMIC_SHAPE_OPS = frozenset(
    {"SHAPE", "PACK", "STRIDED_SLICE", "FILL", "BROADCAST_TO", "BROADCAST_ARGS", "SLICE"}
)
# Ops a quantized variant uses to convert between float and its integer or float16 types.
QUANTIZE_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
INTEGER_IO = {"int8": "int8", "int16x8": "int16"}
"""The integer `io` a full-integer quantization takes, which leaves out its edge (de)quantize."""
RESOURCE_VARIABLE_OPS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"})
UNFROZEN_FIX = (
    "convert from the Keras model or a SavedModel that holds the variables "
    "(model.export / tf.saved_model.save), so the converter freezes them into constants "
    "or initialises them once (CALL_ONCE)"
)


def _dimension(size: int) -> str:
    return str(size) if size >= 0 else "<size>"


def fixed_batch_hint(inputs: list[TensorInfo]) -> str | None:
    """`set a fixed batch: input_shapes: {x: [1, 5, 3]}` when some input's batch is dynamic.

    Other unknown dimensions stay placeholders: a guessed size would convert a model
    that is useless on real data.
    """
    if not any(tensor.shape and tensor.shape[0] < 0 for tensor in inputs):
        return None
    shapes = ", ".join(
        f"{tensor.name}: [{', '.join(['1', *(_dimension(d) for d in tensor.shape[1:])])}]"
        for tensor in inputs
        if tensor.shape
    )
    return f"set a fixed batch: input_shapes: {{{shapes}}}"


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
            "hint": hint,
            "errors": [error.model_dump(mode="json") for error in errors],
        },
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
        location=location or _where(config.select_tf_ops, config),
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
    details = {
        "error_code": code,
        "op": op,
        "converter": message,
        "advice": advice,
    }
    common: dict[str, Any] = {"model": config.name, "variant": variant.name}
    flex = _flex_name(str(op)) if op else None
    if flex and code == "ERROR_NEEDS_FLEX_OPS":
        return make_finding(
            "flex-op",
            f"{config.name}/{variant.name}: set ops.select_tf_ops: true if the app links the "
            f"Flex delegate, or replace {op}{_at(code_location)}: it has no TFLite builtin, "
            f"only a Select TF op ({flex}); conversion failed",
            location=code_location or _where(config.select_tf_ops, config),
            details={**details, "flex_op": flex},
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
    limit = _limit_action(result.crash_cause, config, "converting the model")
    location = _crash_location(result.crash_cause, config)
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
        details={"op": op, "converter": error.message, "advice": error.advice},
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
                details={"error": result.data_error},
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


# --------------------------------------------------------------------------- ops


def check_ops_allowed(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Builtin ops outside `ops.allow`, or inside `ops.deny`."""
    if variant.inspection is None:
        return []
    allow, deny = config.allow_ops.value, config.deny_ops.value
    findings = []
    for op in variant.inspection.ops:
        if op.kind != "builtin":
            continue
        setting: Setting[Any]
        if op.name in deny:
            setting, why = config.deny_ops, "is listed in ops.deny"
        elif allow is not None and op.name not in allow:
            setting, why = config.allow_ops, "is not in ops.allow"
        else:
            continue
        message = f"{op.name} (v{op.version}, used {op.count}x) {why}"
        details: dict[str, Any] = {"op": op.name, "version": op.version, "count": op.count}
        origin = _op_origin(op.name, variant, denied=op.name in deny)
        if origin is not None:
            hint, source = origin
            message = f"{hint}: {message}; {source}"
            details["hint"] = hint
        findings.append(
            make_finding(
                "op-not-allowed",
                f"{config.name}/{variant.name}: {message}",
                model=config.name,
                variant=variant.name,
                location=_where(setting, config),
                details=details,
            )
        )
    return findings


def _op_origin(op: str, variant: VariantReport, *, denied: bool) -> tuple[str, str] | None:
    """What to do about `op` and where it comes from, when the variant explains it.

    SHAPE, PACK and the like compute shapes for a dynamic batch (a fixed one removes
    them); QUANTIZE and DEQUANTIZE convert a quantized variant's float inputs and
    outputs (integer I/O removes them) or a float16 variant's weights.
    """
    inputs = variant.inspection.inputs if variant.inspection else []
    # Converted here with a dynamic batch: a fixed one removes the shape-computing ops.
    batch = fixed_batch_hint(inputs) if variant.status == "converted" else None
    if batch is not None and op in DYNAMIC_SHAPE_OPS:
        return batch, "it computes shapes for the dynamic batch"
    if denied or op not in QUANTIZE_OPS:
        return None
    integer = INTEGER_IO.get(variant.quantization)
    if integer is not None and variant.io == "float32":
        return (
            f"add {op} to ops.allow, or set io: {integer} on variant {variant.name} if the app "
            f"can feed and read {integer}",
            f"the {variant.quantization} variant converts its float32 inputs and outputs with it",
        )
    if variant.quantization == "float16" and op == "DEQUANTIZE":
        return (
            f"add {op} to ops.allow",
            "the float16 variant stores its weights as float16 and turns them into float32 with it",
        )
    return None


def uninitialised_variable_ops(variant: VariantReport) -> list[OpInfo]:
    """Resource-variable ops in a model without the CALL_ONCE subgraph that initialises them."""
    if variant.inspection is None:
        return []
    ops = variant.inspection.ops
    if any(op.name == "CALL_ONCE" and op.kind == "builtin" for op in ops):
        return []
    return [op for op in ops if op.name in RESOURCE_VARIABLE_OPS]


def check_unfrozen_variables(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Resource-variable ops that nothing initialises: the model reads uninitialised memory.

    A converted stateful model initialises its variables once through a CALL_ONCE
    subgraph; without one, VAR_HANDLE/READ_VARIABLE return whatever memory holds.
    """
    found = uninitialised_variable_ops(variant)
    if not found:
        return []
    listed = ", ".join(f"{op.name} x{op.count}" for op in found)
    return [
        make_finding(
            "unfrozen-variables",
            f"{config.name}/{variant.name}: {UNFROZEN_FIX}: the variables were not frozen: "
            f"outputs come from uninitialised memory ({listed}, no CALL_ONCE initializer)",
            model=config.name,
            variant=variant.name,
            location=config.source_location,
            details={"ops": [op.name for op in found]},
        )
    ]


def check_flex_ops(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Select TF (Flex) ops the policy does not accept: an error before anything runs.

    Accepted Flex ops get their notice from `check_flex_runs`, once the runs say
    where the numerics were verified.
    """
    if variant.inspection is None or config.select_tf_ops.value:
        return []
    flex = [op.name for op in variant.inspection.ops if op.kind == "flex"]
    if not flex:
        return []
    return [
        make_finding(
            "flex-op",
            f"{config.name}/{variant.name}: uses Select TF ops {', '.join(flex)}, which the "
            "policy does not allow (ops.select_tf_ops: false)",
            model=config.name,
            variant=variant.name,
            location=_where(config.select_tf_ops, config),
            details={"ops": flex},
        )
    ]


# A runtime whose interpreter links the Flex delegate (TensorFlow <= 2.18; 2.20+ and
# ai-edge-litert 2.x do not).
FLEX_RUNTIME_SUGGESTION = 'runtimes: [ai-edge-litert, {requirement: "tensorflow==2.18.1"}]'


def check_flex_runs(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Accepted Flex ops: one notice per variant saying where the numerics were verified.

    Runs that compared outputs verified them; runs without the Flex delegate could not
    execute. When none verified them, name a runtime that would.
    """
    if variant.inspection is None or not config.select_tf_ops.value:
        return []
    flex = [op.name for op in variant.inspection.ops if op.kind == "flex"]
    if not flex:
        return []
    runs = variant.runs
    verified = [run.label for run in runs if run.status == "passed"]
    failed = [run.label for run in runs if run.status in {"diverged", "non-finite", "mismatch"}]
    executed = [run.label for run in runs if run.status == "ran"]
    without = [
        run.label for run in runs if run.status == "unverifiable" and not run.unresolved_custom_ops
    ]
    head = (
        f"{config.name}/{variant.name}: uses Select TF ops {', '.join(flex)}; the app must "
        "link the Flex delegate"
    )
    if verified:
        message = f"{head}; numerics verified on {', '.join(verified)}"
    elif executed:
        message = f"{head}; executed on {', '.join(executed)} (no reference to compare with)"
    else:
        message = f"{head}; numerics not verified"
    if failed:
        message += f"; compared on {', '.join(failed)} without passing (see its findings)"
    if without:
        message += f"; not executable on {', '.join(without)} (no Flex delegate)"
    suggestion = None
    reached = [run for run in runs if run.status != "unavailable"]
    if without and len(without) == len(reached):  # no runtime that ran has the Flex delegate
        suggestion = FLEX_RUNTIME_SUGGESTION
        message += (
            "; to verify them, add a runtime whose interpreter links the Flex delegate "
            f"(TensorFlow <= 2.18): {suggestion}"
        )
    return [
        make_finding(
            "flex-op",
            message,
            severity=Severity.NOTICE,
            model=config.name,
            variant=variant.name,
            location=_where(config.select_tf_ops, config),
            details={
                "ops": flex,
                "verified_on": verified,
                "compared_without_passing_on": failed,
                "executed_on": executed,
                "not_executable_on": without,
                "suggestion": suggestion,
            },
        )
    ]


def check_custom_ops(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """Custom ops the policy does not list as implemented in the app."""
    if variant.inspection is None:
        return []
    accepted = set(config.custom_ops.value)
    return [
        make_finding(
            "custom-op",
            f"{config.name}/{variant.name}: custom op {op.name} is not listed in ops.custom",
            model=config.name,
            variant=variant.name,
            location=_where(config.custom_ops, config),
            details={"op": op.name, "count": op.count},
        )
        for op in variant.inspection.ops
        if op.kind == "custom" and op.name not in accepted
    ]


def check_runtime(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """The model needs a newer runtime than `versions.target_runtime`, and which ops say so."""
    target = config.target_runtime.value
    inspection = variant.inspection
    if target is None or inspection is None:
        return []
    builtin = [(op.name, op.version) for op in inspection.ops if op.kind == "builtin"]
    newer = ops_newer_than(builtin, target)
    metadata_value = inspection.metadata_min_runtime
    metadata_newer = metadata_value is not None and _safe_less(target, metadata_value)
    if not newer and not metadata_newer:
        return []
    needed = newer[0].min_runtime if newer else metadata_value
    reasons = ", ".join(str(requirement) for requirement in newer) or (
        f"the converter's min_runtime_version metadata says {metadata_value}"
    )
    return [
        make_finding(
            "runtime-too-old",
            f"{config.name}/{variant.name}: needs runtime {needed}, target_runtime is "
            f"{target}: {reasons}",
            model=config.name,
            variant=variant.name,
            location=_where(config.target_runtime, config),
            details={
                "target_runtime": target,
                "required_runtime": needed,
                "metadata_min_runtime": metadata_value,
                "ops": [
                    {"op": r.op, "version": r.version, "min_runtime": r.min_runtime} for r in newer
                ],
            },
        )
    ]


def _safe_less(a: str, b: str) -> bool:
    try:
        return runtime_version_less(a, b)
    except ValueError:
        return False


def check_size_budget(config: ModelConfig, variant: VariantReport) -> list[Finding]:
    """A .tflite larger than `budgets.max_size_bytes`: the app's download and flash size."""
    budget = config.max_size_bytes
    if budget.value is None or variant.inspection is None:
        return []
    size = variant.inspection.size_bytes
    if size <= budget.value:
        return []
    over = size - budget.value
    return [
        make_finding(
            "size-budget",
            f"{config.name}/{variant.name}: quantize or shrink the model, or raise "
            f"budgets.max_size_bytes: {size} bytes is {over} bytes ({over / budget.value:.1%}) "
            f"over the budget of {budget.value}",
            location=_where(budget, config),
            details={"size_bytes": size, "max_size_bytes": budget.value},
            model=config.name,
            variant=variant.name,
        )
    ]


# --------------------------------------------------------------------------- baseline


def _regression(
    config: ModelConfig, change: VariantChange, setting: Setting[Any], text: str, **details: Any
) -> Finding:
    return make_finding(
        "baseline-regression",
        f"{config.name}/{change.variant}: {text}",
        location=_where(setting, config),
        details={"key": details.pop("key"), **details},
        model=config.name,
        variant=change.variant,
    )


def _size_regression(config: ModelConfig, change: VariantChange) -> list[Finding]:
    allowed = config.max_size_increase
    before, after = change.size_before, change.size_after
    if (
        allowed.value is None
        or not before
        or after is None
        or after <= before * (1 + allowed.value)
    ):
        return []
    grown = (after - before) / before
    text = (
        f"shrink the model or raise regression.max_size_increase: {after} bytes is {grown:.1%} "
        f"more than the baseline's {before} (at most {allowed.value:.1%})"
    )
    return [
        _regression(
            config, change, allowed, text, key="max_size_increase", before=before, after=after
        )
    ]


def _op_regression(config: ModelConfig, change: VariantChange) -> list[Finding]:
    if config.allow_new_ops.value or not change.ops_added:
        return []
    text = (
        f"remove the new op(s) or set regression.allow_new_ops: true: "
        f"{', '.join(change.ops_added)} not in the baseline"
    )
    return [
        _regression(
            config, change, config.allow_new_ops, text, key="allow_new_ops", ops=change.ops_added
        )
    ]


def _runtime_regression(config: ModelConfig, change: VariantChange) -> list[Finding]:
    before, after = change.runtime_before, change.runtime_after
    if config.allow_min_runtime_increase.value or not before or not after:
        return []
    if not _safe_less(before, after):  # the baseline is a file from elsewhere: never trust it
        return []
    bumped = ", ".join(
        f"{v.op} v{v.before}→v{v.after}" for v in change.versions if v.after > v.before
    )
    why = f" ({bumped})" if bumped else ""
    text = (
        "keep the ops the baseline used or set regression.allow_min_runtime_increase: true: "
        f"it needs runtime {after}, the baseline needed {before}{why}"
    )
    setting = config.allow_min_runtime_increase
    return [
        _regression(
            config,
            change,
            setting,
            text,
            key="allow_min_runtime_increase",
            before=before,
            after=after,
        )
    ]


def metric_worsening(metric: str, before: float, after: float) -> float | None:
    """How much worse `after` is, as a share of the baseline's error; None: not relative.

    Error metrics compare themselves; cosine and top-1 compare their distance from 1
    (0.9990 → 0.9980 doubles the disagreement). A baseline without error (0, or a
    perfect cosine) gives no share to compare with, and the SNR is a ratio already.
    """
    if not (math.isfinite(before) and math.isfinite(after)):
        return None  # an infinite baseline is no share to compare with
    if metric in MAX_METRICS:
        return (after - before) / before if before > 0 else None
    if metric in ("cosine", "top1"):
        gap = 1.0 - before
        return ((1.0 - after) - gap) / gap if gap > 0 else None
    return None


def _worse_metrics(
    change: VariantChange, allowed: float
) -> dict[tuple[str, str], list[tuple[MetricChange, float]]]:
    """Each output's metrics that got worse by more than allowed, by (runtime, output)."""
    found: dict[tuple[str, str], list[tuple[MetricChange, float]]] = {}
    for item in change.metrics:
        if item.before is None or item.after is None:
            continue
        worse = metric_worsening(item.metric, item.before, item.after)
        if worse is not None and worse > allowed:
            found.setdefault((item.runtime, item.output), []).append((item, worse))
    return found


def _metric_regressions(config: ModelConfig, change: VariantChange) -> list[Finding]:
    """One finding per output: a layer that costs accuracy moves all its metrics at once."""
    allowed = config.max_metric_worsening
    if allowed.value is None:
        return []
    found = []
    for (runtime, output), worse in _worse_metrics(change, allowed.value).items():
        changes = ", ".join(
            f"{metric_change_text(item.metric, item.before, item.after)} ({share:.1%} worse)"
            for item, share in worse
        )
        text = (
            f"find what made output {output!r} worse on {runtime}, or raise "
            f"regression.max_metric_worsening: {changes} against the baseline "
            f"(at most {allowed.value:.1%} worse)"
        )
        metrics = [
            {"metric": item.metric, "before": item.before, "after": item.after, "worse": share}
            for item, share in worse
        ]
        found.append(
            _regression(
                config,
                change,
                allowed,
                text,
                key="max_metric_worsening",
                runtime=runtime,
                output=output,
                metrics=metrics,
            )
        )
    return found


def check_regressions(config: ModelConfig, change: VariantChange) -> list[Finding]:
    """What the policy's `regression:` section forbids, at the key that forbids it."""
    if change.presence != "both":
        return []
    return [
        *_size_regression(config, change),
        *_op_regression(config, change),
        *_runtime_regression(config, change),
        *_metric_regressions(config, change),
    ]


VARIANT_CHECKS = (
    check_ops_allowed,
    check_flex_ops,
    check_custom_ops,
    check_runtime,
    check_unfrozen_variables,
    check_size_budget,
)


# --------------------------------------------------------------------------- execution


def _runtime_location(config: ModelConfig, runtime: str | None = None) -> Location:
    """The runtime's own entry in `runtimes`, else the list, else the model's source."""
    if runtime is not None and runtime in config.runtime_locations:
        return config.runtime_locations[runtime]
    return _where(config.runtimes, config)


def _run_stage(run: RuntimeRun) -> str:
    """Where a run stopped, for a message. A worker killed before it reported any phase
    stopped while starting up; an error without a phase says nothing rather than "None"."""
    if run.phase:
        stage = f" in {run.phase}"
    elif run.status in ("crash", "timeout"):
        stage = " during start-up"
    else:
        stage = ""
    return stage + (f" (sample {run.sample})" if run.sample is not None else "")


def check_run(config: ModelConfig, variant: VariantReport, run: RuntimeRun) -> list[Finding]:
    """A variant that could not be executed on a runtime: crash, hang, error, or Flex."""
    where = f"{config.name}/{variant.name} on {run.runtime}"
    at = _run_stage(run)
    repro = f"; reproducer: {run.reproducer}" if run.reproducer else ""
    details = {
        "phase": run.phase,
        "sample": run.sample,
        "signal": run.signal,
        "runtime_version": run.runtime_version,
        "reproducer": run.reproducer,
        "message": run.message,
    }
    common: dict[str, Any] = {"model": config.name, "variant": variant.name, "runtime": run.runtime}
    if run.status == "crash":
        cause = run.signal or "a non-zero exit"
        return [
            make_finding(
                "interpreter-crash",
                f"{where}: the interpreter crashed with {cause}{at}{repro}",
                location=_runtime_location(config, run.runtime),
                details=details,
                **common,
            )
        ]
    if run.status == "timeout":
        raise_it = _raise_limit(
            "limits.interpreter_timeout_s",
            config.interpreter_timeout_s,
            "s",
            "if the model is just slow on this runtime",
        )
        return [
            make_finding(
                "interpreter-timeout",
                f"{where}: {raise_it}: no result within "
                f"{config.interpreter_timeout_s.value:g} s{at}{repro}",
                location=_where(config.interpreter_timeout_s, config),
                details=details,
                **common,
            )
        ]
    if run.status == "error":
        static = _static_runtime_verdict(variant, run.runtime_version)
        agreement = f" (the static check agrees: {static})" if static else ""
        cause = _unregistered_cause(config, run)
        return [
            make_finding(
                "interpreter-error",
                f"{where}: {cause}{_one_line(run.message)}{at}{agreement}{repro}",
                location=_runtime_location(config, run.runtime),
                details={**details, "static_check": static},
                **common,
            )
        ]
    if run.status == "unavailable":  # installed, but the worker could not import it
        return check_unavailable_runtime(config, run.runtime, run.message or "import failed")
    if run.status == "unverifiable":  # Flex: one notice per variant, from check_flex_runs
        return check_custom_op_run(config, variant, run)
    if run.status == "mismatch":
        return [
            make_finding(
                "output-mismatch",
                f"{where}: {run.message}",
                location=config.source_location,
                details=details,
                **common,
            )
        ]
    return []


def check_custom_op_run(
    config: ModelConfig, variant: VariantReport, run: RuntimeRun
) -> list[Finding]:
    """A run stopped only by declared custom ops: a notice that says how to verify them.

    The runtime names the first op it has no kernel for and stops there, so the notice
    names every custom op of the model too: none of them ran.
    """
    if run.status != "unverifiable" or not run.unresolved_custom_ops:
        return []
    ops = ", ".join(run.unresolved_custom_ops)
    in_model = [
        op.name
        for op in (variant.inspection.ops if variant.inspection else [])
        if op.kind == "custom"
    ]
    not_run = list(dict.fromkeys([*run.unresolved_custom_ops, *in_model]))
    stopped = (
        f"; the runtime stops there, so the model's custom ops {', '.join(not_run)} did not run"
        if len(not_run) > len(run.unresolved_custom_ops)
        else ""
    )
    if run.custom_op_registerers:
        how = (
            f"the registerers {', '.join(run.custom_op_registerers)} did not register it; "
            "register its kernel there"
        )
    else:
        how = (
            "to verify them, register the kernels on a runtime: `custom_op_registerers` "
            "(and `custom_op_libraries`) in its `runtimes` entry"
        )
    return [
        make_finding(
            "custom-op",
            f"{config.name}/{variant.name} on {run.runtime}: no kernel for custom op {ops} "
            f"(declared in ops.custom){stopped}; numerics not verified; {how}",
            severity=Severity.NOTICE,
            model=config.name,
            variant=variant.name,
            runtime=run.runtime,
            location=_where(config.custom_ops, config),
            details={
                "unresolved": run.unresolved_custom_ops,
                "not_run": not_run,
                "registerers": run.custom_op_registerers,
                "message": run.message,
            },
        )
    ]


def _unregistered_cause(config: ModelConfig, run: RuntimeRun) -> str:
    """An unresolved custom op is a missing kernel, never an old runtime: say which."""
    undeclared = [op for op in run.unresolved_custom_ops if op not in config.custom_ops.value]
    if not undeclared:
        return ""
    return (
        f"no kernel for custom op {', '.join(undeclared)}, which ops.custom does not declare "
        "(register it, or replace it): "
    )


def _one_line(text: str | None, limit: int = 400) -> str:
    """Runtime messages span lines; a finding's message is one (details keep the rest)."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _static_runtime_verdict(variant: VariantReport, runtime_version: str | None) -> str | None:
    """What TF's op-version table says about this runtime version, if it predicts failure."""
    if variant.inspection is None or runtime_version is None:
        return None
    builtin = [(op.name, op.version) for op in variant.inspection.ops if op.kind == "builtin"]
    try:
        newer = ops_newer_than(builtin, runtime_version)
    except ValueError:
        return None
    return ", ".join(str(requirement) for requirement in newer) or None


def check_unavailable_runtime(config: ModelConfig, runtime: str, error: str) -> list[Finding]:
    """Led by the error's own first line (pip's `ERROR:`, the exception); details keep all."""
    headline = next((line for line in error.splitlines() if line.strip()), error)
    return [
        make_finding(
            "runtime-unavailable",
            f"{config.name}: runtime {runtime} is unavailable: {_one_line(headline)}",
            model=config.name,
            runtime=runtime,
            location=_runtime_location(config, runtime),
            details={"error": error},
        )
    ]


_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NO_ACCESS = {errno.EROFS, errno.EACCES, errno.EPERM}


def environment_errno(text: str) -> int | None:
    """The errno of a full or read-only disk named in an error's text, else None.

    TensorFlow reports a failed write of its own as `ResourceExhaustedError: ... No
    space left on device`, not as an OSError; its C++ uses the same strerror text.
    """
    for number in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        if os.strerror(number) in text:
            return number
    return None


def check_environment_error(
    config: ModelConfig,
    error: OSError,
    *,
    place: str,
    elsewhere: str,
    variant: str | None = None,
    error_text: str | None = None,
) -> list[Finding]:
    """A file the gate needed could not be read or written: the disk or permissions, not a bug.

    `place` names the file as the user knows it (workspace-relative, or which
    directory); `elsewhere` says how to move that directory ("give --artifacts ...").
    """
    if error.errno in _NO_ROOM:
        fix = "free disk space"
    elif error.errno in _NO_ACCESS:
        fix = "make it writable (and readable) for the user running the gate"
    else:
        fix = "check the file system"
    reason = error.strerror or type(error).__name__
    owner = f"{config.name}/{variant}" if variant else config.name
    return [
        make_finding(
            "environment-error",
            f"{fix}{f', or {elsewhere}' if elsewhere else ''}: {owner}: {place}: {reason}",
            model=config.name,
            variant=variant,
            details={
                "errno": errno.errorcode.get(error.errno or 0),
                "path": place,
                "error": error_text or str(error),
            },
        )
    ]


def _unfrozen_variables_cause(variant: VariantReport) -> str:
    """A likely cause of garbage outputs the flatbuffer shows: variables never initialised."""
    found = uninitialised_variable_ops(variant)
    if not found:
        return ""
    names = ", ".join(op.name for op in found)
    return f"; likely cause: resource variables ({names}) were not frozen: {UNFROZEN_FIX}"


def _collapse_note(metrics: OutputMetrics) -> str:
    if not metrics.collapsed:
        return ""
    value = f" ({metrics.collapsed_to:g} everywhere)" if metrics.collapsed_to is not None else ""
    return (
        f"; the converted output is the same for every sample{value} while the source "
        "model's varies: quantization collapsed it (check that the calibration data covers "
        "the inputs' real range)"
    )


def _violation_text(violation: ThresholdViolation) -> str:
    comparison = "above" if violation.threshold_key in MAX_METRICS else "below"
    shown = violation.infinite or format_number(
        violation.value,
        threshold=violation.threshold,
        agreement=violation.metric in AGREEMENT_METRICS,
    )
    sample = (
        f", worst sample {violation.worst_sample}" if violation.worst_sample is not None else ""
    )
    return (
        f"{violation.metric} {shown} is {comparison} {violation.threshold_key} "
        f"{format_threshold(violation.threshold)}{sample}"
    )


def check_latency_budget(
    config: ModelConfig, variant: VariantReport, run: RuntimeRun
) -> list[Finding]:
    """A median invoke slower than `budgets.max_latency_ms`, at the budget's severity.

    A warning unless the policy says otherwise: a shared CI runner is noisy, and its
    CPU is not the device's, so the number is a trend to watch more than a verdict.
    """
    budget = config.max_latency_ms
    if budget.value is None or run.latency_ms is None or run.latency_ms <= budget.value:
        return []
    return [
        make_finding(
            "latency-budget",
            f"{config.name}/{variant.name} on {run.runtime}: make the model cheaper or raise "
            f"budgets.max_latency_ms: the median invoke took {run.latency_ms:.2f} ms "
            f"({run.latency_runs} runs, {run.latency_threads} thread(s)), over the budget "
            f"of {budget.value:g} ms",
            severity=Severity(config.latency_severity.value),
            location=_where(budget, config),
            details={
                "latency_ms": run.latency_ms,
                "max_latency_ms": budget.value,
                "latency_runs": run.latency_runs,
                "num_threads": run.latency_threads,
            },
            model=config.name,
            variant=variant.name,
            runtime=run.runtime,
        )
    ]


def check_divergence(config: ModelConfig, variant: VariantReport, run: RuntimeRun) -> list[Finding]:
    """Non-finite outputs, and each broken threshold at the policy line that set it.

    Reads what the comparison decided (`run.metrics`, `run.violations`): nothing here
    re-derives a verdict from numbers.
    """
    plan = config.thresholds.get(variant.name)
    common: dict[str, Any] = {"model": config.name, "variant": variant.name, "runtime": run.runtime}
    where = f"{config.name}/{variant.name} on {run.runtime}"
    versus: dict[str, Any] = {}
    if run.compared_with is not None:  # another runtime's outputs were the reference
        where += f" vs {run.compared_with}"
        versus = {"compared_with": run.compared_with}
    by_output = {metrics.output: metrics for metrics in run.metrics}
    findings: list[Finding] = []
    for metrics in run.metrics:
        if not metrics.non_finite:
            continue
        compared = (
            "nothing else was compared"
            if metrics.compared == 0
            else f"metrics cover the {metrics.compared} finite value(s) only"
        )
        findings.append(
            make_finding(
                "non-finite",
                f"{where}: output {metrics.output!r} has {metrics.non_finite} value(s) where one "
                "side is NaN/Inf and the other is not (or NaN vs Inf), "
                f"{compared}"
                f"{_unfrozen_variables_cause(variant)}",
                location=config.source_location,
                details={
                    "output": metrics.output,
                    "count": metrics.non_finite,
                    "compared": metrics.compared,
                    **versus,
                },
                **common,
            )
        )
    for violation in run.violations:
        settings = plan.for_output(violation.output) if plan else {}
        setting = settings.get(violation.threshold_key)
        tightest = run.tightest.get(violation.output, {})
        suggestion = tightest.get(violation.threshold_key)
        passing = (
            f" (tightest passing: {violation.threshold_key}: {suggestion})"
            if suggestion is not None
            else " (no threshold of this kind would pass)"
        )
        measured = by_output.get(violation.output)
        note = _collapse_note(measured) if measured is not None else ""
        findings.append(
            make_finding(
                "divergence",
                f"{where}: output {violation.output!r} {_violation_text(violation)}{passing}"
                f"{note}{_unfrozen_variables_cause(variant)}",
                location=(setting.location if setting else None) or config.source_location,
                details={**violation.model_dump(), "tightest": tightest, **versus},
                **common,
            )
        )
    return findings


def check_skipped_thresholds(config: ModelConfig, model: ModelReport) -> list[Finding]:
    """Once per model and output: a threshold that was not applied, and why.

    A model-wide min_top1 that does not fit an output is a notice (the policy meant the
    classification outputs); one written for that very output is a policy error.
    """
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for variant in model.variants:
        plan = config.thresholds.get(variant.name)
        for run in variant.runs:
            for skipped in run.skipped_thresholds:
                key = (skipped.output, skipped.threshold_key)
                if key in seen:
                    continue
                seen.add(key)
                setting = plan.for_output(skipped.output).get(key[1]) if plan else None
                location = (setting.location if setting else None) or config.source_location
                findings.append(_skipped_threshold_finding(config, skipped, location))
    return findings


def _skipped_threshold_finding(
    config: ModelConfig, skipped: SkippedThreshold, location: Location
) -> Finding:
    rule, what = (
        ("policy-invalid", "cannot apply to")
        if skipped.explicit
        else ("threshold-not-applied", "was not applied to")
    )
    return make_finding(
        rule,
        f"{config.name}: {skipped.threshold_key} {what} output {skipped.output!r}: "
        f"{skipped.reason}",
        model=config.name,
        location=location,
        details=skipped.model_dump(),
    )


def check_uncompared_thresholds(config: ModelConfig, model: ModelReport) -> list[Finding]:
    """Thresholds inherited by a run that had nothing to compare with: say so once.

    A .tflite source without `reference:` runs, but its outputs have no reference; a
    `max_divergence` from `defaults` then judges nothing, which must not pass unnoticed.
    On several runtimes the first one's outputs are the others' reference: its own run
    is not compared, and the others are not when it gave no outputs.
    """
    if config.reference.value is not None:  # a failed reference is reported on its own
        return []
    names = [runtime_name(item) for item in config.runtimes.value]
    first = names[0] if len(names) > 1 else None
    for variant in model.variants:
        plan = config.thresholds.get(variant.name)
        written = [s for s in (plan.all_settings() if plan else []) if s.location is not None]
        uncompared = [r for r in variant.runs if r.status == "ran" and r.runtime != first]
        if written and uncompared:
            return [
                make_finding(
                    "threshold-not-applied",
                    f"{config.name}: {_uncompared_fix(first)}, so no threshold was checked",
                    model=config.name,
                    location=written[0].location,
                    details={"reason": "no reference", "reference_runtime": first},
                )
            ]
    return []


def _uncompared_fix(first_runtime: str | None) -> str:
    if first_runtime is None:
        return (
            "add `reference:` (the model this .tflite was made from) to apply max_divergence: "
            "without it the outputs have nothing to be compared with"
        )
    return (
        f"make the first runtime, {first_runtime}, run (its outputs are the reference of the "
        "other runtimes), or add `reference:`: no other runtime's outputs were compared"
    )


def check_classification_names(config: ModelConfig, model: ModelReport) -> list[Finding]:
    """`classification:` names that are not outputs of the model: a typo, not a choice."""
    declared = config.classification.value
    outputs = {
        metrics.output
        for variant in model.variants
        for run in variant.runs
        for metrics in run.metrics
    }
    if declared is None or not outputs:
        return []
    unknown = [name for name in declared if name not in outputs]
    if not unknown:
        return []
    return [
        make_finding(
            "policy-invalid",
            f"{config.name}: classification names {', '.join(map(repr, unknown))}, which the "
            f"model does not output; its outputs are {', '.join(sorted(outputs))}",
            model=config.name,
            location=config.classification.location or config.source_location,
            details={"unknown": unknown, "outputs": sorted(outputs)},
        )
    ]


def check_evaluation(config: ModelConfig, evaluation: EvaluationResult | None) -> list[Finding]:
    """Evaluation data or reference outputs that could not be produced: nothing to compare."""
    if evaluation is None or evaluation.ok:
        return []
    location = (
        _crash_location(evaluation.crash_cause, config)
        if evaluation.crash_cause
        else data_location(config, "evaluation", evaluation.location)
    )
    limit = _limit_action(evaluation.crash_cause, config, "preparing the evaluation data")
    action = f"{limit}: " if limit else ""
    return [
        make_finding(
            "data-invalid",
            f"{config.name}: {action}evaluation data: {evaluation.error}; outputs not compared",
            model=config.name,
            location=location,
            details={"error": evaluation.error},
        )
    ]

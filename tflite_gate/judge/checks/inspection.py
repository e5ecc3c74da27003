"""Checks of the converted flatbuffer before anything runs: ops (allowed, Flex,
custom), the runtime it needs, unfrozen variables and the size budget.
"""

from __future__ import annotations

from typing import Any

from tflite_gate.findings import Finding
from tflite_gate.judge.checks.common import fixed_batch_hint, setting_location, version_less
from tflite_gate.policy.resolve import ModelConfig, Setting
from tflite_gate.report.model import (
    OpInfo,
    VariantReport,
)
from tflite_gate.rules import make_finding
from tflite_gate.tflite.runtime_versions import ops_newer_than

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
        origin = _op_origin(op.name, variant, denied=op.name in deny)
        hint = None
        if origin is not None:
            hint, source = origin
            message = f"{hint}: {message}; {source}"
        findings.append(
            make_finding(
                "op-not-allowed",
                f"{config.name}/{variant.name}: {message}",
                model=config.name,
                variant=variant.name,
                location=setting_location(setting, config),
                details={"version": op.version, "count": op.count},
                op=op.name,
                hint=hint,
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
            location=setting_location(config.select_tf_ops, config),
            details={"ops": flex},
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
            location=setting_location(config.custom_ops, config),
            details={"count": op.count},
            op=op.name,
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
    metadata_newer = metadata_value is not None and version_less(target, metadata_value)
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
            location=setting_location(config.target_runtime, config),
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
            location=setting_location(budget, config),
            details={"size_bytes": size, "max_size_bytes": budget.value},
            model=config.name,
            variant=variant.name,
        )
    ]


VARIANT_CHECKS = (
    check_ops_allowed,
    check_flex_ops,
    check_custom_ops,
    check_runtime,
    check_unfrozen_variables,
    check_size_budget,
)

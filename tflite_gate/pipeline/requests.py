"""The run plan as the workers are told it: plain requests, each built once per model.

Workers never see the policy. `policy/` cannot import the worker types (they live in
`run/`), so this is where a model's typed plan becomes the requests its conversion,
data and interpreter workers take.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tflite_gate.policy.plan import DataSourcePlan, ModelPlan, RuntimePlan
from tflite_gate.report.model import SourceKind
from tflite_gate.run.protocol import ConversionRequest, KeepFloat, SourceSpec, VariantRequest
from tflite_gate.run.runtimes import RuntimeSpec


@dataclass(frozen=True)
class ModelRequests:
    """What a model's workers are told whatever its source kind: its data and runtimes."""

    calibration: SourceSpec | None
    evaluation: SourceSpec | None
    runtimes: tuple[RuntimeSpec, ...]  # in the policy's order


def model_requests(plan: ModelPlan) -> ModelRequests:
    """The data sources and runtimes of `plan`, as the workers take them."""
    return ModelRequests(
        calibration=source_spec(plan.data.calibration),
        evaluation=source_spec(plan.data.evaluation),
        runtimes=tuple(runtime_spec(runtime) for runtime in plan.runtimes),
    )


def source_spec(source: DataSourcePlan | None) -> SourceSpec | None:
    """A data source as plain data for a worker."""
    if source is None:
        return None
    if source.generate is not None:
        drawn = source.generate
        return SourceSpec(
            kind="generate", seed=drawn.seed, count=drawn.count, low=drawn.low, high=drawn.high
        )
    if source.factory is not None:
        return SourceSpec(kind="generator", factory=source.factory)
    return SourceSpec(kind=source.kind, path=str(source.path))


def runtime_spec(runtime: RuntimePlan) -> RuntimeSpec:
    """A runtime as the runtime cache prepares it."""
    return RuntimeSpec(
        name=runtime.name,
        requirement=runtime.requirement,
        extra=runtime.extra,
        module=runtime.module,
        custom_op_registerers=runtime.custom_op_registerers,
        custom_op_libraries=runtime.custom_op_libraries,
    )


def conversion_request(
    plan: ModelPlan,
    requests: ModelRequests,
    source: tuple[SourceKind, Path | None],
    workspace: Path,
    scratch: Path,
) -> ConversionRequest:
    """What the conversion worker needs for the model's `source` (kind, path), no policy."""
    kind, path = source
    config = plan.config
    return ConversionRequest(
        workspace=str(workspace.resolve()),
        scratch=str(scratch),
        source_kind=kind,
        source=config.source,
        source_path=str(path) if path else None,
        input_shapes=config.input_shapes,
        signature=config.signature,
        safe_mode=config.safe_mode,
        select_tf_ops=config.select_tf_ops.value,
        allow_custom_ops=bool(config.custom_ops.value),
        variants=[
            VariantRequest(
                name=variant.spec.name,
                quantization=variant.spec.quantization,
                io=variant.spec.io,
                keep_float=KeepFloat(nodes=keep.nodes, ops=keep.ops)
                if (keep := variant.spec.keep_float)
                else None,
            )
            for variant in plan.variants
        ],
        calibration=requests.calibration,
        evaluation=requests.evaluation,
        samples=plan.data.samples.value,
    )


def reference_request(
    plan: ModelPlan,
    requests: ModelRequests,
    reference: tuple[SourceKind, Path | None],
    workspace: Path,
    scratch: Path,
    input_shapes: dict[str, list[int]],
) -> ConversionRequest:
    """A .tflite source's reference, loaded for its outputs on the .tflite's inputs only.

    `input_shapes` are the .tflite's inputs (without their batch); the worker pairs
    them with the reference's by name, the policy's `input_map`, or position.
    """
    assert plan.reference is not None
    request = conversion_request(plan, requests, reference, workspace, scratch)
    return request.model_copy(
        update={
            "source": plan.reference.written,
            "input_shapes": input_shapes,
            "signature": None,  # safe_mode is written on a .tflite only for a .keras reference
            "variants": [],  # reference outputs only
            "input_map": {entry.tflite: entry.reference for entry in plan.config.input_map},
        }
    )

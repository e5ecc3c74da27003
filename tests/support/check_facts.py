"""The facts the judge's checks read, built for their tests: a policy resolved as the
pipeline resolves it, variant reports (hand-made, or inspected from a tiny flatbuffer)
and runtime runs in the states a run can end in.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.tflite_builder import OpSpec, build_model
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.resolve import ModelConfig, resolve_model
from tflite_gate.report.model import (
    Inspection,
    OpInfo,
    OutputMetrics,
    RuntimeRun,
    ThresholdViolation,
    VariantReport,
)
from tflite_gate.tflite.facts import inspect_model

POLICY = textwrap.dedent(
    """\
    version: 1
    defaults:
      ops:
        allow: [FULLY_CONNECTED, SOFTMAX]
        deny: [SOFTMAX]
        custom: [MyNms]
      versions:
        target_runtime: "2.14"
        numpy: ">=1.0"
        not-a-real-distribution: ">=1"
    models:
      - name: m
        source: pkg.mod:build
      - name: flexible
        source: pkg.mod:build
        ops: {select_tf_ops: true}
    """
)
"""Two models: `m` with every op limit, `flexible` that accepts Select TF ops."""


TWO_RUNTIMES = textwrap.dedent(
    """\
    version: 1
    models:
      - name: t
        source: m.tflite
        max_divergence: {max_abs: 0.001}
        classification: [probs]
        runtimes: [ai-edge-litert, "tflite-runtime==2.14.0"]
    """
)
"""A .tflite source without a reference, run on two runtimes: the first is the reference."""


def loaded_policy(tmp_path: Path, text: str) -> LoadedPolicy:
    """The policy `text` (dedented), written to tflite-gate.yml and loaded."""
    path = tmp_path / "tflite-gate.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_policy(path, tmp_path)


def resolved_models(tmp_path: Path, text: str) -> list[ModelConfig]:
    """Every model of the policy `text`, written to tflite-gate.yml and resolved."""
    loaded = loaded_policy(tmp_path, text)
    return [resolve_model(loaded, index) for index in range(len(loaded.policy.models))]


def resolved_model(tmp_path: Path, text: str) -> ModelConfig:
    """The first model of the policy `text`, resolved."""
    return resolved_models(tmp_path, text)[0]


def line_of(needle: str, text: str = POLICY) -> int:
    """The line of `text` (1-based) where `needle` first appears."""
    return next(i for i, line in enumerate(textwrap.dedent(text).splitlines(), 1) if needle in line)


def op(name: str, kind: str = "builtin", version: int = 1, count: int = 2) -> OpInfo:
    """One op code as the inspection reports it."""
    return OpInfo(name=name, kind=kind, version=version, count=count)  # type: ignore[arg-type]


def variant(
    *ops: OpInfo,
    metadata_min_runtime: str | None = None,
    quantization: str = "none",
    io: str = "float32",
    size_bytes: int = 10,
) -> VariantReport:
    """A converted variant `v` whose flatbuffer has these ops."""
    return VariantReport(
        name="v",
        quantization=quantization,
        io=io,
        status="converted",
        inspection=Inspection(
            size_bytes=size_bytes,
            schema_version=3,
            subgraphs=1,
            ops=list(ops),
            inputs=[],
            outputs=[],
            signatures=[],
            metadata_min_runtime=metadata_min_runtime,
        ),
    )


def inspected_variant(name: str, quantization: str, *ops: OpSpec) -> VariantReport:
    """A converted variant whose flatbuffer has these ops, inspected as the pipeline does."""
    return VariantReport(
        name=name,
        quantization=quantization,
        io="float32",
        status="converted",
        inspection=inspect_model(build_model(list(ops))),
    )


def output_metrics(output: str = "y", **values: float | int | None) -> OutputMetrics:
    """One output's metrics over 4 samples: a close match, but for `values`."""
    close: dict[str, float | int | None] = {
        "samples": 4,
        "compared": 16,
        "max_abs": 2.4e-7,
        "mean_abs": 1e-7,
        "rmse": 1e-7,
        "rel_rmse": 1e-7,
        "cosine": 1.0,
        "snr_db": 120.0,
    }
    return OutputMetrics(output=output, **{**close, **values})  # type: ignore[arg-type]


def runtime_run(
    runtime: str, status: str, version: str | None = None, compared: bool = False
) -> RuntimeRun:
    """A run that ended in `status`; `compared`: it has one output's close metrics."""
    return RuntimeRun(
        runtime=runtime,
        runtime_version=version,
        status=status,  # type: ignore[arg-type]
        metrics=[output_metrics()] if compared else [],
    )


def nan_run() -> RuntimeRun:
    """A run whose 16 output values are all non-finite where the reference's are not."""
    nothing = output_metrics(
        compared=0,
        max_abs=None,
        mean_abs=None,
        rmse=None,
        rel_rmse=None,
        cosine=None,
        snr_db=None,
        non_finite=16,
    )
    return RuntimeRun(runtime="ai-edge-litert", status="non-finite", metrics=[nothing])


def violated_run(cosine: float, threshold: float) -> RuntimeRun:
    """A run whose output 'y' broke min_cosine `threshold` with `cosine`."""
    measured = output_metrics(max_abs=0.01, mean_abs=0.001, rmse=0.002, rel_rmse=0.01)
    measured = measured.model_copy(update={"cosine": cosine, "snr_db": 40.0})
    broken = ThresholdViolation(
        output="y", threshold_key="min_cosine", metric="cosine", value=cosine, threshold=threshold
    )
    return RuntimeRun(
        runtime="ai-edge-litert", status="diverged", metrics=[measured], violations=[broken]
    )

"""A model's plan as its workers are told it: data sources, runtimes, conversion requests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tflite_gate.pipeline.requests import (
    conversion_request,
    model_requests,
    reference_request,
)
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.plan import ModelPlan, plan_run
from tflite_gate.run.protocol import KeepFloat, SourceSpec, VariantRequest
from tflite_gate.run.runtimes import RuntimeSpec

POLICY = "tflite-gate.yml"

PLAN = """\
    version: 1
    models:
      - name: keras
        source: models/a.keras
        input_shapes: {x: [1, 4]}
        ops: {select_tf_ops: true, custom: [MyOp]}
        data:
          calibration: calib.npz
          evaluation: {generate: {seed: 3, count: 4, low: 0, high: 2}}
          samples: 8
        variants:
          - {name: float}
          - {name: int8, quantization: int8, io: int8, keep_float: {ops: [softmax]}}
        runtimes:
          - ai-edge-litert
          - {requirement: wheels/rt.whl, with: ["numpy<2"], module: rt.interpreter}
      - name: lite
        source: models/b.tflite
        reference: models/b.keras
        input_map: {image: x}
        data: {evaluation: pkg.data:samples}
    """


def plans(workspace: Path) -> tuple[ModelPlan, ...]:
    (workspace / POLICY).write_text(textwrap.dedent(PLAN), encoding="utf-8")
    return plan_run(load_policy(workspace / POLICY, workspace), workspace).models


def test_data_sources_and_runtimes_are_plain_worker_specs(tmp_path: Path) -> None:
    keras, lite = plans(tmp_path)
    requests = model_requests(keras)
    workspace = tmp_path.resolve()
    assert requests.calibration == SourceSpec(kind="npz", path=str(workspace / "calib.npz"))
    assert requests.evaluation == SourceSpec(kind="generate", seed=3, count=4, low=0, high=2)
    assert requests.runtimes == (
        RuntimeSpec(name="ai-edge-litert", requirement=None),
        RuntimeSpec(
            name="wheels/rt.whl",
            requirement=str(workspace / "wheels/rt.whl"),
            extra=("numpy<2",),
            module="rt.interpreter",
        ),
    )
    other = model_requests(lite)
    assert other.calibration is None
    assert other.evaluation == SourceSpec(kind="generator", factory="pkg.data:samples")


def test_a_conversion_request_carries_the_models_settings_and_variants(tmp_path: Path) -> None:
    keras, _ = plans(tmp_path)
    requests = model_requests(keras)
    source = tmp_path / "models/a.keras"
    request = conversion_request(keras, requests, ("keras", source), tmp_path, tmp_path / "s")
    assert (request.workspace, request.scratch) == (str(tmp_path.resolve()), str(tmp_path / "s"))
    assert (request.source_kind, request.source, request.source_path) == (
        "keras",
        "models/a.keras",
        str(source),
    )
    assert request.input_shapes == {"x": [1, 4]}
    assert (request.select_tf_ops, request.allow_custom_ops, request.samples) == (True, True, 8)
    assert request.variants == [
        VariantRequest(name="float", quantization="none"),
        VariantRequest(
            name="int8", quantization="int8", io="int8", keep_float=KeepFloat(ops=["SOFTMAX"])
        ),
    ]
    assert (request.calibration, request.evaluation) == (requests.calibration, requests.evaluation)


def test_a_reference_request_asks_for_outputs_on_the_tflites_inputs_only(tmp_path: Path) -> None:
    _, lite = plans(tmp_path)
    reference = tmp_path / "models/b.keras"
    request = reference_request(
        lite,
        model_requests(lite),
        ("keras", reference),
        tmp_path,
        tmp_path / "ref",
        input_shapes={"image": [4]},
    )
    assert (request.source, request.source_path) == ("models/b.keras", str(reference))
    assert request.input_shapes == {"image": [4]}
    assert request.input_map == {"image": "x"}
    assert (request.variants, request.signature) == ([], None)
    assert request.evaluation == SourceSpec(kind="generator", factory="pkg.data:samples")

"""The messages between the gate and its workers: requests and results that round-trip,
and results that do not fit (or name files outside their scratch) read as no result.
The interpreter worker's own check is tested in interpreter_worker/test_messages.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tflite_gate.convert.parent import finished_results
from tflite_gate.run.interpreter import read_result
from tflite_gate.run.interpreter_worker.messages import InterpreterResult
from tflite_gate.run.protocol import (
    ConversionRequest,
    EvaluationResult,
    LoadResult,
    TensorSpec,
    VariantRequest,
    VariantResult,
    read_message,
    read_request,
    write_message,
)


@pytest.mark.parametrize(
    "text",
    [
        '{"ok": true, "samples": "3"}',
        '{"ok": true, "outputs": ["y"], "ragged": {"y": [0]}}',
        '{"ok": false, "phase": "invoke", "surprise": 1}',
        '{"ok": true, "samples": 3',
        "[]",
    ],
)
def test_a_result_that_does_not_fit_is_no_result(tmp_path: Path, text: str) -> None:
    path = tmp_path / "result.json"
    path.write_text(text)
    assert read_result(path) is None


def test_a_worker_result_reads_back_typed(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text('{"ok": true, "samples": 3, "outputs": ["y"], "ragged": {}}')
    assert read_result(path) == InterpreterResult(ok=True, samples=3, outputs=["y"])


def _conversion_request(scratch: Path) -> ConversionRequest:
    return ConversionRequest(
        workspace=str(scratch.parent),
        scratch=str(scratch),
        source_kind="keras",
        source="model.keras",
        source_path=None,
        input_shapes={},
        signature=None,
        safe_mode=True,
        select_tf_ops=False,
        allow_custom_ops=False,
        variants=[VariantRequest(name="float", quantization="none")],
    )


def test_a_conversion_request_round_trips_and_a_bad_one_raises(tmp_path: Path) -> None:
    request = _conversion_request(tmp_path / "scratch")
    write_message(tmp_path / "request.json", request)
    assert read_request(tmp_path / "request.json", ConversionRequest) == request
    raw = json.loads((tmp_path / "request.json").read_text())
    (tmp_path / "bad.json").write_text(json.dumps({**raw, "source_kind": "onnx"}))
    with pytest.raises(ValidationError, match="source_kind"):
        read_request(tmp_path / "bad.json", ConversionRequest)
    assert read_message(tmp_path / "bad.json", ConversionRequest) is None


@pytest.mark.parametrize("name", ["../model.tflite", "/etc/passwd", "sub/variant.tflite", ".."])
def test_a_result_naming_a_file_outside_its_scratch_is_no_result(tmp_path: Path, name: str) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    write_message(scratch / "load.json", LoadResult(ok=True))
    variant = {"name": "float", "ok": True, "tflite_path": name}
    (scratch / "variant-float.json").write_text(json.dumps(variant))
    evaluation = {"ok": True, "inputs_path": name, "reference_path": "reference-outputs.npz"}
    (scratch / "evaluation.json").write_text(json.dumps(evaluation))

    result = finished_results(_conversion_request(scratch), 0.0)

    assert result.variants["float"].tflite_path is None
    assert not result.variants["float"].ok and result.variants["float"].crash
    assert result.evaluation is None


def test_bare_result_files_resolve_inside_the_scratch(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    write_message(scratch / "load.json", LoadResult(ok=True))
    write_message(
        scratch / "variant-float.json",
        VariantResult(name="float", ok=True, tflite_path="variant-float.tflite"),
    )
    write_message(
        scratch / "evaluation.json",
        EvaluationResult(ok=True, inputs_path="in.npz", reference_path="ref.npz"),
    )
    result = finished_results(_conversion_request(scratch), 0.0)
    assert result.variants["float"].tflite_path == str(scratch / "variant-float.tflite")
    assert result.evaluation is not None
    assert result.evaluation.inputs_path == str(scratch / "in.npz")


def test_a_tensor_spec_reads_and_writes_the_reports_dynamic_dimensions() -> None:
    spec = TensorSpec.from_dims("x", [-1, 4, -1], "float32")
    assert spec.shape == [None, 4, None]
    assert spec.dims() == [-1, 4, -1]
    assert TensorSpec.model_validate_json(spec.model_dump_json()) == spec

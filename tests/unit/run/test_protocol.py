"""The messages between the gate and its workers: one schema, checked at both ends."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from tflite_gate.convert.parent import finished_results
from tflite_gate.run.interpreter import WORKER_DIRECTORY, read_result
from tflite_gate.run.interpreter_worker.messages import (
    InterpreterRequest,
    InterpreterResult,
    SchemaError,
    checked,
)
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

# JSON values of every shape the two schemas use, right and wrong for each field.
_VALUES = st.sampled_from(
    ["s", "", 0, 3, -1, True, False, None, 1.5, [], ["a"], [1], [None], {}, {"k": ["v"]},
     {"k": [1]}, {"k": "v"}, {"1": []}]
)  # fmt: skip


def _payloads(kind: type) -> st.SearchStrategy[dict[str, Any]]:
    """Objects whose fields are each missing or any of `_VALUES`, sometimes one extra key."""
    names = [f.name for f in dataclasses.fields(kind)]
    fields = st.fixed_dictionaries({}, optional={name: _VALUES for name in names})
    extra = st.dictionaries(st.sampled_from(["extra", "Model"]), _VALUES, max_size=1)
    return st.builds(lambda a, b: {**a, **b}, fields, extra)


def _pydantic(kind: type, payload: dict[str, Any]) -> Any:
    try:
        return TypeAdapter(kind).validate_json(json.dumps(payload), strict=True)
    except ValidationError:
        return None


def _own(kind: type, payload: dict[str, Any]) -> Any:
    try:
        return checked(kind, json.loads(json.dumps(payload)))
    except SchemaError:
        return None


@pytest.mark.parametrize("kind", [InterpreterRequest, InterpreterResult])
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_the_worker_check_and_pydantic_agree_on_every_payload(
    kind: type, data: st.DataObject
) -> None:
    payload = data.draw(_payloads(kind))
    assert _own(kind, payload) == _pydantic(kind, payload)


def test_a_valid_request_passes_both_checks_unchanged() -> None:
    request = {
        "model": "m.tflite",
        "module": "ai_edge_litert.interpreter",
        "inputs": "in.npz",
        "outputs": "out.npz",
        "result": "result.json",
        "status": "status.jsonl",
        "num_threads": 2,
        "custom_op_registerers": ["pkg.ops:register"],
    }
    ours, theirs = _own(InterpreterRequest, request), _pydantic(InterpreterRequest, request)
    assert ours is not None and ours == theirs
    assert ours.num_threads == 2 and ours.pythonpath == []


@pytest.mark.slow
def test_the_worker_refuses_a_request_that_does_not_fit(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    fields = {"model": "m", "module": "x", "inputs": "i", "outputs": "o", "result": "r"}
    request.write_text(json.dumps({**fields, "status": "s", "num_threads": "2"}))
    done = subprocess.run(
        [sys.executable, str(WORKER_DIRECTORY), str(request)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "InterpreterRequest.num_threads: expected int, got str" in done.stderr
    assert not (tmp_path / "r").exists()


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

"""The request and the result between the gate and the interpreter worker: one schema,
checked by pydantic in the gate and by `checked` in the worker, which has no pydantic.
Both ends must agree on every payload, and the worker must name the field at fault."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from tflite_gate.run.interpreter_worker.messages import (
    InterpreterRequest,
    InterpreterResult,
    SchemaError,
    checked,
)

# JSON values of every shape the two schemas use, right and wrong for each field.
_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    ["s", "", 0, 3, -1, True, False, None, 1.5, [], ["a"], [1], [None], {}, {"k": ["v"]},
     {"k": [1]}, {"k": "v"}, {"1": []}]
)  # fmt: skip

REQUEST = {
    "model": "m.tflite",
    "module": "ai_edge_litert.interpreter",
    "inputs": "in.npz",
    "outputs": "out.npz",
    "result": "result.json",
    "status": "status.jsonl",
}


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
    request = {**REQUEST, "num_threads": 2, "custom_op_registerers": ["pkg.ops:register"]}
    ours, theirs = _own(InterpreterRequest, request), _pydantic(InterpreterRequest, request)
    assert ours is not None and ours == theirs
    assert ours.num_threads == 2 and ours.pythonpath == []


def test_fields_left_out_take_their_defaults() -> None:
    result = checked(InterpreterResult, {"ok": False})
    assert result == InterpreterResult(ok=False)
    assert (result.samples, result.outputs, result.ragged, result.latency_ms) == (0, [], {}, None)


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ({**REQUEST, "zeta": 1, "alpha": 2}, "InterpreterRequest: unknown field(s) alpha, zeta"),
        ({k: v for k, v in REQUEST.items() if k != "status"}, "InterpreterRequest.status: required"),
        ({**REQUEST, "batch": True}, "InterpreterRequest.batch: expected int, got bool"),
        ({**REQUEST, "pythonpath": ["a", 1]}, "InterpreterRequest.pythonpath: expected list[str], got list"),
        (["not", "an", "object"], "InterpreterRequest: expected an object, got list"),
    ],
)  # fmt: skip
def test_a_request_that_does_not_fit_names_the_field_at_fault(payload: Any, said: str) -> None:
    with pytest.raises(SchemaError) as caught:
        checked(InterpreterRequest, payload)
    assert str(caught.value) == said


def test_result_fields_take_what_json_gives_them() -> None:
    """An int is a JSON number (a float field takes it), None fills an optional field."""
    result = checked(InterpreterResult, {"ok": True, "latency_ms": 3, "phase": None})
    assert (result.latency_ms, result.phase) == (3, None)
    with pytest.raises(SchemaError, match=r"latency_ms: expected float \| None, got bool"):
        checked(InterpreterResult, {"ok": True, "latency_ms": False})
    with pytest.raises(SchemaError, match=r"ragged: expected dict\[str, list\[str\]\], got dict"):
        checked(InterpreterResult, {"ok": True, "ragged": {"y": "__ragged_0_0"}})

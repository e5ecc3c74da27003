"""Ranking op outputs by the error each adds, and the keep_float sets built from them."""

from __future__ import annotations

import math

from tflite_gate.layer_errors import _Tensor, keep_float_sets, rank


def _tensor(op: str, inputs: list[str], error: float, reference: float = 1.0) -> _Tensor:
    return _Tensor(
        op=op, inputs=inputs, squared_error=error**2, squared_reference=reference**2, count=4
    )


def test_the_op_that_adds_the_error_ranks_first_not_the_ones_it_reaches() -> None:
    tensors = {
        "a": _tensor("CONV_2D", ["input"], 0.01),
        "b": _tensor("CONV_2D", ["a"], 0.50),  # the jump: b's own quantization
        "c": _tensor("RELU", ["b"], 0.505),  # carries b's error on, adds little
        "d": _tensor("ADD", ["c", "a"], 0.506),
    }
    layers = rank(tensors, top=3)
    assert [layer.tensor for layer in layers] == ["b", "a", "c"]
    assert math.isclose(layers[0].added, 0.49)
    assert math.isclose(sum(layer.share for layer in rank(tensors, top=10)), 1.0)
    assert layers[0].inputs == ["a"]  # "input" is not an op output


def test_keep_float_sets_grow_with_the_ops_that_feed_the_top_layers() -> None:
    tensors = {
        "a": _tensor("FULLY_CONNECTED", [], 0.01),
        "b": _tensor("FULLY_CONNECTED", ["a"], 0.9),
        "c": _tensor("FULLY_CONNECTED", ["b"], 0.95),
    }
    layers = rank(tensors, top=5)
    assert keep_float_sets(layers, [1, 2, 3]) == [["a", "b"], ["a", "b", "c"]]  # no repeats


def test_no_error_at_all_still_lists_the_layers_without_a_share() -> None:
    tensors = {"a": _tensor("ADD", [], 0.0), "b": _tensor("MUL", ["a"], 0.0)}
    layers = rank(tensors, top=5)
    assert [(layer.tensor, layer.share) for layer in layers] == [("a", 0.0), ("b", 0.0)]


def test_unmeasured_and_infinite_tensors_are_left_out() -> None:
    tensors = {
        "a": _tensor("ADD", [], 0.1),
        "b": _Tensor(op="MUL", inputs=["a"]),  # never compared
        "c": _tensor("SUB", ["a"], 1.0, reference=0.0),  # all-zero reference: infinite
    }
    assert [layer.tensor for layer in rank(tensors, top=5)] == ["a"]

"""Ranking op outputs by their part of the output error, and the keep_float sets built from them."""

from __future__ import annotations

import math

from tflite_gate.convert.layer_errors import (
    _Made,
    _Tensor,
    keep_float_candidates,
    keep_float_sets,
    output_activation,
    rank,
)
from tflite_gate.run.protocol import KeepFloat


def _tensor(
    op: str,
    inputs: list[str],
    error: float,
    reference: float = 1.0,
    *,
    output: bool = False,
    made: float | None = None,
) -> _Tensor:
    """An op output whose relative error is `error`; `made` (0 to 1) is the part of it
    its own op made, as the numeric-verify model measures it (None: not measured)."""
    return _Tensor(
        op=op,
        inputs=inputs,
        output=output,
        squared_error=error**2,
        squared_reference=reference**2,
        count=4,
        made=None
        if made is None
        else _Made(squared=made * error**2, along=made * error**2, reached=error**2),
    )


def test_the_op_that_adds_the_error_ranks_first_not_the_ones_it_reaches() -> None:
    tensors = {
        "a": _tensor("CONV_2D", ["input"], 0.01),
        "b": _tensor("CONV_2D", ["a"], 0.50),  # the jump: b's own quantization
        "c": _tensor("RELU", ["b"], 0.505),  # carries b's error on, adds little
        "d": _tensor("ADD", ["c", "a"], 0.506, output=True),
    }
    layers = rank(tensors, top=3)
    assert [layer.tensor for layer in layers] == ["b", "a", "c"]
    assert math.isclose(layers[0].added, 0.49)
    assert math.isclose(sum(layer.share for layer in rank(tensors, top=10)), 1.0)
    assert layers[0].readers == ["c"]
    assert layers[1].readers == ["b", "d"]


def test_keep_float_sets_grow_with_the_ops_that_read_the_top_layers() -> None:
    tensors = {
        "a": _tensor("FULLY_CONNECTED", [], 0.01),
        "b": _tensor("FULLY_CONNECTED", ["a"], 0.9),
        "c": _tensor("FULLY_CONNECTED", ["b"], 0.95, output=True),
    }
    layers = rank(tensors, top=5)
    assert [layer.tensor for layer in layers] == ["b", "c", "a"]
    assert keep_float_sets(layers, [1, 2, 3]) == [["b", "c"], ["b", "c", "a"]]  # no repeats


def test_the_readers_of_a_layer_include_those_behind_a_reshape() -> None:
    tensors = {
        "conv": _tensor("CONV_2D", ["image"], 0.5, made=1.0),
        "flat": _tensor("RESHAPE", ["conv"], 0.5, made=0.0),
        "logits": _tensor("FULLY_CONNECTED", ["flat"], 0.5, output=True, made=0.0),
    }
    [top] = rank(tensors, top=1)
    assert (top.tensor, top.readers) == ("conv", ["flat", "logits"])


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


def test_an_output_softmax_that_makes_its_own_error_ranks_first() -> None:
    """The small CNN's numbers: the logits' relative error is larger than the
    probabilities', yet most of the probabilities' error is their own rounding."""
    tensors = {
        "conv": _tensor("CONV_2D", ["image"], 0.0067, made=1.0),
        "logits": _tensor("FULLY_CONNECTED", ["conv"], 0.069, made=0.93),
        "probs": _tensor("SOFTMAX", ["logits"], 0.0115, output=True, made=0.85),
    }
    layers = rank(tensors, top=3)
    assert [layer.tensor for layer in layers] == ["probs", "logits", "conv"]
    assert math.isclose(layers[0].share, 0.85)
    assert math.isclose(layers[0].added, 0.0115 * math.sqrt(0.85))


def test_an_error_a_softmax_only_carries_on_is_blamed_where_it_was_made() -> None:
    """Logits with a large common offset: a small relative error there, a large one after
    the softmax, which made almost none of it."""
    tensors = {
        "hidden": _tensor("FULLY_CONNECTED", ["x"], 0.013, made=1.0),
        "logits": _tensor("FULLY_CONNECTED", ["hidden"], 0.0011, reference=100.0, made=0.98),
        "probs": _tensor("SOFTMAX", ["logits"], 0.078, output=True, made=0.0024),
    }
    layers = rank(tensors, top=3)
    assert layers[0].tensor == "logits"
    assert layers[0].share > 0.9
    assert next(layer for layer in layers if layer.tensor == "probs").share < 0.01


def test_every_output_splits_its_error_over_the_ops_that_made_it() -> None:
    tensors = {
        "a": _tensor("CONV_2D", ["image"], 0.1, made=1.0),
        "b": _tensor("CONV_2D", ["image"], 0.3, made=1.0),
        "sum": _tensor("ADD", ["a", "b"], 0.2, made=0.5),
        "out": _tensor("LOGISTIC", ["sum"], 0.1, output=True, made=0.0),
        "side": _tensor("TANH", ["a"], 0.1, output=True, made=1.0),
    }
    share = {layer.tensor: layer.share for layer in rank(tensors, top=5)}
    assert math.isclose(sum(share.values()), 1.0)
    assert math.isclose(share["side"], 0.5)  # made all of one output's error
    assert math.isclose(share["sum"], 0.25)  # half of the other's
    assert math.isclose(share["b"], 0.25 * 0.9)  # the rest, by the squared error each input brought
    assert math.isclose(share["a"], 0.25 * 0.1)
    assert "out" not in share  # made none of it


def test_the_output_activation_is_a_keep_float_candidate() -> None:
    head = {
        "logits": _tensor("FULLY_CONNECTED", ["x"], 0.01),
        "probs": _tensor("SOFTMAX", ["logits"], 0.01),
        "flat": _tensor("RESHAPE", ["probs"], 0.01, output=True),
    }
    assert output_activation(head) == KeepFloat(ops=["SOFTMAX"])
    attention = {"scores": _tensor("SOFTMAX", ["x"], 0.01), **head}
    assert output_activation(attention) == KeepFloat(nodes=["probs"])  # not every SOFTMAX
    logits_only = {"logits": _tensor("FULLY_CONNECTED", ["x"], 0.01, output=True)}
    assert output_activation(logits_only) is None


def test_the_output_activation_is_tried_first_with_what_the_variant_keeps_already() -> None:
    tensors = {
        "conv": _tensor("CONV_2D", ["image"], 0.3, made=1.0),
        "logits": _tensor("FULLY_CONNECTED", ["conv"], 0.3, made=0.0),
        "probs": _tensor("SOFTMAX", ["logits"], 0.3, output=True, made=0.0),
    }
    layers = rank(tensors, top=3)
    kept = KeepFloat(nodes=["conv"])
    assert keep_float_candidates(tensors, layers, [1, 2], kept) == [
        KeepFloat(nodes=["conv"], ops=["SOFTMAX"]),
        KeepFloat(nodes=["conv", "logits"]),  # the top layer and its reader
    ]
    already = KeepFloat(ops=["SOFTMAX"])
    assert keep_float_candidates(tensors, layers, [1], already) == [
        KeepFloat(nodes=["conv", "logits"], ops=["SOFTMAX"])  # the activation adds nothing
    ]

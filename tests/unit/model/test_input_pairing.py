"""Pairing a .tflite's inputs with its reference's: by name, `input_map`, or position."""

from __future__ import annotations

import pytest

from tflite_gate.model.input_pairing import PairingError, check_map_keys, pair_inputs


def test_same_names_pair_by_name() -> None:
    pairs = pair_inputs(["b", "a"], ["a", "b"], {})
    assert (pairs.names, pairs.by_position) == ({"b": "b", "a": "a"}, False)


def test_a_converted_tensor_name_is_its_signature_name() -> None:
    assert pair_inputs(["serving_default_x:0"], ["x"], {}).names == {"serving_default_x:0": "x"}


def test_one_input_each_pairs_by_position_when_renamed() -> None:
    pairs = pair_inputs(["input_1"], ["input"], {})
    assert (pairs.names, pairs.by_position) == ({"input_1": "input"}, True)


def test_input_map_pairs_what_names_cannot() -> None:
    pairs = pair_inputs(["a", "b", "same"], ["left", "right", "same"], {"a": "right", "b": "left"})
    assert pairs.names == {"a": "right", "b": "left", "same": "same"}
    assert not pairs.by_position


def test_input_map_wins_over_equal_names() -> None:
    """A map that swaps two same-named inputs means it: the names are a coincidence."""
    assert pair_inputs(["a", "b"], ["a", "b"], {"a": "b", "b": "a"}).names == {"a": "b", "b": "a"}


def test_several_renamed_inputs_need_input_map() -> None:
    with pytest.raises(PairingError) as caught:
        pair_inputs(["a", "b"], ["left", "right"], {})
    assert caught.value.entry is None
    assert caught.value.message == (
        "pair the inputs in input_map (the .tflite's input: the reference's), e.g. "
        "input_map: {a: left, b: right} (check the order): the reference's inputs (left, "
        "right) are not the .tflite's (a, b) by name"
    )


def test_only_the_unpaired_inputs_are_suggested() -> None:
    with pytest.raises(PairingError, match=r"e\.g\. input_map: \{b: right, c: other\} "):
        pair_inputs(["a", "b", "c"], ["a", "right", "other"], {})


def test_a_different_number_of_inputs_cannot_pair() -> None:
    with pytest.raises(PairingError) as caught:
        pair_inputs(["x"], ["x", "y"], {})
    assert caught.value.message == (
        "use a reference that takes the .tflite's inputs: it takes 2 (x, y), the .tflite 1 (x)"
    )


def test_an_unknown_map_key_names_the_entry() -> None:
    with pytest.raises(PairingError) as caught:
        check_map_keys(["a", "b"], {"a": "left", "c": "right"})
    assert (caught.value.entry, caught.value.in_value) == ("c", False)
    assert caught.value.message == (
        "input_map: write one of the .tflite's inputs (a, b) instead of 'c'"
    )


def test_an_unknown_map_value_names_the_entry() -> None:
    with pytest.raises(PairingError) as caught:
        pair_inputs(["a", "b"], ["left", "right"], {"a": "left", "b": "rihgt"})
    assert (caught.value.entry, caught.value.in_value) == ("b", True)
    assert caught.value.message == (
        "input_map.b: write one of the reference's inputs (left, right) instead of 'rihgt'"
    )


def test_a_mapped_input_is_not_paired_again_by_name() -> None:
    """`a: left` takes the reference's `left`; the .tflite's own `left` still needs one."""
    with pytest.raises(PairingError, match=r"e\.g\. input_map: \{left: right\} "):
        pair_inputs(["a", "left"], ["left", "right"], {"a": "left"})

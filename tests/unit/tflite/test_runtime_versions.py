"""Tests for the ported op-version -> minimum-runtime table (no TensorFlow import)."""

from __future__ import annotations

import dataclasses

import pytest

from tflite_gate.tflite.runtime_versions import (
    MIN_RUNTIME_BY_OP_VERSION,
    OpRuntimeRequirement,
    min_runtime_for_op,
    ops_newer_than,
    parse_runtime_version,
    required_runtime,
    runtime_version_less,
)


def test_table_size_matches_upstream_port() -> None:
    # 420 {{BuiltinOperator_X, N}, "a.b.c"} entries at the ported commit.
    assert len(MIN_RUNTIME_BY_OP_VERSION) == 420


def test_every_table_value_parses_and_keys_are_well_formed() -> None:
    for (op, version), runtime in MIN_RUNTIME_BY_OP_VERSION.items():
        assert op == op.upper()
        assert not op.startswith("BuiltinOperator_")
        assert version >= 1
        assert len(parse_runtime_version(runtime)) == 3


def test_known_entries() -> None:
    assert min_runtime_for_op("FULLY_CONNECTED", 12) == "2.17.0"
    assert min_runtime_for_op("CONV_2D", 1) == "1.5.0"
    assert min_runtime_for_op("TRANSPOSE", 7) == "2.14.4"
    assert min_runtime_for_op("STABLEHLO_CASE", 1) == "2.17.0"


def test_unknown_op_or_version_is_none() -> None:
    assert min_runtime_for_op("NOT_AN_OP", 1) is None
    assert min_runtime_for_op("FULLY_CONNECTED", 999) is None
    # Rolled back upstream: version 1 deliberately has no entry.
    assert min_runtime_for_op("BROADCAST_TO", 1) is None


def test_parse_normalizes_to_three_parts() -> None:
    assert parse_runtime_version("2.14") == (2, 14, 0)
    assert parse_runtime_version("2.14") == parse_runtime_version("2.14.0")
    assert parse_runtime_version("2") == (2, 0, 0)
    assert parse_runtime_version(" 1.13.1 ") == (1, 13, 1)
    assert parse_runtime_version("2.14.0.0") == parse_runtime_version("2.14")


def test_version_ordering_is_numeric() -> None:
    assert runtime_version_less("2.9", "2.14")
    assert not runtime_version_less("2.14", "2.9")
    assert not runtime_version_less("2.14", "2.14.0")
    assert not runtime_version_less("2.14.0", "2.14")
    assert runtime_version_less("2.14.0", "2.14.4")


@pytest.mark.parametrize("bad", ["", "abc", "2.", ".2", "2..14", "2.14rc0", "-1", "v2.14"])
def test_parse_errors_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid runtime version"):
        parse_runtime_version(bad)


def test_less_rejects_bad_versions() -> None:
    with pytest.raises(ValueError):
        runtime_version_less("abc", "2.14")


def test_required_runtime_orders_most_demanding_first() -> None:
    highest, reqs = required_runtime([("FULLY_CONNECTED", 12), ("ADD", 1)])
    assert highest == "2.17.0"
    assert reqs == [
        OpRuntimeRequirement("FULLY_CONNECTED", 12, "2.17.0"),
        OpRuntimeRequirement("ADD", 1, "1.5.0"),
    ]
    assert str(reqs[0]) == "FULLY_CONNECTED v12 needs runtime 2.17.0"


def test_required_runtime_dedupes_skips_unknown_and_breaks_ties_by_name() -> None:
    highest, reqs = required_runtime(
        [("MUL", 1), ("CONV_2D", 1), ("MUL", 1), ("NOT_AN_OP", 3), ("ADD", 1)]
    )
    assert highest == "1.5.0"
    assert [(r.op, r.version) for r in reqs] == [("ADD", 1), ("CONV_2D", 1), ("MUL", 1)]


def test_required_runtime_numeric_not_lexical_ordering() -> None:
    # "2.9.0" > "2.14.0" as strings; numerically 2.14.0 must come first.
    _, reqs = required_runtime([("CONV_2D", 6), ("STRIDED_SLICE", 7)])
    assert [r.min_runtime for r in reqs] == ["2.14.0", "2.9.0"]


def test_required_runtime_empty_or_all_unknown() -> None:
    assert required_runtime([]) == (None, [])
    assert required_runtime([("NOT_AN_OP", 1)]) == (None, [])


def test_ops_newer_than() -> None:
    ops = [("FULLY_CONNECTED", 12), ("ADD", 1)]
    assert ops_newer_than(ops, "2.14") == [OpRuntimeRequirement("FULLY_CONNECTED", 12, "2.17.0")]
    # Strictly greater: an op needing exactly the target runtime is fine.
    assert ops_newer_than(ops, "2.17") == []
    assert ops_newer_than(ops, "1.0") == required_runtime(ops)[1]


def test_ops_newer_than_rejects_bad_target_even_without_ops() -> None:
    with pytest.raises(ValueError):
        ops_newer_than([], "abc")


def test_requirement_is_frozen() -> None:
    req = OpRuntimeRequirement("ADD", 1, "1.5.0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.op = "SUB"  # type: ignore[misc]

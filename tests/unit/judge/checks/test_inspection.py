"""Checks of the converted flatbuffer before anything runs: which ops, which runtime,
unfrozen variables and the size budget, each at the policy line a reviewer would change."""

from __future__ import annotations

from pathlib import Path

from tests.support.check_facts import (
    inspected_variant,
    line_of,
    op,
    resolved_model,
    variant,
)
from tests.support.tflite_builder import builtin
from tflite_gate.judge import checks
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import TensorInfo, VariantReport


def test_allowed_ops_pass(configs: list[ModelConfig]) -> None:
    assert checks.check_ops_allowed(configs[0], variant(op("FULLY_CONNECTED"))) == []


def test_op_outside_allow_and_denied_op(configs: list[ModelConfig]) -> None:
    findings = checks.check_ops_allowed(configs[0], variant(op("CONV_2D"), op("SOFTMAX")))
    assert [f.message for f in findings] == [
        "m/v: CONV_2D (v1, used 2x) is not in ops.allow",
        "m/v: SOFTMAX (v1, used 2x) is listed in ops.deny",
    ]
    assert [str(f.location) for f in findings] == [
        f"tflite-gate.yml:{line_of('allow:')}:12",
        f"tflite-gate.yml:{line_of('deny:')}:11",
    ]


def test_quantize_ops_outside_allow_say_where_they_come_from(configs: list[ModelConfig]) -> None:
    edges = (op("QUANTIZE"), op("DEQUANTIZE"), op("SHAPE"))
    int8 = checks.check_ops_allowed(configs[0], variant(*edges, quantization="int8"))
    assert [f.message for f in int8] == [
        "m/v: add QUANTIZE to ops.allow, or set io: int8 on variant v if the app can feed and "
        "read int8: QUANTIZE (v1, used 2x) is not in ops.allow; the int8 variant converts its "
        "float32 inputs and outputs with it",
        "m/v: add DEQUANTIZE to ops.allow, or set io: int8 on variant v if the app can feed and "
        "read int8: DEQUANTIZE (v1, used 2x) is not in ops.allow; the int8 variant converts its "
        "float32 inputs and outputs with it",
        "m/v: SHAPE (v1, used 2x) is not in ops.allow",  # no dynamic batch here: no hint
    ]
    int16 = checks.check_ops_allowed(configs[0], variant(op("QUANTIZE"), quantization="int16x8"))
    assert "or set io: int16 on variant v if the app can feed and read int16: " in int16[0].message
    float16 = checks.check_ops_allowed(
        configs[0], variant(op("DEQUANTIZE"), quantization="float16")
    )
    assert [f.message for f in float16] == [
        "m/v: add DEQUANTIZE to ops.allow: DEQUANTIZE (v1, used 2x) is not in ops.allow; the "
        "float16 variant stores its weights as float16 and turns them into float32 with it"
    ]
    integer_io = checks.check_ops_allowed(
        configs[0], variant(op("QUANTIZE"), quantization="int8", io="int8")
    )
    assert [f.message for f in integer_io] == ["m/v: QUANTIZE (v1, used 2x) is not in ops.allow"]


def _dynamic_batch(status: str) -> VariantReport:
    shaped = variant(op("SHAPE"), op("PACK"), op("FULLY_CONNECTED"))
    assert shaped.inspection is not None
    shaped.inspection.inputs = [TensorInfo(name="x", shape=[-1, 5], dtype="float32")]
    return shaped.model_copy(update={"status": status})


def test_shape_ops_of_a_dynamic_batch_lead_with_a_fixed_batch(configs: list[ModelConfig]) -> None:
    findings = checks.check_ops_allowed(configs[0], _dynamic_batch("converted"))
    assert [f.message for f in findings] == [
        f"m/v: set a fixed batch: input_shapes: {{x: [1, 5]}}: {name} (v1, used 2x) is not in "
        "ops.allow; it computes shapes for the dynamic batch"
        for name in ("SHAPE", "PACK")
    ]
    assert {f.hint for f in findings} == {"set a fixed batch: input_shapes: {x: [1, 5]}"}
    assert {f.op for f in findings} == {"SHAPE", "PACK"}


def test_a_tflite_run_as_is_gets_no_fixed_batch_hint(configs: list[ModelConfig]) -> None:
    """Nothing converts a .tflite source here: input_shapes would not change its ops."""
    findings = checks.check_ops_allowed(configs[0], _dynamic_batch("not-converted"))
    assert [f.hint for f in findings] == [None, None]
    assert findings[0].message == "m/v: SHAPE (v1, used 2x) is not in ops.allow"


def test_a_denied_quantize_op_is_never_explained_away(tmp_path: Path) -> None:
    config = resolved_model(
        tmp_path,
        "version: 1\nmodels:\n  - name: m\n    source: m.keras\n    ops: {deny: [QUANTIZE]}\n",
    )
    [finding] = checks.check_ops_allowed(config, variant(op("QUANTIZE"), quantization="int8"))
    assert finding.message == "m/v: QUANTIZE (v1, used 2x) is listed in ops.deny"
    assert finding.hint is None
    assert finding.location is not None and finding.location.line == 5


def test_flex_ops_are_errors_unless_allowed(configs: list[ModelConfig]) -> None:
    flex = variant(op("FlexMatrixDeterminant", "flex"))
    [strict] = checks.check_flex_ops(configs[0], flex)
    assert (strict.rule, strict.severity.value) == ("flex-op", "error")
    assert strict.location is not None and strict.location.line == line_of("source: pkg")
    assert checks.check_flex_ops(configs[1], flex) == []  # check_flex_runs says it


def test_custom_ops_must_be_listed(configs: list[ModelConfig]) -> None:
    findings = checks.check_custom_ops(
        configs[0], variant(op("MyNms", "custom"), op("Other", "custom"))
    )
    assert [f.message for f in findings] == ["m/v: custom op Other is not listed in ops.custom"]
    assert findings[0].location is not None and findings[0].location.line == line_of("custom:")


def test_runtime_too_old_names_the_ops(configs: list[ModelConfig]) -> None:
    needs_new = variant(op("FULLY_CONNECTED", version=12), op("SOFTMAX", version=1))
    [finding] = checks.check_runtime(configs[0], needs_new)
    assert finding.message == (
        "m/v: needs runtime 2.17.0, target_runtime is 2.14: FULLY_CONNECTED v12 needs runtime 2.17.0"
    )
    assert finding.location is not None and finding.location.line == line_of("target_runtime")
    assert checks.check_runtime(configs[0], variant(op("FULLY_CONNECTED", version=9))) == []


def test_runtime_metadata_alone_can_trip_the_check(configs: list[ModelConfig]) -> None:
    from_metadata = variant(op("SOME_FUTURE_OP", version=1), metadata_min_runtime="2.30.0")
    [finding] = checks.check_runtime(configs[0], from_metadata)
    assert "min_runtime_version metadata says 2.30.0" in finding.message
    assert finding.details["required_runtime"] == "2.30.0"


def test_metadata_that_is_no_version_trips_nothing(configs: list[ModelConfig]) -> None:
    """A model from elsewhere may carry anything there: a check must not raise on it."""
    odd = variant(op("FULLY_CONNECTED"), metadata_min_runtime="not-a-version")
    assert checks.check_runtime(configs[0], odd) == []


def test_no_target_runtime_means_no_runtime_check(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, "version: 1\nmodels:\n  - {name: m, source: m.keras}\n")
    assert checks.check_runtime(config, variant(op("FULLY_CONNECTED", version=12))) == []


def test_variables_nothing_initialises_are_unfrozen(configs: list[ModelConfig]) -> None:
    stateful = inspected_variant(
        "float", "none", builtin("VAR_HANDLE"), builtin("READ_VARIABLE"), builtin("ADD")
    )
    assert [o.name for o in checks.uninitialised_variable_ops(stateful)] == [
        "READ_VARIABLE",
        "VAR_HANDLE",
    ]
    [finding] = checks.check_unfrozen_variables(configs[0], stateful)
    assert finding.rule == "unfrozen-variables"
    assert finding.message == (
        f"m/float: {checks.UNFROZEN_FIX}: the variables were not frozen: outputs come from "
        "uninitialised memory (READ_VARIABLE x1, VAR_HANDLE x1, no CALL_ONCE initializer)"
    )
    assert finding.location == configs[0].source_location
    assert finding.details["ops"] == ["READ_VARIABLE", "VAR_HANDLE"]


def test_variables_a_call_once_subgraph_initialises_are_fine(configs: list[ModelConfig]) -> None:
    initialised = inspected_variant(
        "float", "none", builtin("CALL_ONCE"), builtin("VAR_HANDLE"), builtin("READ_VARIABLE")
    )
    assert checks.uninitialised_variable_ops(initialised) == []
    assert checks.check_unfrozen_variables(configs[0], initialised) == []


BUDGET = """\
    version: 1
    models:
      - name: m
        source: m.keras
        budgets:
          max_size_bytes: 100
    """


def test_a_model_over_its_size_budget_says_by_how_much(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, BUDGET)
    big = inspected_variant("float", "none", builtin("ADD"), builtin("RELU"))
    assert big.inspection is not None
    size = big.inspection.size_bytes
    over = size - 100
    [finding] = checks.check_size_budget(config, big)
    assert finding.message == (
        "m/float: quantize or shrink the model, or raise budgets.max_size_bytes: "
        f"{size} bytes is {over} bytes ({over / 100:.1%}) over the budget of 100"
    )
    assert finding.location is not None and finding.location.line == line_of("max_size", BUDGET)
    assert finding.details == {"size_bytes": size, "max_size_bytes": 100}


def test_a_model_within_its_size_budget_or_without_one_passes(
    tmp_path: Path, configs: list[ModelConfig]
) -> None:
    small = variant(op("ADD"), size_bytes=100)
    assert checks.check_size_budget(resolved_model(tmp_path, BUDGET), small) == []
    assert checks.check_size_budget(configs[0], variant(size_bytes=10**9)) == []


def test_every_variant_check_skips_a_variant_that_was_not_inspected(
    configs: list[ModelConfig],
) -> None:
    """A variant that failed to convert has no flatbuffer: its conversion finding says so."""
    failed = variant(op("CONV_2D"), op("FlexErf", "flex"), op("Other", "custom"))
    failed = failed.model_copy(update={"status": "conversion-failed", "inspection": None})
    assert [check(configs[0], failed) for check in checks.VARIANT_CHECKS] == [[]] * len(
        checks.VARIANT_CHECKS
    )

"""Checks turn facts into findings located at the policy line a reviewer would change."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tflite_gate.judge import checks
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.resolve import ModelConfig, resolve_model
from tflite_gate.report.model import (
    ConverterError,
    Inspection,
    MetricChange,
    ModelReport,
    OpInfo,
    OutputMetrics,
    RuntimeRun,
    ThresholdViolation,
    VariantChange,
    VariantReport,
    WrittenBy,
)
from tflite_gate.run.protocol import LoadResult, VariantResult

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


@pytest.fixture
def configs(tmp_path: Path) -> list[ModelConfig]:
    (tmp_path / "tflite-gate.yml").write_text(POLICY)
    loaded = load_policy(tmp_path / "tflite-gate.yml", tmp_path)
    return [resolve_model(loaded, i) for i in range(2)]


def _variant(
    *ops: OpInfo,
    metadata_min_runtime: str | None = None,
    quantization: str = "none",
    io: str = "float32",
) -> VariantReport:
    return VariantReport(
        name="v",
        quantization=quantization,
        io=io,
        status="converted",
        inspection=Inspection(
            size_bytes=10,
            schema_version=3,
            subgraphs=1,
            ops=list(ops),
            inputs=[],
            outputs=[],
            signatures=[],
            metadata_min_runtime=metadata_min_runtime,
        ),
    )


def _op(name: str, kind: str = "builtin", version: int = 1) -> OpInfo:
    return OpInfo(name=name, kind=kind, version=version, count=2)  # type: ignore[arg-type]


def _line(needle: str) -> int:
    return next(i for i, line in enumerate(POLICY.splitlines(), 1) if needle in line)


def test_allowed_ops_pass(configs: list[ModelConfig]) -> None:
    assert checks.check_ops_allowed(configs[0], _variant(_op("FULLY_CONNECTED"))) == []


def test_op_outside_allow_and_denied_op(configs: list[ModelConfig]) -> None:
    findings = checks.check_ops_allowed(configs[0], _variant(_op("CONV_2D"), _op("SOFTMAX")))
    assert [f.message for f in findings] == [
        "m/v: CONV_2D (v1, used 2x) is not in ops.allow",
        "m/v: SOFTMAX (v1, used 2x) is listed in ops.deny",
    ]
    assert [str(f.location) for f in findings] == [
        f"tflite-gate.yml:{_line('allow:')}:12",
        f"tflite-gate.yml:{_line('deny:')}:11",
    ]


def test_quantize_ops_outside_allow_say_where_they_come_from(configs: list[ModelConfig]) -> None:
    edges = (_op("QUANTIZE"), _op("DEQUANTIZE"), _op("SHAPE"))
    int8 = checks.check_ops_allowed(configs[0], _variant(*edges, quantization="int8"))
    assert [f.message for f in int8] == [
        "m/v: add QUANTIZE to ops.allow, or set io: int8 on variant v if the app can feed and "
        "read int8: QUANTIZE (v1, used 2x) is not in ops.allow; the int8 variant converts its "
        "float32 inputs and outputs with it",
        "m/v: add DEQUANTIZE to ops.allow, or set io: int8 on variant v if the app can feed and "
        "read int8: DEQUANTIZE (v1, used 2x) is not in ops.allow; the int8 variant converts its "
        "float32 inputs and outputs with it",
        "m/v: SHAPE (v1, used 2x) is not in ops.allow",  # no dynamic batch here: no hint
    ]
    int16 = checks.check_ops_allowed(configs[0], _variant(_op("QUANTIZE"), quantization="int16x8"))
    assert "or set io: int16 on variant v if the app can feed and read int16: " in int16[0].message
    float16 = checks.check_ops_allowed(
        configs[0], _variant(_op("DEQUANTIZE"), quantization="float16")
    )
    assert [f.message for f in float16] == [
        "m/v: add DEQUANTIZE to ops.allow: DEQUANTIZE (v1, used 2x) is not in ops.allow; the "
        "float16 variant stores its weights as float16 and turns them into float32 with it"
    ]
    integer_io = checks.check_ops_allowed(
        configs[0], _variant(_op("QUANTIZE"), quantization="int8", io="int8")
    )
    assert [f.message for f in integer_io] == ["m/v: QUANTIZE (v1, used 2x) is not in ops.allow"]


def test_flex_ops_are_errors_unless_allowed(configs: list[ModelConfig]) -> None:
    variant = _variant(_op("FlexMatrixDeterminant", "flex"))
    [strict] = checks.check_flex_ops(configs[0], variant)
    assert (strict.rule, strict.severity.value) == ("flex-op", "error")
    assert strict.location is not None and strict.location.line == _line("source: pkg")
    assert checks.check_flex_ops(configs[1], variant) == []  # check_flex_runs says it


def _run(
    runtime: str, status: str, version: str | None = None, compared: bool = False
) -> RuntimeRun:
    metrics = [
        OutputMetrics(
            output="y",
            samples=4,
            compared=16,
            max_abs=2.4e-7,
            mean_abs=1e-7,
            rmse=1e-7,
            rel_rmse=1e-7,
            cosine=1.0,
            snr_db=120.0,
        )
    ]
    return RuntimeRun(
        runtime=runtime,
        runtime_version=version,
        status=status,  # type: ignore[arg-type]
        metrics=metrics if compared else [],
    )


def test_accepted_flex_notice_names_where_numerics_were_verified(
    configs: list[ModelConfig],
) -> None:
    variant = _variant(_op("FlexErf", "flex"))
    variant.runs = [
        _run("ai-edge-litert", "unverifiable", "2.3.0"),
        _run("tensorflow==2.18.1", "passed", "2.18.1", compared=True),
    ]
    assert checks.check_flex_runs(configs[0], variant) == []  # not accepted: check_flex_ops
    [notice] = checks.check_flex_runs(configs[1], variant)
    assert (notice.rule, notice.severity.value) == ("flex-op", "notice")
    assert notice.message == (
        "flexible/v: uses Select TF ops FlexErf; the app must link the Flex delegate; numerics "
        "verified on tensorflow==2.18.1; not executable on ai-edge-litert 2.3.0 (no Flex "
        "delegate)"
    )
    assert notice.location is not None and notice.location.line == _line("select_tf_ops")
    assert notice.details["verified_on"] == ["tensorflow==2.18.1"]
    assert notice.details["suggestion"] is None


def test_accepted_flex_notice_suggests_a_runtime_with_the_flex_delegate(
    configs: list[ModelConfig],
) -> None:
    variant = _variant(_op("FlexErf", "flex"))
    variant.runs = [_run("ai-edge-litert", "unverifiable", "2.3.0")]
    [notice] = checks.check_flex_runs(configs[1], variant)
    assert "numerics not verified" in notice.message
    assert notice.message.endswith(
        "add a runtime whose interpreter links the Flex delegate (TensorFlow <= 2.18): "
        'runtimes: [ai-edge-litert, {requirement: "tensorflow==2.18.1"}]'
    )
    assert notice.details["suggestion"] == checks.FLEX_RUNTIME_SUGGESTION
    # the run itself adds nothing: one flex notice per variant
    assert checks.check_run(configs[1], variant, variant.runs[0]) == []


def test_flex_notice_tells_executed_from_verified(configs: list[ModelConfig]) -> None:
    """A run with nothing to compare with executed the Flex ops; it verified no numbers."""
    variant = _variant(_op("FlexErf", "flex"))
    variant.runs = [
        _run("tensorflow==2.18.1", "ran", "2.18.1"),
        _run("tensorflow==2.17.1", "diverged", "2.17.1", compared=True),
    ]
    [notice] = checks.check_flex_runs(configs[1], variant)
    assert "executed on tensorflow==2.18.1 (no reference to compare with)" in notice.message
    assert "compared on tensorflow==2.17.1 without passing" in notice.message
    assert notice.details["verified_on"] == []


def test_flex_notice_does_not_blame_the_flex_delegate_for_custom_ops(
    configs: list[ModelConfig],
) -> None:
    variant = _variant(_op("FlexErf", "flex"), _op("MyNms", "custom"))
    stopped = _run("ai-edge-litert", "unverifiable", "2.3.0")
    stopped.unresolved_custom_ops = ["MyNms"]
    variant.runs = [stopped]
    [notice] = checks.check_flex_runs(configs[1], variant)
    assert "no Flex delegate" not in notice.message
    assert notice.details["suggestion"] is None


def test_custom_ops_must_be_listed(configs: list[ModelConfig]) -> None:
    findings = checks.check_custom_ops(
        configs[0], _variant(_op("MyNms", "custom"), _op("Other", "custom"))
    )
    assert [f.message for f in findings] == ["m/v: custom op Other is not listed in ops.custom"]
    assert findings[0].location is not None and findings[0].location.line == _line("custom:")


def test_runtime_too_old_names_the_ops(configs: list[ModelConfig]) -> None:
    variant = _variant(_op("FULLY_CONNECTED", version=12), _op("SOFTMAX", version=1))
    [finding] = checks.check_runtime(configs[0], variant)
    assert finding.message == (
        "m/v: needs runtime 2.17.0, target_runtime is 2.14: FULLY_CONNECTED v12 needs runtime 2.17.0"
    )
    assert finding.location is not None and finding.location.line == _line("target_runtime")
    assert checks.check_runtime(configs[0], _variant(_op("FULLY_CONNECTED", version=9))) == []


def test_runtime_metadata_alone_can_trip_the_check(configs: list[ModelConfig]) -> None:
    variant = _variant(_op("SOME_FUTURE_OP", version=1), metadata_min_runtime="2.30.0")
    [finding] = checks.check_runtime(configs[0], variant)
    assert "min_runtime_version metadata says 2.30.0" in finding.message


def test_version_specs(configs: list[ModelConfig]) -> None:
    specs = configs[0].version_specs
    assert checks.check_version_spec("numpy", specs["numpy"], None) == []
    [missing] = checks.check_version_spec(
        "not-a-real-distribution", specs["not-a-real-distribution"], None
    )
    assert missing.message.startswith("not-a-real-distribution is not installed")
    assert missing.location is not None and missing.location.line == _line("not-a-real")


def test_load_failure_message_names_versions(configs: list[ModelConfig]) -> None:
    report = ModelReport(name="m", source="x.keras", written_by=WrittenBy(keras="9.9.9"))
    [finding] = checks.check_load(configs[0], LoadResult(ok=False, error="boom"), report)
    assert finding.rule == "model-load-failed"
    assert "written by Keras 9.9.9; installed: TensorFlow" in finding.message


def test_converter_crash_is_a_conversion_failure(configs: list[ModelConfig]) -> None:
    result = VariantResult(name="v", ok=False, crash="the converter crashed with SIGSEGV")
    [finding] = checks.check_conversion(configs[0], _variant(), result)
    assert finding.rule == "conversion-failed"
    assert finding.message == "m/v: the converter crashed with SIGSEGV"
    assert checks.check_converter_warnings(configs[0], _variant(), result) == []


def test_an_op_int8_cannot_quantize_leads_with_another_quantization(
    configs: list[ModelConfig],
) -> None:
    error = ConverterError(message="Quantization not yet supported for op: 'FOO'.")
    result = VariantResult(name="v", ok=False, errors=[error])
    variant = _variant().model_copy(update={"quantization": "int8", "status": "conversion-failed"})
    [finding] = checks.check_conversion(configs[0], variant, result)
    assert finding.message == (
        "m/v: use another quantization for this variant (dynamic, float16) or replace FOO in "
        "the model: the converter cannot quantize FOO to int8 (converter: Quantization not yet "
        "supported for op: 'FOO'.)"
    )
    assert "select_tf_ops" not in finding.message


def test_a_converter_past_the_default_time_limit_names_the_key(
    configs: list[ModelConfig],
) -> None:
    crash = "the converter did not finish within the time limit (900 s)"
    result = VariantResult(name="v", ok=False, crash=crash, crash_cause="timeout")
    [finding] = checks.check_conversion(configs[0], _variant(), result)
    assert finding.message == (
        "m/v: raise limits.timeout_s (900 s, the default) if converting the model just takes "
        f"longer: {crash}"
    )


def test_converter_warnings_of_a_successful_conversion(configs: list[ModelConfig]) -> None:
    result = VariantResult(name="v", ok=True, log_lines=["x.cc:1: op falls back to float\nmore"])
    [finding] = checks.check_converter_warnings(configs[0], _variant(), result)
    assert (finding.rule, finding.severity.value) == ("converter-warning", "warning")
    assert finding.message == "m/v: x.cc:1: op falls back to float"


def _nan_run() -> RuntimeRun:
    nothing = OutputMetrics(
        output="y",
        samples=4,
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


def test_non_finite_outputs_name_uninitialised_variables_as_the_cause(
    configs: list[ModelConfig],
) -> None:
    stateful = _variant(_op("VAR_HANDLE"), _op("READ_VARIABLE"), _op("FULLY_CONNECTED"))
    [finding] = checks.check_divergence(configs[0], stateful, _nan_run())
    assert finding.rule == "non-finite"
    assert "nothing else was compared" in finding.message
    assert "likely cause: resource variables (VAR_HANDLE, READ_VARIABLE) were not frozen" in (
        finding.message
    )
    initialised = _variant(_op("VAR_HANDLE"), _op("READ_VARIABLE"), _op("CALL_ONCE"))
    [finding] = checks.check_divergence(configs[0], initialised, _nan_run())
    assert "likely cause" not in finding.message


def test_a_worse_output_is_one_baseline_finding_naming_each_worse_metric(
    tmp_path: Path,
) -> None:
    (tmp_path / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: m\n    source: m.keras\n    regression:\n"
        "      max_metric_worsening: 10%\n"
    )
    config = resolve_model(load_policy(tmp_path / "tflite-gate.yml", tmp_path), 0)
    worse = {"max_abs": (0.01, 0.02), "mean_abs": (0.002, 0.003), "rmse": (0.003, 0.0045)}
    worse |= {"rel_rmse": (0.03, 0.04), "cosine": (0.999, 0.998), "top1": (0.95, 0.9)}
    change = VariantChange(
        model="m",
        variant="int8",
        metrics=[
            *(
                MetricChange(runtime="r", output="y", metric=metric, before=old, after=new)
                for metric, (old, new) in worse.items()
            ),
            MetricChange(runtime="r", output="y", metric="snr_db", before=40.0, after=30.0),
            MetricChange(runtime="r", output="z", metric="rmse", before=0.01, after=0.0105),
            MetricChange(runtime="r", output="z", metric="max_abs", before=0.01, after=0.05),
        ],
    )
    findings = checks.check_regressions(config, change)
    assert [(f.output, f.location.line if f.location else None) for f in findings] == [
        ("y", 6),
        ("z", 6),
    ]
    y, z = findings
    assert [item["metric"] for item in y.details["metrics"]] == list(worse)
    assert [item["metric"] for item in z.details["metrics"]] == ["max_abs"]
    assert y.message.startswith(
        "m/int8: find what made output 'y' worse on r, or raise regression.max_metric_worsening:"
    )
    assert "max_abs 0.01 → 0.02 (100.0% worse)" in y.message
    assert "cosine 0.999 → 0.998 (100.0% worse)" in y.message
    assert y.message.endswith("against the baseline (at most 10.0% worse)")


def _violated_run(cosine: float, threshold: float) -> RuntimeRun:
    measured = OutputMetrics(
        output="y",
        samples=4,
        compared=16,
        max_abs=0.01,
        mean_abs=0.001,
        rmse=0.002,
        rel_rmse=0.01,
        cosine=cosine,
        snr_db=40.0,
    )
    broken = ThresholdViolation(
        output="y", threshold_key="min_cosine", metric="cosine", value=cosine, threshold=threshold
    )
    return RuntimeRun(
        runtime="ai-edge-litert", status="diverged", metrics=[measured], violations=[broken]
    )


@pytest.mark.parametrize(
    ("cosine", "threshold", "said"),
    [
        (0.9999949, 0.999995, "cosine 0.9999949 is below min_cosine 0.999995"),
        (0.9299999999999999, 0.95, "cosine 0.93 is below min_cosine 0.95"),
    ],
)
def test_a_divergence_message_shows_the_gap_to_the_threshold(
    configs: list[ModelConfig], cosine: float, threshold: float, said: str
) -> None:
    [finding] = checks.check_divergence(configs[0], _variant(), _violated_run(cosine, threshold))
    assert said in finding.message


# --------------------------------------------------------------------------- runtimes compared

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


@pytest.fixture
def two_runtimes(tmp_path: Path) -> ModelConfig:
    (tmp_path / "tflite-gate.yml").write_text(TWO_RUNTIMES)
    return resolve_model(load_policy(tmp_path / "tflite-gate.yml", tmp_path), 0)


def test_a_second_runtime_gives_thresholds_something_to_compare(two_runtimes: ModelConfig) -> None:
    assert checks.check_source_keys(two_runtimes, "tflite", None) == []


def _as_is(*runs: RuntimeRun) -> ModelReport:
    variant = VariantReport(
        name="tflite", quantization="as-is", io="as-is", status="not-converted", runs=list(runs)
    )
    return ModelReport(name="t", source="m.tflite", variants=[variant])


def test_the_first_runtime_is_the_reference_not_an_uncompared_run(
    two_runtimes: ModelConfig,
) -> None:
    first = RuntimeRun(runtime="ai-edge-litert", status="ran")
    old = RuntimeRun(runtime="tflite-runtime==2.14.0", status="passed", compared_with="x 1")
    assert checks.check_uncompared_thresholds(two_runtimes, _as_is(first, old)) == []
    assert checks.check_uncompared_thresholds(two_runtimes, _as_is(first)) == []  # a shard
    gone = RuntimeRun(runtime="ai-edge-litert", status="crash")
    alone = RuntimeRun(runtime="tflite-runtime==2.14.0", status="ran")
    (notice,) = checks.check_uncompared_thresholds(two_runtimes, _as_is(gone, alone))
    assert notice.message.startswith("t: make the first runtime, ai-edge-litert, run ")
    assert notice.details["reference_runtime"] == "ai-edge-litert"


def test_a_divergence_names_the_runtime_it_was_compared_with(two_runtimes: ModelConfig) -> None:
    run = _nan_run()
    run.runtime, run.compared_with = "tflite-runtime==2.14.0", "ai-edge-litert 2.3.0"
    [finding] = checks.check_divergence(two_runtimes, _variant(), run)
    assert finding.message.startswith(
        "t/v on tflite-runtime==2.14.0 vs ai-edge-litert 2.3.0: output 'y' has 16 value(s)"
    )
    assert finding.details["compared_with"] == "ai-edge-litert 2.3.0"


def test_a_load_that_failed_on_a_full_disk_is_an_environment_error_by_its_errno(
    configs: list[ModelConfig],
) -> None:
    load = LoadResult(ok=False, error="ResourceExhaustedError: could not write", errno=28)
    [finding] = checks.check_load(configs[0], load, ModelReport(name="m", source="s"))
    assert finding.rule == "environment-error"
    assert finding.errno == "ENOSPC"
    assert finding.message.startswith("free disk space, or set TMPDIR to a directory with room")


def test_an_errno_is_never_read_out_of_the_error_text(configs: list[ModelConfig]) -> None:
    """The text may quote anything (a model's own message); only the errno field counts."""
    load = LoadResult(ok=False, error="ValueError: No space left on device, says the model")
    [finding] = checks.check_load(configs[0], load, ModelReport(name="m", source="s"))
    assert finding.rule == "model-load-failed"
    assert finding.error == load.error


def test_a_load_errno_that_is_not_the_disk_stays_a_load_failure(
    configs: list[ModelConfig],
) -> None:
    load = LoadResult(ok=False, error="FileNotFoundError: gone", errno=2)
    [finding] = checks.check_load(configs[0], load, ModelReport(name="m", source="s"))
    assert finding.rule == "model-load-failed"

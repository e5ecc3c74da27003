"""A hand-built report of the examples' shape, for reporters' tests: every kind of run,
a divergence at its policy line, a flex-op at its model line."""

from __future__ import annotations

from tflite_gate.findings import Finding, Location
from tflite_gate.report.model import (
    ConverterDiagnostics,
    ConverterError,
    EnvironmentInfo,
    Inspection,
    ModelReport,
    OpInfo,
    OutputMetrics,
    Report,
    RunStatus,
    RuntimeRun,
    ThresholdKey,
    ThresholdViolation,
    Tool,
    VariantReport,
)
from tflite_gate.rules import make_finding


def inspection(ops: list[OpInfo], size: int = 7304, runtime: str = "1.14.0") -> Inspection:
    return Inspection(
        size_bytes=size,
        schema_version=3,
        subgraphs=1,
        ops=ops,
        inputs=[],
        outputs=[],
        signatures=["serving_default"],
        metadata_min_runtime=runtime,
        required_runtime=runtime,
    )


def metrics(output: str = "probs", cosine: float = 0.9992263684369765) -> OutputMetrics:
    return OutputMetrics(
        output=output,
        samples=16,
        compared=160,
        max_abs=0.011648952960968018,
        mean_abs=0.003111039474606514,
        rmse=0.004344787436366905,
        rel_rmse=0.039490379637161226,
        cosine=cosine,
        snr_db=28.07017382386028,
        top1=1.0,
        worst_sample={"cosine": 6},
    )


def violation(
    value: float = 0.9992263684369765,
    threshold: float = 0.99999,
    key: ThresholdKey = "min_cosine",
) -> ThresholdViolation:
    metric = "cosine" if key == "min_cosine" else key
    return ThresholdViolation(
        output="probs",
        threshold_key=key,
        metric=metric,  # type: ignore[arg-type]
        value=value,
        threshold=threshold,
        worst_sample=6,
    )


def passing_run(status: RunStatus = "passed") -> RuntimeRun:
    return RuntimeRun(
        runtime="ai-edge-litert",
        runtime_version="2.3.0",
        status=status,
        samples=16,
        metrics=[metrics()],
        violations=[violation()] if status == "diverged" else [],
        tightest={"probs": {"max_abs": 0.01165, "min_cosine": 0.9992263}},
    )


def divergence(value: float = 0.9992263684369765, threshold: float = 0.99999) -> Finding:
    return make_finding(
        "divergence",
        "classifier-strict/int8 on ai-edge-litert: output 'probs' cosine 0.999226 is below "
        "min_cosine 0.99999, worst sample 6",
        model="classifier-strict",
        variant="int8",
        runtime="ai-edge-litert",
        location=Location(path="tflite-gate.yml", line=35, column=81),
        details={
            "output": "probs",
            "metric": "cosine",
            "value": value,
            "threshold_key": "min_cosine",
            "threshold": threshold,
            "worst_sample": 6,
        },
    )


def example_report(*, extra_findings: list[Finding] | None = None) -> Report:
    """Like the examples' report: a passing model, a diverging int8, a Flex failure."""
    fc, softmax = (
        OpInfo(name="FULLY_CONNECTED", kind="builtin", version=4, count=2, min_runtime="1.14.0"),
        OpInfo(name="SOFTMAX", kind="builtin", version=2, count=1, min_runtime="1.14.0"),
    )
    report = Report(
        tool=Tool(version="0.1.0"),
        policy="tflite-gate.yml",
        started_at="2025-01-01T00:00:00+00:00",
        duration_s=23.4,
        environment=EnvironmentInfo(
            python="3.11.7",
            platform="linux",
            packages={"tensorflow": "2.21.0", "ai-edge-litert": "2.3.0"},
        ),
        models=[
            ModelReport(
                name="classifier",
                source="example_models.classifier:build",
                source_kind="factory",
                loaded=True,
                variants=[
                    VariantReport(
                        name="int8",
                        quantization="int8",
                        io="int8",
                        status="converted",
                        artifact=".tflite-gate/artifacts/classifier/int8.tflite",
                        inspection=inspection([fc, softmax]),
                        runs=[passing_run()],
                    )
                ],
            ),
            ModelReport(
                name="classifier-strict",
                source="example_models.classifier:build",
                source_kind="factory",
                loaded=True,
                variants=[
                    VariantReport(
                        name="float",
                        quantization="none",
                        io="float",
                        status="converted",
                        inspection=inspection([fc, softmax], size=20416, runtime="1.5.0"),
                        runs=[passing_run()],
                    ),
                    VariantReport(
                        name="int8",
                        quantization="int8",
                        io="int8",
                        status="converted",
                        inspection=inspection([fc, softmax]),
                        runs=[passing_run("diverged")],
                    ),
                ],
            ),
            ModelReport(
                name="gram",
                source="example_models.gram:build",
                source_kind="factory",
                loaded=True,
                variants=[
                    VariantReport(
                        name="float",
                        quantization="none",
                        io="float",
                        status="conversion-failed",
                        converter=ConverterDiagnostics(
                            errors=[
                                ConverterError(
                                    code="ERROR_NEEDS_FLEX_OPS",
                                    op="tf.MatrixDeterminant",
                                    message="'tf.MatrixDeterminant' op is neither a custom op nor a flex op",
                                    location=Location(path="example_models/gram.py", line=16),
                                )
                            ],
                            log_lines=["error: failed while converting: 'main'"],
                        ),
                    )
                ],
            ),
        ],
    )
    report.add(
        [
            divergence(),
            make_finding(
                "flex-op",
                "gram/float: tf.MatrixDeterminant needs Select TF ops (FlexMatrixDeterminant)",
                model="gram",
                variant="float",
                location=Location(path="example_models/gram.py", line=16),
            ),
            make_finding(
                "converter-warning",
                "gram/float: a warning",
                model="gram",
                variant="float",
            ),
            *(extra_findings or []),
        ]
    )
    report.finalize("error")
    return report

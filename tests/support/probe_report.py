"""A probe's report as `tflite-gate init` reads it, made in memory for unit tests."""

from __future__ import annotations

from tflite_gate.report.model import ModelReport, OutputMetrics, Report, RuntimeRun, VariantReport
from tflite_gate.report.model.stamp import new_report


def measured_report(cosine: float, rel_rmse: float, **more: object) -> Report:
    """A probe's report: one float variant whose output measured these values."""
    metrics = OutputMetrics(
        output="probs",
        samples=8,
        compared=32,
        max_abs=0.1,
        mean_abs=0.01,
        rmse=0.02,
        rel_rmse=rel_rmse,
        cosine=cosine,
        snr_db=20.0,
        **more,  # type: ignore[arg-type]
    )
    run = RuntimeRun(runtime="ai-edge-litert", status="ran", samples=8, metrics=[metrics])
    variant = VariantReport(
        name="float", quantization="none", io="float32", status="converted", runs=[run]
    )
    report = new_report()
    report.models.append(ModelReport(name="tiny", source="tiny.keras", variants=[variant]))
    return report

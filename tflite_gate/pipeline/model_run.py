"""One model's check, from its source to its runs: the order of the stages for it."""

from __future__ import annotations

from tflite_gate.findings import Finding, RuleId, group_across_variants
from tflite_gate.judge import checks
from tflite_gate.model.sources import (
    classify,
)
from tflite_gate.pipeline.context import RunContext, special_data_files, special_file_problem
from tflite_gate.pipeline.conversion import run_conversion
from tflite_gate.pipeline.tflite_source import reference_source, run_tflite
from tflite_gate.policy.plan import ModelPlan
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import (
    ModelReport,
    Report,
    SourceKind,
)
from tflite_gate.rules import make_finding


def run_model(
    plan: ModelPlan, model_report: ModelReport, report: Report, context: RunContext
) -> None:
    """The model's source checked and classified, then converted (or read as a .tflite),
    inspected, run and judged; what stops it early is a finding."""
    config, path = plan.config, plan.source.path
    kind = _source_kind(plan, report, context)
    if kind is None:
        return
    model_report.source_kind = kind
    reference = reference_source(plan, report, context) if kind == "tflite" else None
    unusable = kind == "tflite" and plan.reference is not None and reference is None
    reference_kind = reference[0] if reference else ("unusable" if unusable else None)
    misplaced = checks.check_source_keys(config, kind, reference_kind)
    report.add(misplaced)
    if misplaced or unusable:
        return
    first = len(report.findings)
    if kind == "tflite" and path is not None:
        run_tflite(plan, path, reference, model_report, report, context)
    else:
        run_conversion(plan, (kind, path), model_report, report, context)
    report.add(checks.check_classification_names(config, model_report))
    report.add(checks.check_skipped_thresholds(config, model_report))
    report.add(checks.check_uncompared_thresholds(config, model_report))
    for variant in model_report.variants:  # after the runs: they say where Flex was verified
        report.add(checks.check_flex_runs(config, variant))
    report.findings[first:] = group_across_variants(report.findings[first:])


def _source_kind(plan: ModelPlan, report: Report, context: RunContext) -> SourceKind | None:
    """What the source is; None (reported) when it is missing, of no kind the gate reads,
    a special file, or when a data generator's module is."""
    config, path = plan.config, plan.source.path
    if path is not None and not path.exists():
        problem = f"{config.source} does not exist in the workspace"
        report.add(_refused(config, "model-not-found", problem))
        return None
    kind = classify(config.source, path)
    if kind is None:
        problem = (
            f"{config.source} is not a supported model file; expected .keras, .h5, .tflite, "
            "a SavedModel directory or a module:function factory"
        )
        report.add(_refused(config, "model-load-failed", problem))
        return None
    special = special_file_problem(config.source, path, context) if kind != "tflite" else None
    if special is not None:
        report.add(_refused(config, "model-load-failed", special))
        return None
    unreadable_data = special_data_files(plan, context)
    if unreadable_data:
        report.add(unreadable_data)
        return None
    return kind


def _refused(config: ModelConfig, rule: RuleId, problem: str) -> list[Finding]:
    """The model is not checked further: `problem` at its source line."""
    message = f"{config.name}: {problem}"
    return [make_finding(rule, message, model=config.name, location=config.source_location)]

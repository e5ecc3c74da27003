"""Representative data: where a data setting points, and evaluation data (or
reference outputs) that could not be produced.
"""

from __future__ import annotations

from typing import Any

from tflite_gate.findings import Finding, Location
from tflite_gate.judge.checks.common import crash_location, limit_action
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.rules import make_finding
from tflite_gate.run.protocol import EvaluationResult


def data_location(config: ModelConfig, role: str, code: Any) -> Location:
    """A generator's own line if it raised, else the policy's data setting for `role`."""
    if isinstance(code, list | tuple) and len(code) == 2:
        return Location(path=str(code[0]), line=int(code[1]))
    own = config.calibration if role == "calibration" else config.evaluation
    other = config.evaluation if role == "calibration" else config.calibration
    return own.location or other.location or config.source_location


def check_evaluation(config: ModelConfig, evaluation: EvaluationResult | None) -> list[Finding]:
    """Evaluation data or reference outputs that could not be produced: nothing to compare."""
    if evaluation is None or evaluation.ok:
        return []
    location = (
        crash_location(evaluation.crash_cause, config)
        if evaluation.crash_cause
        else data_location(config, "evaluation", evaluation.location)
    )
    limit = limit_action(evaluation.crash_cause, config, "preparing the evaluation data")
    action = f"{limit}: " if limit else ""
    return [
        make_finding(
            "data-invalid",
            f"{config.name}: {action}evaluation data: {evaluation.error}; outputs not compared",
            model=config.name,
            location=location,
            error=evaluation.error,
        )
    ]

"""Representative data: a data finding lands at the generator's own line when it raised,
else at the data setting it came from; evaluation data that could not be produced means
nothing was compared, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.check_facts import line_of, resolved_model
from tflite_gate.findings import Location
from tflite_gate.judge import checks
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.run.protocol import EvaluationResult

EVALUATION = """\
    version: 1
    models:
      - name: m
        source: m.keras
        limits: {timeout_s: 30}
        data:
          evaluation: gen.make:samples
    """


@pytest.fixture
def config(tmp_path: Path) -> ModelConfig:
    """A model whose evaluation data comes from a generator and calibration from nowhere."""
    return resolved_model(tmp_path, EVALUATION)


def test_data_is_located_at_its_generators_line_else_at_its_setting(
    config: ModelConfig,
) -> None:
    assert checks.data_location(config, "evaluation", ["gen/make.py", 12]) == Location(
        path="gen/make.py", line=12
    )
    evaluation = checks.data_location(config, "evaluation", None)
    assert evaluation.line == line_of("evaluation:", EVALUATION)
    # Calibration is not written: the data that is written is where the user looks.
    assert checks.data_location(config, "calibration", None) == evaluation


def test_data_nobody_wrote_is_located_at_the_source(tmp_path: Path) -> None:
    bare = resolved_model(tmp_path, "version: 1\nmodels:\n  - {name: m, source: m.keras}\n")
    assert checks.data_location(bare, "calibration", None) == bare.source_location


def test_evaluation_data_that_failed_means_nothing_was_compared(config: ModelConfig) -> None:
    failed = EvaluationResult(ok=False, error="samples() returned 3 arrays for 2 inputs")
    [finding] = checks.check_evaluation(config, failed)
    assert (finding.rule, finding.message) == (
        "data-invalid",
        "m: evaluation data: samples() returned 3 arrays for 2 inputs; outputs not compared",
    )
    assert finding.location is not None
    assert finding.location.line == line_of("evaluation:", EVALUATION)
    raised = failed.model_copy(update={"location": ("gen/make.py", 4)})
    [finding] = checks.check_evaluation(config, raised)
    assert finding.location == Location(path="gen/make.py", line=4)


def test_an_evaluation_worker_past_its_time_limit_points_at_the_limit(
    config: ModelConfig,
) -> None:
    slow = EvaluationResult(ok=False, error="no result within 30 s", crash_cause="timeout")
    [finding] = checks.check_evaluation(config, slow)
    assert finding.message == (
        f"m: raise limits.timeout_s (30 s, at tflite-gate.yml:{line_of('timeout', EVALUATION)}"
        ":25) if preparing the evaluation data just takes longer: evaluation data: no result "
        "within 30 s; outputs not compared"
    )
    assert finding.location == config.timeout_s.location


def test_evaluation_data_that_was_produced_or_not_asked_for_says_nothing(
    config: ModelConfig,
) -> None:
    assert checks.check_evaluation(config, EvaluationResult(ok=True, samples=8)) == []
    assert checks.check_evaluation(config, None) == []

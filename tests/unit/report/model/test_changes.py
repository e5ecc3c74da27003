"""What a report offers beyond its findings: suggested thresholds and the changes since a
baseline, as they travel in the JSON report."""

from __future__ import annotations

import pydantic
import pytest

from tflite_gate.findings import Location
from tflite_gate.report.model import (
    BaselineComparison,
    LatencyChange,
    MetricChange,
    OpCountChange,
    OpVersionChange,
    SuggestedThreshold,
    ThresholdSuggestion,
    VariantChange,
)


def _suggested(**fields: object) -> SuggestedThreshold:
    values: dict[str, object] = {
        "model": "det",
        "variant": "int8",
        "output": "probs",
        "key": "min_cosine",
        "threshold": 0.99999,
        "measured": 0.9992,
        "value": 0.9984,
        "location": Location(path="tflite-gate.yml", line=5, column=30),
        "placed_at": "models[0].variants[1].max_divergence",
    }
    return SuggestedThreshold.model_validate(values | fields)


def test_a_suggestion_reads_back_from_its_json() -> None:
    suggestion = ThresholdSuggestion(
        margin=1.0, thresholds=[_suggested()], snippet="models:\n  - name: det\n"
    )
    assert ThresholdSuggestion.model_validate_json(suggestion.model_dump_json()) == suggestion


@pytest.mark.parametrize("field", ["output", "location"])
def test_a_suggested_threshold_always_says_its_output_and_place(field: str) -> None:
    """None is a value here (every output, no line): leaving it out is a bug, not a default."""
    values = _suggested().model_dump()
    del values[field]
    with pytest.raises(pydantic.ValidationError, match=field):
        SuggestedThreshold.model_validate(values)
    assert _suggested(**{field: None}).model_dump()[field] is None


def test_a_threshold_key_is_never_a_metric_name() -> None:
    with pytest.raises(pydantic.ValidationError, match="key"):
        _suggested(key="cosine")  # the threshold on cosine is min_cosine


def test_a_variant_change_is_of_a_variant_on_both_sides_unless_said() -> None:
    change = VariantChange(model="m", variant="v")
    assert change.presence == "both"
    assert (change.size_before, change.runtime_after) == (None, None)
    with pytest.raises(pydantic.ValidationError, match="presence"):
        VariantChange(model="m", variant="v", presence="added")


def test_variant_changes_never_share_their_lists() -> None:
    first, second = VariantChange(model="m", variant="a"), VariantChange(model="m", variant="b")
    first.ops_added.append("TANH")
    first.metrics.append(
        MetricChange(runtime="r", output="o", metric="cosine", before=0.9, after=None)
    )
    assert second.ops_added == [] and second.metrics == []


def test_a_baseline_comparison_reads_back_from_its_json() -> None:
    change = VariantChange(
        model="m",
        variant="int8",
        size_before=7304,
        size_after=7400,
        ops_added=["TANH"],
        versions=[OpVersionChange(op="FULLY_CONNECTED", before=4, after=12)],
        counts=[OpCountChange(op="ADD", before=1, after=2)],
        metrics=[MetricChange(runtime="r", output="o", metric="rmse", before=None, after=0.1)],
        latency=[LatencyChange(runtime="r", before_ms=1.0, after_ms=1.5)],
    )
    comparison = BaselineComparison(
        report="base/tflite-gate-report.json",
        started_at="2026-01-01T00:00:00+00:00",
        tool_version="0.1.0",
        variants=[change, VariantChange(model="m", variant="float", presence="gone")],
    )
    assert BaselineComparison.model_validate_json(comparison.model_dump_json()) == comparison

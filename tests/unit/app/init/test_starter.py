"""The starter policy text: what the probe measured, written down with a margin."""

from __future__ import annotations

import pytest
import yaml

from tests.support.probe_report import measured_report
from tflite_gate.app.init.starter import quoted, starter_policy, variant_entry
from tflite_gate.policy.positions import load_yaml_with_marks


@pytest.mark.parametrize(
    "text", ["probs", "true", "1.0", "1e3", "a b", "out\U0001f600", "x\ny", "\x7f"]
)
def test_names_written_into_the_policy_read_back_as_written(text: str) -> None:
    """Read back as the gate reads a policy (YAML 1.2 numbers: 1e3 is one)."""
    assert load_yaml_with_marks(f"key: {quoted(text)}")[0] == {"key": text}


def test_starter_thresholds_are_written_as_the_decimals_they_are() -> None:
    text = starter_policy(
        "tiny", "tiny.keras", [("float", "none")], {}, measured_report(0.9825, 0.0123), 1.0
    )
    written = yaml.safe_load(text)["models"][0]["variants"][0]["max_divergence"]
    assert "max_divergence: {rel_rmse: 0.025, min_cosine: 0.93}" in text
    assert written == {"rel_rmse": 0.025, "min_cosine": 0.93}
    assert written["min_cosine"] <= 0.9825  # still passes on what was measured


def test_one_output_gets_one_set_and_several_get_per_output() -> None:
    single = variant_entry("int8", "int8", {"probs": {"rel_rmse": 0.1}})
    assert single == {"name": "int8", "quantization": "int8", "max_divergence": {"rel_rmse": 0.1}}
    several = variant_entry("float", "none", {"a": {"rel_rmse": 0.1}, "b": {}})
    assert several == {"name": "float", "max_divergence": {"per_output": {"a": {"rel_rmse": 0.1}}}}


def test_a_tflite_source_gets_no_variants_and_a_pointer_to_reference() -> None:
    report = measured_report(0.99, 0.01)
    text = starter_policy("tiny", "tiny.tflite", [("float", "none")], {}, report, 1.0)
    assert "variants:" not in text
    assert text.endswith(
        "    # Add `reference:` (the source model) to compare its outputs as well.\n"
    )

"""What the check families share: where a setting is written (else the model's source),
the limit a worker was killed at and how to raise it, a fixed batch to suggest, and a
version order that never raises on a version from elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.check_facts import line_of, resolved_model
from tflite_gate.judge import checks
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import TensorInfo

LIMITS = """\
    version: 1
    models:
      - name: m
        source: m.keras
        limits: {timeout_s: 60}
    """


@pytest.fixture
def limited(tmp_path: Path) -> ModelConfig:
    """A model whose timeout is written and whose memory limit is the default."""
    return resolved_model(tmp_path, LIMITS)


def test_a_setting_lands_where_it_is_written_else_at_the_source(limited: ModelConfig) -> None:
    written = checks.setting_location(limited.timeout_s, limited)
    assert (written.line, written.column) == (line_of("timeout_s", LIMITS), 25)
    assert checks.setting_location(limited.memory_mb, limited) == limited.source_location


def test_a_worker_killed_at_a_limit_points_at_that_limit(limited: ModelConfig) -> None:
    assert checks.crash_location("timeout", limited) == limited.timeout_s.location
    assert checks.crash_location("memory", limited) == limited.source_location  # default
    assert checks.crash_location("signal", limited) == limited.source_location
    assert checks.crash_location(None, limited) == limited.source_location


def test_the_limit_to_raise_says_its_value_and_where_it_is_written(limited: ModelConfig) -> None:
    at = f"tflite-gate.yml:{line_of('timeout_s', LIMITS)}:25"
    assert checks.limit_action("timeout", limited, "loading the model") == (
        f"raise limits.timeout_s (60 s, at {at}) if loading the model just takes longer"
    )
    assert checks.limit_action("memory", limited, "loading the model") == (
        f"raise limits.memory_mb ({limited.memory_mb.value:g} MB, the default) if the machine "
        "has the memory"
    )
    assert checks.limit_action("signal", limited, "loading the model") is None
    assert checks.limit_action(None, limited, "loading the model") is None


def test_raise_limit_prints_a_whole_value_without_decimals(limited: ModelConfig) -> None:
    text = checks.raise_limit("limits.interpreter_timeout_s", limited.timeout_s, "s", "if so")
    assert text.startswith("raise limits.interpreter_timeout_s (60 s, at tflite-gate.yml:")
    assert text.endswith(") if so")


def test_fixed_batch_hint_names_the_inputs_and_keeps_unknown_sizes_open() -> None:
    inputs = [
        TensorInfo(name="x", shape=[-1, 5, 3], dtype="float32"),
        TensorInfo(name="image", shape=[-1, -1, -1, 3], dtype="float32"),
    ]
    assert checks.fixed_batch_hint(inputs) == (
        "set a fixed batch: input_shapes: {x: [1, 5, 3], image: [1, <size>, <size>, 3]}"
    )
    assert checks.fixed_batch_hint([TensorInfo(name="x", shape=[1, 5], dtype="float32")]) is None


def test_a_scalar_input_is_left_out_of_the_fixed_batch_hint() -> None:
    inputs = [
        TensorInfo(name="x", shape=[-1, 2], dtype="float32"),
        TensorInfo(name="temperature", shape=[], dtype="float32"),
    ]
    assert checks.fixed_batch_hint(inputs) == "set a fixed batch: input_shapes: {x: [1, 2]}"
    assert checks.fixed_batch_hint([]) is None


@pytest.mark.parametrize(
    ("a", "b", "less"),
    [
        ("2.14.0", "2.17.0", True),
        ("2.17.0", "2.14.0", False),
        ("2.14", "2.14.0", False),
        ("1.5.0", "1.14.0", True),  # by number, not by text
        ("not-a-version", "2.17.0", False),
        ("2.17.0", "", False),
    ],
)
def test_version_less_orders_runtimes_and_never_raises(a: str, b: str, less: bool) -> None:
    assert checks.version_less(a, b) is less

"""The resolved policies most check tests judge facts against."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.check_facts import POLICY, TWO_RUNTIMES, resolved_model, resolved_models
from tflite_gate.policy.resolve import ModelConfig


@pytest.fixture
def configs(tmp_path: Path) -> list[ModelConfig]:
    """`m` (every op limit) and `flexible` (Select TF ops accepted), from `POLICY`."""
    return resolved_models(tmp_path, POLICY)


@pytest.fixture
def two_runtimes(tmp_path: Path) -> ModelConfig:
    """`t`: a .tflite source without a reference, run on two runtimes."""
    return resolved_model(tmp_path, TWO_RUNTIMES)

"""`tflite-gate init` refuses what it cannot do as asked, before it probes anything.

Every case here stops before the probe (no worker, no TensorFlow): exit 2 with what
to pass instead, and nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.tflite_builder import build_model, builtin
from tflite_gate.app.init import InitOutcome, InitRequest, run_init


def _init(workspace: Path, **asked: Any) -> InitOutcome:
    request = InitRequest(workspace=workspace, policy=workspace / "tflite-gate.yml", **asked)
    return run_init(request, lambda _message: None)


def _model(workspace: Path, name: str) -> None:
    (workspace / name).write_bytes(build_model([builtin("RELU")]))


def test_no_model_in_the_workspace_asks_for_a_source(tmp_path: Path) -> None:
    outcome = _init(tmp_path)
    assert outcome.exit_code == 2
    assert outcome.messages[0].startswith("pass --source PATH (a .keras, .h5, SavedModel")


def test_several_models_ask_which_one(tmp_path: Path) -> None:
    _model(tmp_path, "a.tflite")
    _model(tmp_path, "b.tflite")
    outcome = _init(tmp_path)
    assert outcome.messages == ["pass --source with the model to check, one of: a.tflite, b.tflite"]


@pytest.mark.parametrize(
    ("asked", "says"),
    [
        ({"name": "../x"}, "pass --name with letters, digits and _ . - only"),
        ({"variants": ["int8"]}, "leave out --variants for a .tflite source"),
        ({"variants": ["int4"]}, "pass --variants with some of float, dynamic, float16"),
    ],
)
def test_a_request_init_cannot_carry_out_says_what_to_pass(
    tmp_path: Path, asked: dict[str, object], says: str
) -> None:
    _model(tmp_path, "a.tflite")
    outcome = _init(tmp_path, **asked)
    assert outcome.exit_code == 2
    assert outcome.messages[0].startswith(says), outcome.messages
    assert not (tmp_path / "tflite-gate.yml").exists()


def test_an_existing_policy_is_kept_without_force(tmp_path: Path) -> None:
    _model(tmp_path, "a.tflite")
    (tmp_path / "tflite-gate.yml").write_text("mine\n")
    outcome = _init(tmp_path)
    assert outcome.exit_code == 2
    assert outcome.messages[0].startswith("pass --force to replace")
    assert (tmp_path / "tflite-gate.yml").read_text() == "mine\n"


def test_a_directory_is_no_policy_path(tmp_path: Path) -> None:
    (tmp_path / "tflite-gate.yml").mkdir()
    outcome = _init(tmp_path, source="a.tflite")
    assert outcome.messages[0].startswith("pass --policy a file path")

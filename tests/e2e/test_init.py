"""`tflite-gate init`: a starter policy measured on the model, that passes as written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.conversion_request import FLEX_FACTORY
from tests.support.harness import run_command, run_gate, save_tiny_keras
from tests.support.tflite_builder import build_model, builtin
from tflite_gate.app.init.starter import SCHEMA_FILE_NAME
from tflite_gate.app.schema import schema_text
from tflite_gate.policy.load import load_policy


def _init(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_command("init", workspace, *args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with one small Keras model, saved once for the module."""
    workspace = tmp_path_factory.mktemp("tiny")
    save_tiny_keras(workspace / "tiny.keras")
    return workspace


@pytest.mark.slow  # spawns the gate CLI
def test_init_asks_for_what_it_cannot_decide(tmp_path: Path) -> None:
    empty = _init(tmp_path)
    assert empty.returncode == 2
    assert empty.stderr.startswith("tflite-gate init: pass --source PATH")

    (tmp_path / "a.tflite").write_bytes(build_model([builtin("RELU")]))
    (tmp_path / "b.tflite").write_bytes(build_model([builtin("RELU")]))
    several = _init(tmp_path)
    assert several.returncode == 2
    assert "pass --source with the model to check, one of: a.tflite, b.tflite" in several.stderr

    wrong = _init(tmp_path, "--source", "a.tflite", "--variants", "int4")
    assert wrong.returncode == 2
    assert "pass --variants with some of float, dynamic, float16, int8, int16x8" in wrong.stderr

    bad_name = _init(tmp_path, "--source", "a.tflite", "--name", "../x")
    assert bad_name.returncode == 2
    assert "pass --name with letters, digits and _ . - only" in bad_name.stderr

    (tmp_path / "tflite-gate.yml").write_text("mine\n")
    kept = _init(tmp_path, "--source", "a.tflite")
    assert kept.returncode == 2
    assert "pass --force to replace" in kept.stderr
    assert (tmp_path / "tflite-gate.yml").read_text() == "mine\n"


@pytest.mark.slow  # spawns the gate CLI
def test_a_tflite_source_gets_its_ops_and_runtime(tmp_path: Path) -> None:
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU"), builtin("TANH")]))
    made = _init(tmp_path)
    assert made.returncode == 0, made.stderr
    policy = yaml.safe_load((tmp_path / "tflite-gate.yml").read_text())
    assert policy["models"] == [
        {
            "name": "relu",
            "source": "relu.tflite",
            "ops": {"allow": ["RELU", "TANH"]},
            "versions": {"target_runtime": "1.14.0"},
        }
    ]
    assert run_gate(tmp_path).returncode == 0
    # A new op is what the allow list is for.
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU"), builtin("LOGISTIC")]))
    changed = run_gate(tmp_path)
    assert changed.returncode == 1
    assert [f["rule"] for f in changed.findings()] == ["op-not-allowed"]


@pytest.mark.slow
def test_the_starter_policy_passes_as_written(tiny: Path) -> None:
    made = _init(tiny, "--variants", "float,int8")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Wrote tflite-gate.yml (2 variant(s), 4 ops allowed")
    text = (tiny / "tflite-gate.yml").read_text()
    assert text.startswith(f"# yaml-language-server: $schema={SCHEMA_FILE_NAME}\n")
    assert (tiny / SCHEMA_FILE_NAME).read_text() == schema_text("policy")
    assert "with a 100% margin" in text
    model = load_policy(tiny / "tflite-gate.yml", tiny).policy.models[0]
    assert model.ops is not None and model.ops.allow == [
        "DEQUANTIZE",
        "FULLY_CONNECTED",
        "QUANTIZE",
        "SOFTMAX",
    ]
    assert model.variants is not None
    assert [(v.name, v.quantization) for v in model.variants] == [
        ("float", "none"),
        ("int8", "int8"),
    ]
    int8 = model.variants[1].max_divergence
    assert int8 is not None and int8.rel_rmse is not None and int8.min_cosine is not None
    assert 0 < int8.rel_rmse < 2 and 0 < int8.min_cosine < 1  # random weights: varies

    checked = run_gate(tiny)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.findings() == []
    assert checked.report is not None
    assert checked.report["models"][0]["cache"]["status"] == "reused"  # init's conversion, reused

    again = _init(tiny)
    assert again.returncode == 2 and "pass --force" in again.stderr
    forced = _init(tiny, "--force", "--margin", "0")
    assert forced.returncode == 0, forced.stderr
    assert "with a 0% margin" in (tiny / "tflite-gate.yml").read_text()
    assert run_gate(tiny).returncode == 0  # even with no margin: it is what was measured


@pytest.mark.slow
def test_unknown_sizes_are_asked_for_never_invented(tmp_path: Path) -> None:
    save_tiny_keras(tmp_path / "seq.keras", shape=(None, 3))
    asked = _init(tmp_path)
    assert asked.returncode == 2
    assert "pass the sizes your app feeds as --input-shape NAME=1,D1,D2,..." in asked.stderr
    assert "input 'x' has dynamic dimensions [None, None, 3]" in asked.stderr
    assert not (tmp_path / "tflite-gate.yml").exists()

    given = _init(tmp_path, "--input-shape", "x=1,5,3")
    assert given.returncode == 0, given.stderr
    policy = yaml.safe_load((tmp_path / "tflite-gate.yml").read_text())
    assert policy["models"][0]["input_shapes"] == {"x": [1, 5, 3]}
    assert run_gate(tmp_path).returncode == 0


@pytest.mark.slow
def test_a_model_that_does_not_convert_writes_no_policy(tmp_path: Path) -> None:
    (tmp_path / "gram.py").write_text(FLEX_FACTORY)
    refused = _init(tmp_path, "--source", "gram:build")
    assert refused.returncode == 1
    assert "fix these first (or choose other --variants)" in refused.stderr
    assert "flex-op" in refused.stderr
    assert not (tmp_path / "tflite-gate.yml").exists()

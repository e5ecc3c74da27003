"""After `init`, a user adds an int8 variant: the check says why it fails, `suggest` says
what to loosen, and the snippet pasted makes the next check pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.harness import paste_snippet, run_command, run_gate, save_tiny_keras

pytestmark = pytest.mark.slow

INT8_BY_HAND = "      - name: int8\n        quantization: int8\n"


def _kept_in_order(before: str, after: str) -> list[str]:
    """The lines `after` adds, asserting every line of `before` is still there, in order."""
    added = after.splitlines()
    position = 0
    for line in before.splitlines():
        position = added.index(line, position)
        del added[position]
    return added


@pytest.mark.parametrize("how", ["by hand", "init --variants"])
def test_an_int8_variant_added_after_init_gets_the_loosenings_it_needs(
    tmp_path: Path, how: str
) -> None:
    save_tiny_keras(tmp_path / "tiny.keras")
    made = run_command("init", tmp_path, "--quiet")
    assert made.returncode == 0, made.stderr
    policy = tmp_path / "tflite-gate.yml"
    first = policy.read_text()

    if how == "by hand":
        policy.write_text(first + INT8_BY_HAND, encoding="utf-8")
    else:
        added = run_command("init", tmp_path, "--variants", "int8", "--quiet")
        assert added.returncode == 0, added.stderr
        assert added.stdout.startswith("Added int8 to tflite-gate.yml for model tiny")
        assert "  tiny: ops.allow + DEQUANTIZE, QUANTIZE (used by int8; tflite-gate.yml:" in (
            added.stdout
        )
        new_lines = _kept_in_order(first, policy.read_text())  # the user's file stays
        assert new_lines[:2] == INT8_BY_HAND.splitlines()
        assert new_lines[2].startswith("        max_divergence: {rel_rmse: ")
        again = run_command("init", tmp_path, "--variants", "float,int8", "--quiet")
        assert again.returncode == 2
        assert "pass --variants with a variant tiny does not have yet" in again.stderr

    checked = run_gate(tmp_path)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    rules = sorted(f["rule"] for f in checked.findings())
    assert rules == ["op-not-allowed", "op-not-allowed", "runtime-too-old"]
    for finding in checked.findings(rule="op-not-allowed"):
        op = finding["op"]
        assert finding["message"].startswith(
            f"tiny/int8: add {op} to ops.allow, or set io: int8 on variant int8"
        )
        assert "dynamic batch" not in finding["message"]

    suggested = run_command("suggest", tmp_path)
    assert suggested.returncode == 0, suggested.stderr
    assert "# loosens tiny: ops.allow + DEQUANTIZE, QUANTIZE (used by int8; " in suggested.stdout
    assert "# loosens tiny: target_runtime 1.5.0 -> 1.14.0 (needed by int8; " in suggested.stdout
    assert "not a threshold" not in suggested.stdout
    paste_snippet(policy, suggested.stdout)

    passing = run_gate(tmp_path)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert passing.findings() == []
    model = yaml.safe_load(policy.read_text())["models"][0]
    assert model["ops"]["allow"] == ["FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE", "QUANTIZE"]
    assert model["versions"]["target_runtime"] == "1.14.0"


INHERITING = """\
# The team's policy: every model starts from the defaults.
version: 1
defaults:
  variants: [{name: float}]   # float only, until int8 is measured
models:
  - name: tiny
    source: tiny.keras
    max_divergence: {max_abs: 1.0e-4}   # tight: float must stay exact
"""


def test_added_variants_take_the_inherited_list_and_a_value_for_inherited_thresholds(
    tmp_path: Path,
) -> None:
    save_tiny_keras(tmp_path / "tiny.keras")
    policy = tmp_path / "tflite-gate.yml"
    policy.write_text(INHERITING, encoding="utf-8")
    assert run_gate(tmp_path).returncode == 0

    added = run_command("init", tmp_path, "--variants", "int8", "--quiet")
    assert added.returncode == 0, added.stderr
    assert "(its inherited variants float are now listed in the model)" in added.stdout
    assert added.stdout.endswith(": run `tflite-gate check`\n")  # no ops or runtime limits
    _kept_in_order(INHERITING, policy.read_text())
    float_entry, int8_entry = yaml.safe_load(policy.read_text())["models"][0]["variants"]
    assert float_entry == {"name": "float"}
    assert int8_entry["quantization"] == "int8"
    assert set(int8_entry["max_divergence"]) == {"rel_rmse", "min_cosine", "max_abs"}
    assert int8_entry["max_divergence"]["max_abs"] > 1.0e-4  # measured, loosened, in its entry

    checked = run_gate(tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.findings() == []

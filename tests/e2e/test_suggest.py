"""A failing run offers thresholds; pasting them into the policy makes the next run pass."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.harness import GateRun, paste_snippet, run_command, run_gate
from tests.support.tflite_builder import build_model, builtin

pytestmark = pytest.mark.slow  # every test here starts processes

POLICY = """\
    version: 1
    models:
      - name: clamp
        source: clamp.tflite
        reference: tanh.tflite
        max_divergence: {min_cosine: 0.99999, max_abs: 0.5}
    """


def _suggest(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_command("suggest", workspace, *args)


def _failing_run(tmp_path: Path) -> tuple[GateRun, Path]:
    # The model clamps to [-1, 1] where its reference takes tanh: a few % apart.
    (tmp_path / "clamp.tflite").write_bytes(build_model([builtin("RELU_N1_TO_1")]))
    (tmp_path / "tanh.tflite").write_bytes(build_model([builtin("TANH")]))
    (tmp_path / "tflite-gate.yml").write_text(textwrap.dedent(POLICY), encoding="utf-8")
    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    return run_gate(tmp_path, "--format", "github", env=env), summary


def test_pasting_the_suggested_snippet_makes_the_next_run_pass(tmp_path: Path) -> None:
    failing, summary = _failing_run(tmp_path)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    [finding] = failing.findings(rule="divergence")
    assert finding["threshold_key"] == "min_cosine"
    suggestion = failing.report["suggestion"]
    [item] = suggestion["thresholds"]
    assert (item["model"], item["variant"], item["key"]) == ("clamp", "tflite", "min_cosine")
    assert item["placed_at"] == "models[0].max_divergence"
    assert item["location"] == finding["location"]
    assert item["measured"] == finding["details"]["value"]
    assert item["value"] < item["measured"] < item["threshold"]
    assert "<details><summary>Suggested thresholds (margin 100%)</summary>" in summary.read_text()
    assert "tflite-gate suggest" in failing.stdout

    printed = _suggest(tmp_path, "--margin", "10%")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith(
        "# Merge into tflite-gate.yml (list entries by name). Margin 10%"
    )
    paste_snippet(tmp_path / "tflite-gate.yml", printed.stdout)

    passing = run_gate(tmp_path)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert passing.findings() == []
    assert passing.report["suggestion"] is None
    policy = yaml.safe_load((tmp_path / "tflite-gate.yml").read_text())
    assert policy["models"][0]["max_divergence"]["max_abs"] == 0.5  # what held is kept


def test_the_report_of_another_policy_is_refused(tmp_path: Path) -> None:
    failing, _ = _failing_run(tmp_path)
    assert failing.returncode == 1
    other = tmp_path / "other.yml"
    other.write_text(textwrap.dedent(POLICY), encoding="utf-8")
    refused = _suggest(tmp_path, "--policy", str(other))
    assert refused.returncode == 2
    assert refused.stderr.startswith("tflite-gate suggest: pass --policy tflite-gate.yml: ")


@pytest.mark.parametrize("margin", ["0", "200%"])
def test_any_margin_short_of_a_defect_still_passes_on_the_measured_data(
    tmp_path: Path, margin: str
) -> None:
    _failing_run(tmp_path)
    printed = _suggest(tmp_path, "--margin", margin)
    assert printed.returncode == 0, printed.stderr
    paste_snippet(tmp_path / "tflite-gate.yml", printed.stdout)
    assert run_gate(tmp_path).returncode == 0


def test_a_margin_that_would_pass_an_output_of_zeros_gives_a_defect_not_a_snippet(
    tmp_path: Path,
) -> None:
    _failing_run(tmp_path)  # rel_rmse 0.25: grown by 300% it reaches the output's own size
    printed = _suggest(tmp_path, "--margin", "300%")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith(
        "# Nothing in tflite-gate-report.json can be loosened to pass.\n"
        "# not a threshold (defect): clamp/tflite: fix the variant, no threshold should pass "
        "it: output 'output_0' rel_rmse 0.25"
    )
    assert "at or above 1, where an output of zeros passes" in printed.stdout

"""`check`'s front door: what is refused before any model work, and how fast.

Every case here is answered before the pipeline (and TensorFlow) is imported.
"""

from __future__ import annotations

from pathlib import Path

from tflite_gate.app.check import refused_outputs, run_gate
from tflite_gate.app.outcome import EXIT_USAGE
from tflite_gate.support.output_paths import Output
from tflite_gate.support.run_options import CheckOptions


def _quiet(_message: str) -> None:
    pass


def test_an_output_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path) -> None:
    output = Output("json", "--report", tmp_path)  # a directory
    options = CheckOptions(policy=tmp_path / "p.yml", workspace=tmp_path, outputs=[output])

    refused = refused_outputs(options)

    assert refused is not None and refused.refused == [output]
    assert run_gate(options, _quiet).messages == refused.messages
    assert not (tmp_path / ".tflite-gate").exists()


def test_a_workspace_that_is_not_a_directory(tmp_path: Path) -> None:
    options = CheckOptions(policy=tmp_path / "p.yml", workspace=tmp_path / "missing")
    outcome = run_gate(options, _quiet)
    assert outcome.exit_code == EXIT_USAGE
    assert outcome.messages == [
        f"give --workspace an existing directory: {tmp_path / 'missing'} is not one"
    ]


def test_a_cache_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("")
    options = CheckOptions(
        policy=tmp_path / "p.yml", workspace=tmp_path, cache_dir=tmp_path / "cache"
    )
    outcome = run_gate(options, _quiet)
    assert outcome.messages == [
        "give --cache-dir (or TFLITE_GATE_CACHE) a directory: cache is not one"
    ]


def test_a_bad_policy_is_located_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "tflite-gate.yml").write_text("version: 1\nmodles: []\n")
    options = CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)
    outcome = run_gate(options, _quiet)
    assert outcome.exit_code == EXIT_USAGE
    assert outcome.report.findings and outcome.report.findings[0].rule == "policy-invalid"
    assert outcome.messages[0] == "tflite-gate.yml:1:1: policy: missing required key 'models'"

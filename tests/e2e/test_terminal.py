"""What `tflite-gate check` shows in a CI log and on a terminal, run as a user runs it."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.pseudo_terminal import read_all
from tests.support.tflite_builder import build_model, builtin

pytestmark = pytest.mark.slow

DENSE_FACTORY = textwrap.dedent(
    """\
    import keras


    def build():
        features = keras.Input((4,), batch_size=1, name="features")
        return keras.Model(features, keras.layers.Dense(2, name="dense")(features))
    """
)


def _factory_workspace(root: Path) -> Path:
    root.mkdir()
    (root / "dense_model.py").write_text(DENSE_FACTORY)
    (root / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: dense\n    source: dense_model:build\n"
    )
    return root


def _tflite_workspace(root: Path) -> Path:
    root.mkdir()
    (root / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (root / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: relu\n    source: relu.tflite\n"
    )
    return root


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without CI markers, colour requests or a terminal width."""
    dropped = {"CI", "GITHUB_ACTIONS", "NO_COLOR", "FORCE_COLOR", "TERM"}
    return {k: v for k, v in os.environ.items() if k not in dropped} | extra


def _check(workspace: Path) -> list[str]:
    return [sys.executable, "-m", "tflite_gate", "check", "--workspace", str(workspace)]


def _facts(log: str, pattern: str) -> list[str]:
    """The log lines that say what `pattern` says (e.g. a run's result)."""
    return [line for line in log.splitlines() if re.search(pattern, line)]


def test_a_log_with_both_streams_states_each_result_once(tmp_path: Path) -> None:
    """stdout and stderr in one pipe, as a CI runner records them."""
    workspace = _factory_workspace(tmp_path / "ws")
    done = subprocess.run(
        [*_check(workspace), "--cache-dir", str(tmp_path / "cache")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
        env=_env(),
    )
    log = done.stdout
    assert done.returncode == 0, log
    assert len(_facts(log, r"ai-edge-litert[^:]*: passed")) == 1, log
    assert [line for line in log.splitlines() if "converted" in line.split()] == [
        next(line for line in log.splitlines() if line.startswith("  float "))
    ], log
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) == len(set(lines)), log
    assert "[dense] converting 1 variant(s)" in log  # progress is still there


def _on_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Both streams on one pseudo-terminal, as a runner that allocates a TTY shows them."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(argv, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    try:
        seen = read_all(leader, process).decode()
        process.wait(timeout=60)
    finally:
        os.close(leader)
    return process.returncode, seen


def test_a_ci_job_on_a_terminal_states_each_result_once(tmp_path: Path) -> None:
    workspace = _tflite_workspace(tmp_path / "ws")
    code, seen = _on_terminal(_check(workspace), _env(CI="true", TERM="xterm"))
    assert code == 0, seen
    assert len(_facts(seen, r"ai-edge-litert[^:]*: ran")) == 1, seen
    assert "[runtime] preparing ai-edge-litert" in seen


def test_a_person_at_a_terminal_sees_results_as_they_come(tmp_path: Path) -> None:
    workspace = _tflite_workspace(tmp_path / "ws")
    code, seen = _on_terminal(_check(workspace), _env(TERM="xterm", COLUMNS="200"))
    assert code == 0, seen
    assert "[relu/tflite] ai-edge-litert: ran" in seen  # then again in the summary


SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_a_person_at_a_terminal_gets_a_coloured_summary(tmp_path: Path) -> None:
    workspace = _tflite_workspace(tmp_path / "ws")
    code, seen = _on_terminal(_check(workspace), _env(TERM="xterm", COLUMNS="200"))
    assert code == 0, seen
    assert "Verdict: \x1b[32mPASS\x1b[0m (fail_on: error)" in seen


def test_no_color_on_a_terminal_gets_no_colour(tmp_path: Path) -> None:
    workspace = _tflite_workspace(tmp_path / "ws")
    code, seen = _on_terminal(_check(workspace), _env(TERM="xterm", NO_COLOR="1"))
    assert code == 0, seen
    assert "Verdict: PASS (fail_on: error)" in seen
    assert SGR.findall(seen) == []


def test_forced_colour_never_reaches_workflow_commands_or_files(tmp_path: Path) -> None:
    workspace = _tflite_workspace(tmp_path / "ws")
    (workspace / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: relu\n    source: relu.tflite\n    ops: {allow: [ADD]}\n"
    )
    report, sarif = tmp_path / "report.json", tmp_path / "report.sarif"
    done = subprocess.run(
        [*_check(workspace), "--format", "github", "--report", str(report), "--sarif", str(sarif)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=_env(FORCE_COLOR="1"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Verdict: \x1b[1;31mFAIL\x1b[0m" in done.stdout  # forced: coloured into a pipe
    commands = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert any(line.startswith("::error ") for line in commands), done.stdout
    assert any(line.startswith("::stop-commands::") for line in commands), done.stdout
    assert [line for line in commands if "\x1b" in line] == []
    for written in (report, sarif):
        text = written.read_text(encoding="utf-8")
        assert "\x1b" not in text and "\\u001b" not in text

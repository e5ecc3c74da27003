"""The live status line: on a terminal only, redrawn while the gate is busy, gone at the end."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.pseudo_terminal import read_all
from tests.support.tflite_builder import SHAPE, build_model, builtin
from tflite_gate.report.status_line import StatusLine, status_line, wants_status_line

CLEAR = "\r\x1b[K"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_progress_line_is_printed_for_good_and_shown_with_its_age() -> None:
    stream, clock = io.StringIO(), Clock()
    live = StatusLine(stream, clock)
    clock.now += 3
    live.line("[m] converting 2 variant(s)")
    assert stream.getvalue() == (
        f"{CLEAR}[m] converting 2 variant(s)\n{CLEAR}| 3 s · [m] converting 2 variant(s) (0 s)"
    )
    clock.now += 7
    assert live.render() == "| 10 s · [m] converting 2 variant(s) (7 s)"
    live.stop()
    assert stream.getvalue().endswith(CLEAR)


def test_the_status_line_is_cut_to_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "30")
    live = StatusLine(io.StringIO(), Clock())
    live.line("[a-model-with-a-long-name] converting 5 variant(s)")
    shown = live.render()
    assert len(shown) < 30 and shown.endswith("...")


def test_logs_and_pipes_get_plain_lines_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("CI", raising=False)
    stream = io.StringIO()
    assert not wants_status_line(stream)
    with status_line(stream) as write:
        write("[m] converting")
    assert stream.getvalue() == "[m] converting\n"


@pytest.mark.parametrize(
    ("term", "ci", "wanted"),
    [
        ("xterm", {}, True),
        ("xterm", {"CI": "true"}, False),
        ("xterm", {"GITHUB_ACTIONS": "true"}, False),
        ("dumb", {}, False),
        ("", {}, False),
    ],
)
def test_only_a_terminal_outside_ci_gets_the_live_line(
    monkeypatch: pytest.MonkeyPatch, term: str, ci: dict[str, str], wanted: bool
) -> None:
    monkeypatch.setenv("TERM", term)
    for name in ("CI", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ci.items():
        monkeypatch.setenv(name, value)
    leader, follower = pty.openpty()
    try:
        with open(follower, "w", closefd=False) as terminal:
            assert wants_status_line(terminal) is wanted
    finally:
        os.close(leader)
        os.close(follower)


SLOW_DATA = textwrap.dedent(
    f"""\
    import time

    import numpy as np


    def feeds():
        time.sleep(2.5)
        for i in range(4):
            yield {{"x": np.full({SHAPE!r}, i, dtype=np.float32)}}
    """
)


@pytest.mark.slow
def test_a_gate_on_a_terminal_shows_it_is_alive_then_clears_the_line(tmp_path: Path) -> None:
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (tmp_path / "slow_data.py").write_text(SLOW_DATA)
    (tmp_path / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: relu\n    source: relu.tflite\n"
        "    data: {evaluation: 'slow_data:feeds'}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "GITHUB_ACTIONS"}}
    env |= {"TERM": "xterm", "COLUMNS": "200"}
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tflite_gate", "check", "--workspace", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    try:
        seen = read_all(leader, process).decode()
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(leader)
    assert process.returncode == 0, seen
    redraws = [part for part in seen.split(CLEAR) if " s · " in part and "\n" not in part]
    assert len(redraws) >= 3, seen  # the line kept moving while the data generator slept
    assert any(part.startswith(("| 2 s", "/ 2 s", "- 2 s", "\\ 2 s")) for part in redraws), seen
    assert seen.endswith(CLEAR)
    lines = seen.replace(CLEAR, "\n").splitlines()
    assert "[relu] relu.tflite" in lines or any(line.startswith("[relu]") for line in lines)
    assert b"\x1b" not in stdout  # the report on stdout is untouched


@pytest.mark.slow
def test_a_gate_with_stderr_in_a_pipe_writes_no_control_characters(tmp_path: Path) -> None:
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (tmp_path / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - name: relu\n    source: relu.tflite\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"TERM": "xterm"}
    done = subprocess.run(
        [sys.executable, "-m", "tflite_gate", "check", "--workspace", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "[relu]" in done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr

"""When the terminal output is coloured: no-color.org, force-color.org, and a real TTY."""

from __future__ import annotations

import io
import os
import pty
from collections.abc import Iterator
from typing import TextIO

import pytest

from tflite_gate.report.colour import Styled, show_line, wants_colour


@pytest.fixture
def terminal() -> Iterator[TextIO]:
    """The follower end of a real pseudo-terminal, as a person's shell gives it."""
    leader, follower = pty.openpty()
    try:
        with open(follower, "w", closefd=False) as stream:
            yield stream
    finally:
        os.close(leader)
        os.close(follower)


@pytest.fixture
def pipe() -> Iterator[TextIO]:
    reader, writer = os.pipe()
    try:
        with open(writer, "w", closefd=False) as stream:
            yield stream
    finally:
        os.close(reader)
        os.close(writer)


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({"TERM": "xterm"}, True),
        ({"TERM": "xterm", "CI": "true"}, True),  # a CI job with a TTY still draws colour
        ({"TERM": "xterm", "NO_COLOR": "1"}, False),
        ({"TERM": "xterm", "NO_COLOR": ""}, True),  # empty: not set (no-color.org)
        ({"TERM": "dumb"}, False),
        ({"TERM": "dumb", "FORCE_COLOR": "1"}, True),
        ({"TERM": "xterm", "NO_COLOR": "1", "FORCE_COLOR": "1"}, False),  # no colour wins
    ],
)
def test_a_terminal_gets_colour_unless_told_otherwise(
    terminal: TextIO, env: dict[str, str], wanted: bool
) -> None:
    assert wants_colour(terminal, env) is wanted


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({"TERM": "xterm"}, False),
        ({"TERM": "xterm", "FORCE_COLOR": "1"}, True),
        ({"TERM": "xterm", "FORCE_COLOR": "0"}, True),  # any value but empty (force-color.org)
        ({"TERM": "xterm", "FORCE_COLOR": ""}, False),
    ],
)
def test_a_pipe_gets_colour_only_when_forced(
    pipe: TextIO, env: dict[str, str], wanted: bool
) -> None:
    assert wants_colour(pipe, env) is wanted


def test_a_stream_without_a_file_gets_none() -> None:
    assert wants_colour(io.StringIO(), {"TERM": "xterm"}) is False


def test_trusted_parts_are_coloured_and_the_rest_is_shown_plain() -> None:
    line = ("  ", Styled("error", "error"), " model m broke it")
    assert show_line(line, colour=False) == "  error model m broke it"
    assert show_line(line, colour=True) == "  \x1b[1;31merror\x1b[0m model m broke it"


def test_a_line_with_control_characters_is_escaped_and_left_uncoloured() -> None:
    hostile = ("  ", Styled("error", "error"), " model \x1b[2J\x1b[31mfake")
    shown = show_line(hostile, colour=True)
    assert "\x1b" not in shown
    assert shown == "  error model \\x1b[2J\\x1b[31mfake"
    assert show_line((Styled("::error::x", "error"),), colour=True) == "\\::error::x"

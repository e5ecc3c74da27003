"""Colour for a person at a terminal; never in logs, files or workflow commands.

Whether to colour follows no-color.org (`NO_COLOR` set and not empty: none) and
force-color.org (`FORCE_COLOR` set and not empty: colour even into a pipe, e.g. a CI
log that renders ANSI colour); `NO_COLOR` wins when both are set. Otherwise only a
terminal that draws escapes (a TTY whose `TERM` is not `dumb`) gets colour.

Lines carry model names, sources and runtime messages that anyone may have written:
a line is made plain first (`plain_lines`), and coloured only when that changed
nothing, so a control character in it is shown, never obeyed, and only the gate's
own words (severities, statuses, the verdict) are ever coloured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

from tflite_gate.report.github import plain_lines

Style = Literal["error", "failed", "warning", "notice", "passed", "dim"]
_SGR: dict[Style, str] = {
    "error": "1;31",  # bold red: a finding that fails the gate, a failed verdict
    "failed": "31",
    "warning": "33",
    "notice": "36",
    "passed": "32",
    "dim": "2",
}
_RESET = "\x1b[0m"


@dataclass(frozen=True)
class Styled:
    """A piece of a line in one style: text the gate itself wrote, never input."""

    text: str
    style: Style


Part = str | Styled
Line = str | Sequence[Part]


def is_terminal(stream: TextIO) -> bool:
    """The stream is a TTY (a StringIO, a closed or detached stream is not)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def wants_colour(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour for `stream`: no-color.org, then force-color.org, then a terminal."""
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    return env.get("TERM", "") != "dumb" and is_terminal(stream)


def show_line(line: Line, colour: bool) -> str:
    """A line made plain (see `plain_lines`: a real line break in it stays one), with its
    styled parts coloured if asked."""
    parts = (line,) if isinstance(line, str) else line
    raw = "".join(part.text if isinstance(part, Styled) else part for part in parts)
    plain = plain_lines(raw)
    if not colour or plain != raw:
        return plain
    return "".join(_painted(part) for part in parts)


def _painted(part: Part) -> str:
    if isinstance(part, str) or not part.text:
        return part if isinstance(part, str) else ""
    return f"\x1b[{_SGR[part.style]}m{part.text}{_RESET}"

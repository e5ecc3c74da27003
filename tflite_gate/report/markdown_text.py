"""Markdown building blocks: untrusted text escaped, code spans, fenced blocks, tables.

Everything that comes from the model, the converter or a runtime (op and tensor
names, messages, paths) is untrusted text: it is escaped so it can neither break a
table, inject HTML, open a code span, nor @-mention anyone.
"""

from __future__ import annotations

import html
import re

from tflite_gate.findings import Location
from tflite_gate.report.text import format_number

# Characters with a meaning in Markdown inline syntax (CommonMark lets any ASCII
# punctuation be backslash-escaped; these are the ones that can change rendering
# in running text or a table cell). `<`, `>`, `&` become entities instead.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")
_ZERO_WIDTH_SPACE = "\u200b"

_LOG_LINES = 40
_LOG_LINE_CHARS = 600


def escape_text(text: str) -> str:
    """Untrusted text as literal Markdown inline text on one line.

    HTML-significant characters become entities (so `<script>` is shown, not run),
    Markdown punctuation is backslash-escaped, line breaks become spaces (a newline
    could start a heading or a list), and `@name` gets a zero-width space after the
    `@` so a message cannot notify a user or a team from a PR comment.
    """
    escaped = html.escape(text, quote=False)
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", escaped)
    escaped = _MENTION.sub("@" + _ZERO_WIDTH_SPACE, escaped)
    return " ".join(escaped.splitlines())


def escape_cell(text: str) -> str:
    """Untrusted text inside a table cell: as `escape_text`, line breaks kept as `<br>`."""
    lines = text.splitlines() or [""]
    return "<br>".join(escape_text(line) for line in lines)


def code_span(text: str, *, in_table: bool = False) -> str:
    """Untrusted text in monospace that nothing inside can close or break.

    Outside tables: a backtick code span whose fence is longer than any backtick run
    in the text. Inside a GFM table a `|` ends the cell even within a code span, and
    backslashes cannot be escaped there (`a\\|b` would still split the cell), so
    table cells get `<code>` around fully escaped text instead.
    """
    flat = " ".join(text.splitlines())
    if in_table:
        return f"<code>{escape_text(flat)}</code>"
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat.strip() else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def fenced_block(lines: list[str], info: str = "text") -> str:
    """A fenced code block longer than any backtick run in the text, so nothing escapes it."""
    body = "\n".join(line.replace("\r", "") for line in lines)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def clip_log(lines: list[str]) -> list[str]:
    """Converter logs carry MLIR call-site dumps of many KiB: keep the summary readable."""
    kept = [
        line if len(line) <= _LOG_LINE_CHARS else line[: _LOG_LINE_CHARS - 1] + "…"
        for line in lines[:_LOG_LINES]
    ]
    if len(lines) > _LOG_LINES:
        kept.append(f"… {len(lines) - _LOG_LINES} more lines in the JSON report")
    return kept


def summary_html(text: str) -> str:
    """Untrusted text inside `<summary>`: HTML, where Markdown escapes would show as typed."""
    return html.escape(" ".join(text.splitlines()), quote=False)


def number(value: float | None, digits: int = 3) -> str:
    """Compact general format: `0.0116`, `7.45e-9`, `153`, `inf`; `n/a` when not measured."""
    return format_number(value, digits)


def thousands(n: int) -> str:
    """`12,345`: counts a reviewer reads at a glance."""
    return f"{n:,}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A GFM table of cells already escaped (`escape_cell`, `code_span(in_table=True)`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def location_cell(location: Location | None) -> str:
    """`path:line` in monospace, or `-` for a finding that has no place in a file."""
    if location is None:
        return "-"
    where = location.path
    if location.line is not None:
        where += f":{location.line}"
    return code_span(where, in_table=True)

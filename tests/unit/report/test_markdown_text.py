"""Markdown building blocks: nothing in untrusted text can close, break or mention anything.

What GitHub makes of the text is checked with its own renderer in tests/test_markdown.py;
these are the blocks one by one.
"""

from __future__ import annotations

from tflite_gate.findings import Location
from tflite_gate.report.markdown_text import (
    clip_log,
    code_span,
    fenced_block,
    location_cell,
    summary_html,
    table,
    thousands,
)


def test_a_code_span_is_longer_than_any_backtick_run_inside() -> None:
    assert code_span("a`b") == "``a`b``"
    assert code_span("`edge`") == "`` `edge` ``"
    assert code_span("x|y", in_table=True) == "<code>x\\|y</code>"


def test_a_fenced_block_cannot_be_closed_from_inside() -> None:
    block = fenced_block(["```", "text\r"])
    assert block.splitlines()[0] == "````text"
    assert block.splitlines()[-1] == "````"
    assert "\r" not in block


def test_a_long_log_is_clipped_and_says_how_much_is_left() -> None:
    lines = [f"line {n}" for n in range(45)] + ["x" * 700]
    kept = clip_log(lines)
    assert kept[:40] == lines[:40]
    assert kept[-1] == "… 6 more lines in the JSON report"
    assert all(len(line) <= 600 for line in clip_log(["y" * 700]))


def test_html_inside_a_summary_is_shown_not_run() -> None:
    assert summary_html("<b>model</b>\nnext") == "&lt;b&gt;model&lt;/b&gt; next"


def test_tables_counts_and_places() -> None:
    assert table(["a", "b"], [["1", "2"]]) == "| a | b |\n| --- | --- |\n| 1 | 2 |"
    assert thousands(1234567) == "1,234,567"
    assert location_cell(None) == "-"
    assert location_cell(Location(path="m.py", line=3, column=1)) == "<code>m.py:3</code>"

"""The Markdown report (job summary and PR comment): content, escaping, and the size cap."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cmarkgfm
import lxml.html
import pytest
from cmarkgfm.cmark import Options
from lxml.html import HtmlElement

from tests.support.example_reports import (
    example_report,
    inspection,
    metrics,
    passing_run,
    violation,
)
from tests.support.harness import REPO, run_gate
from tflite_gate.findings import Finding, Location, Severity, sort_findings
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.markdown_text import escape_cell, escape_text
from tflite_gate.report.model import (
    CacheUse,
    ModelReport,
    OpInfo,
    OutputMetrics,
    Report,
    VariantReport,
)
from tflite_gate.report.terminal import render
from tflite_gate.rules import make_finding

COMMENT_LIMIT = 65_536
SUMMARY_CHARS = 1_000_000


# --------------------------------------------------------------------------- helpers


def _cells(row: str) -> list[str]:
    """Split a table row as GFM does: at `|` not escaped by a backslash."""
    assert row.startswith("| ") and row.endswith(" |"), row
    return re.split(r"(?<!\\)\|", row[1:-1])


def _rows_of(text: str, header_start: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def github_html(markdown: str) -> HtmlElement:
    """The Markdown as GitHub renders it (cmark-gfm and its extensions), as an element tree.

    GitHub keeps the raw HTML we use (`<details>`, `<code>`, `<br>`, `<sub>`) and filters
    the rest, so the text is rendered with raw HTML allowed; the tag filter still applies.
    """
    rendered = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    body = lxml.html.document_fromstring(rendered).find("body")
    assert body is not None
    return body


def text_of(element: HtmlElement) -> str:
    return " ".join("".join(element.itertext()).split())


def table_cells(table: HtmlElement) -> tuple[list[str], list[list[str]]]:
    """The header and the body rows of a rendered table, as the cells' text."""
    assert table.tag == "table"
    header = [text_of(cell) for cell in table.iter("th")]
    rows = [[text_of(cell) for cell in row.iter("td")] for row in table.iter("tr")]
    return header, [row for row in rows if row]


def headings(body: HtmlElement) -> list[str]:
    return [text_of(e) for e in body if e.tag in {"h2", "h3"}]


# --------------------------------------------------------------------------- content


def test_verdict_models_and_divergence_vs_threshold() -> None:
    text = render_markdown(example_report(), max_chars=COMMENT_LIMIT, report_path="r.json")
    assert text.startswith("## tflite-gate: FAIL\n")
    assert "**FAIL**: 2 errors, 1 warning, 0 notices in 3 models" in text
    for name in ("classifier", "classifier-strict", "gram"):
        assert f"\n| {name} | " in text
    [strict_int8] = [row for row in text.splitlines() if "**diverged**" in row]
    assert "cosine 0.99923 &lt; 0.99999" in strict_int8
    assert "<code>probs</code>" in strict_int8
    assert "max_abs 0.0116" in text  # the passing run shows its worst error instead
    assert "**conversion-failed**" in text
    assert "Cut to fit" not in text
    assert "`r.json`" in text


def test_github_shows_the_findings_first_then_one_table_of_every_variant() -> None:
    """Rendered as GitHub does: verdict, findings, one model x variant table, the rest collapsed."""
    report = example_report()
    body = github_html(render_markdown(report, max_chars=COMMENT_LIMIT, report_path="r.json"))
    blocks = list(body)
    assert [e.tag for e in blocks[:6]] == ["h2", "p", "h3", "table", "h3", "table"]
    assert headings(body) == ["tflite-gate: FAIL", "Findings", "Models"]
    findings_header, findings = table_cells(blocks[3])
    assert findings_header == ["severity", "rule", "location", "message"]
    assert [row[1] for row in findings] == [f.rule for f in sort_findings(report.findings)]
    header, rows = table_cells(blocks[5])
    assert header[:2] == ["model", "variant"]
    assert [row[:2] for row in rows] == [
        [model.name, variant.name] for model in report.models for variant in model.variants
    ]
    [diverged] = [row for row in rows if row[:2] == ["classifier-strict", "int8"]]
    assert diverged[header.index("divergence")] == "probs cosine 0.99923 < 0.99999"
    collapsed, footer = blocks[6:-1], blocks[-1]
    assert collapsed and {e.tag for e in collapsed} == {"details"}
    assert all("open" not in details.attrib for details in collapsed)
    assert footer.tag == "p" and footer.find("sub") is not None
    tables_inside = sum(len(list(details.iter("table"))) for details in collapsed)
    assert len(list(body.iter("table"))) == 2 + tables_inside


def test_a_model_without_variants_has_its_row() -> None:
    report = example_report()
    report.models.append(ModelReport(name="missing", source="models/missing.keras"))
    body = github_html(render_markdown(report, max_chars=COMMENT_LIMIT))
    header, rows = table_cells([e for e in body if e.tag == "table"][1])
    cells = dict(zip(header, rows[-1], strict=True))
    assert cells.pop("model") == "missing" and cells.pop("status") == "not loaded"
    assert set(cells.values()) == {"-"}


def test_reused_conversions_are_named_under_the_table() -> None:
    report = example_report()
    for model in report.models[:2]:
        model.cache = CacheUse(
            status="reused", converted_at="2025-01-01T00:00:00+00:00", original_s=3.2
        )
    body = github_html(render_markdown(report, max_chars=COMMENT_LIMIT))
    blocks = list(body)
    after_table = blocks[blocks.index([e for e in body if e.tag == "table"][1]) + 1]
    assert text_of(after_table) == (
        "Reused from the cache, not converted in this run: classifier, classifier-strict."
    )
    details = [text_of(e) for e in body if e.tag == "details"]
    assert any(
        "Reused from the cache: converted 2025-01-01 00:00:00 UTC in 3.2 s" in d for d in details
    )


def test_close_values_get_enough_digits_to_differ() -> None:
    report = example_report()
    diverged = report.models[1].variants[1].runs[0]
    diverged.violations = [violation(value=0.999989, threshold=0.99999)]
    assert "cosine 0.999989 &lt; 0.99999" in render_markdown(report, max_chars=COMMENT_LIMIT)
    diverged.violations = [violation(value=0.0116, threshold=0.01, key="max_abs")]
    assert "max\\_abs 0.0116 &gt; 0.01" in render_markdown(report, max_chars=COMMENT_LIMIT)


def test_the_table_reads_the_run_not_the_findings() -> None:
    """The divergence cell comes from the run's violations, whatever the findings say."""
    report = example_report()
    report.findings = [f for f in report.findings if f.rule != "divergence"]
    [row] = [
        r
        for r in render_markdown(report, max_chars=COMMENT_LIMIT).splitlines()
        if "**diverged**" in r
    ]
    assert "cosine 0.99923 &lt; 0.99999" in row


def test_unmeasured_and_infinite_metrics_are_not_numbers() -> None:
    report = example_report()
    run = report.models[0].variants[0].runs[0]
    run.status = "non-finite"
    run.metrics = [
        OutputMetrics(
            output="probs",
            samples=16,
            compared=0,
            max_abs=None,
            mean_abs=None,
            rmse=None,
            rel_rmse=None,
            cosine=None,
            snr_db=None,
            non_finite=160,
        ),
        metrics(output="logits").model_copy(update={"snr_db": None, "infinite": {"snr_db": "inf"}}),
    ]
    text = render_markdown(report, max_chars=COMMENT_LIMIT)
    [row] = [r for r in text.splitlines() if "**non-finite**" in r]
    assert "160 NaN/Inf" in row
    [nan_row] = [r for r in text.splitlines() if "<code>probs</code> | 16 | n/a" in r]
    assert "e+300" not in text and "1e300" not in text
    assert nan_row.count("n/a") == 6
    assert any("<code>logits</code>" in r and "| inf |" in r for r in text.splitlines())


def test_findings_most_severe_first_with_locations() -> None:
    text = render_markdown(example_report(), max_chars=COMMENT_LIMIT)
    rows = _rows_of(text, "| severity")
    assert [_cells(row)[0].strip() for row in rows] == ["**error**", "**error**", "warning"]
    assert "<code>tflite-gate.yml:35</code>" in rows[0]
    assert "<code>example\\_models/gram.py:16</code>" in rows[1]
    assert _cells(rows[2])[2].strip() == "-"


def test_untrusted_text_is_escaped() -> None:
    evil = make_finding(
        "interpreter-error",
        "bad | pipe <script>alert(1)</script> `tick` *star* [link](x) $x$\nsecond line @octocat",
        model="classifier",
        variant="int8",
        location=Location(path="dir|x/`a`.py", line=3),
    )
    report = example_report(extra_findings=[evil])
    report.models[0].variants[0].inspection.ops.append(  # type: ignore[union-attr]
        OpInfo(name="EVIL|OP`<b>", kind="custom", version=1, count=1)
    )
    report.models[0].variants[0].runs[0].metrics.append(metrics(output="out|put\nname<i>"))
    report.models[2].variants[0].converter.log_lines.append("```\n</details><script>x</script>")
    text = render_markdown(report, max_chars=COMMENT_LIMIT)

    # Raw HTML only inside fenced code blocks, where it is shown as text.
    outside_code = re.sub(r"^(`{3,})text\n.*?^\1$", "", text, flags=re.S | re.M)
    assert "</details><script>x</script>" in text
    assert "<script>" not in outside_code
    assert "<b>" not in outside_code and "<i>" not in outside_code
    [row] = [row for row in _rows_of(text, "| severity") if "interpreter" in row]
    cells = _cells(row)
    assert len(cells) == 4
    assert "bad \\| pipe &lt;script&gt;alert(1)&lt;/script&gt; \\`tick\\` \\*star\\*" in cells[3]
    assert "\\[link\\](x) \\$x\\$<br>second line @\u200boctocat" in cells[3]
    assert cells[2].strip() == "<code>dir\\|x/\\`a\\`.py:3</code>"
    for header in ("| op |", "| runtime |", "| model |"):
        for table_row in _rows_of(text, header):
            assert len(_cells(table_row)) == header_cells(text, header)
    # The converter log's fence is longer than any backtick run inside it.
    assert "````text\n" in text
    assert outside_code.count("</details>") == outside_code.count("<details>")


def header_cells(text: str, header: str) -> int:
    line = next(line for line in text.splitlines() if line.startswith(header))
    return len(_cells(line))


def test_escape_helpers() -> None:
    assert escape_text("a|b") == "a\\|b"
    assert escape_text("x\\|y") == "x\\\\\\|y"  # a backslash cannot un-escape the pipe
    assert escape_text("line\nbreak") == "line break"
    assert escape_cell("line\nbreak") == "line<br>break"
    assert escape_text("&lt;") == "&amp;lt;"
    assert escape_text("mail a@b and @team/x") == "mail a@\u200bb and @\u200bteam/x"


def test_passing_report() -> None:
    report = example_report()
    report.findings = []
    report.finalize("error")
    text = render_markdown(report, max_chars=COMMENT_LIMIT, heading="Model gate")
    assert text.startswith("## Model gate: PASS\n")
    assert "**PASS**: 0 errors, 0 warnings, 0 notices in 3 models" in text
    assert "### Findings" not in text


def test_a_tflite_source_run_as_is_is_shown_plainly() -> None:
    report = example_report()
    report.models[0].variants[0] = VariantReport(
        name="tflite",
        quantization="as-is",
        io="as-is",
        status="not-converted",
        inspection=inspection([]),
    )
    text = render_markdown(report, max_chars=COMMENT_LIMIT)
    [row] = [row for row in text.splitlines() if row.startswith("| classifier | tflite |")]
    assert _cells(row)[3].strip() == "as-is (not converted)"
    assert "not-converted" not in text
    assert "**tflite** (as-is): as-is (not converted)" in text


def test_internal_error_is_shown() -> None:
    report = example_report()
    report.internal_error = "Traceback <boom>"
    report.finalize("error")
    text = render_markdown(report, max_chars=COMMENT_LIMIT)
    assert text.startswith("## tflite-gate: ERROR")
    assert "> **Internal error:** Traceback &lt;boom&gt;" in text


# --------------------------------------------------------------------------- the size cap


def _huge_report(findings: int = 5_000, models: int = 40, ops: int = 150) -> Report:
    report = example_report()
    op_list = [
        OpInfo(name=f"OP_{i}_WITH_A_LONG_NAME", kind="builtin", version=1, count=1)
        for i in range(ops)
    ]
    report.models += [
        ModelReport(
            name=f"model-{m}",
            source=f"models/m{m}.keras",
            variants=[
                VariantReport(
                    name="int8",
                    quantization="int8",
                    io="int8",
                    status="converted",
                    inspection=inspection(op_list),
                    runs=[passing_run()],
                )
            ],
        )
        for m in range(models)
    ]
    severities = [Severity.NOTICE, Severity.WARNING, Severity.ERROR]
    report.add(
        [
            Finding(
                rule="op-not-allowed",
                severity=severities[i % 3],
                message=f"finding {i}: " + "a message that is long enough to matter | <x> " * 4,
                model=f"model-{i % models}",
                location=Location(path="tflite-gate.yml", line=i + 1),
            )
            for i in range(findings)
        ]
    )
    report.finalize("error")
    return report


@pytest.fixture(scope="module")
def huge() -> Report:
    return _huge_report()


@pytest.mark.parametrize("limit", [COMMENT_LIMIT, SUMMARY_CHARS])
def test_size_cap_holds_for_5000_findings(huge: Report, limit: int) -> None:
    text = render_markdown(huge, max_chars=limit, report_path="tflite-gate-report.json")
    assert len(text) <= limit
    assert len(text) > limit * 0.9  # and uses the room it has
    assert text.startswith("## tflite-gate: FAIL")
    total = len(huge.findings)
    rows = _rows_of(text, "| severity")
    shown = len(rows)
    note = re.search(
        r"> \*\*Cut to fit ([\d,]+) characters:\*\* left out (.*)\. The full JSON", text
    )
    assert note, text[-2000:]
    assert note.group(1) == f"{limit:,}"
    assert "The full JSON report (`tflite-gate-report.json`) has everything." in text
    # Details go before findings: if any finding is cut, no details are left.
    assert f"{total - shown:,} of {total:,} findings" in note.group(2)
    assert "<details>" not in text
    # The most severe are the ones kept.
    severities = [_cells(row)[0].strip() for row in rows]
    assert severities == sorted(severities, key=lambda s: s != "**error**")
    assert shown > 0
    # The findings lead; the models table is less important and went before them.
    variants = sum(len(model.variants) for model in huge.models)
    assert f"all {variants:,} rows of the models table" in note.group(2)
    body = github_html(text)
    assert headings(body) == ["tflite-gate: FAIL", "Findings"]
    header, rendered_rows = table_cells(list(body)[3])
    assert header == ["severity", "rule", "location", "message"]
    assert len(rendered_rows) == shown
    [quote] = body.iter("blockquote")
    assert text_of(quote).startswith(f"Cut to fit {limit:,} characters: left out")


def test_details_are_dropped_before_any_finding() -> None:
    report = _huge_report(findings=30, models=40, ops=150)
    full = render_markdown(report, max_chars=10**9)
    assert "Cut to fit" not in full
    limit = len(full) // 2
    text = render_markdown(report, max_chars=limit)
    assert len(text) <= limit
    assert len(_rows_of(text, "| severity")) == len(report.findings)
    assert "collapsed detail sections" in text
    assert "findings" not in re.search(r"left out (.*)\. The full", text).group(1)  # type: ignore[union-attr]
    assert 0 < text.count("<details>") == text.count("</details>")


def test_model_rows_are_cut_before_any_finding() -> None:
    report = _huge_report(findings=30, models=400, ops=1)
    limit = 20_000
    text = render_markdown(report, max_chars=limit)
    assert len(text) <= limit
    body = github_html(text)
    assert headings(body) == ["tflite-gate: FAIL", "Findings", "Models"]
    tables = [e for e in body if e.tag == "table"]
    assert len(table_cells(tables[0])[1]) == len(report.findings)
    shown = len(table_cells(tables[1])[1])
    total = sum(len(model.variants) for model in report.models)
    assert 0 < shown < total
    [quote] = body.iter("blockquote")
    assert f"{total - shown:,} of {total:,} rows of the models table" in text_of(quote)
    assert "findings" not in text_of(quote).split("The full JSON")[0]


@pytest.mark.parametrize("limit", [0, 40, 300, 2_000])
def test_tiny_limits_are_never_exceeded(huge: Report, limit: int) -> None:
    assert len(render_markdown(huge, max_chars=limit)) <= limit


# --------------------------------------------------------------------------- a real report


@pytest.mark.slow
def test_real_example_report_renders(tmp_path: Path) -> None:
    workspace = tmp_path / "examples"
    shutil.copytree(REPO / "examples", workspace, ignore=shutil.ignore_patterns(".tflite-gate"))
    run = run_gate(workspace, "--quiet")
    assert run.report is not None, run.stderr
    report_path = workspace / "tflite-gate-report.json"
    report = Report.model_validate_json(report_path.read_text(encoding="utf-8"))
    text = render_markdown(report, max_chars=COMMENT_LIMIT, report_path="tflite-gate-report.json")
    assert len(text) <= COMMENT_LIMIT
    body = github_html(text)
    assert headings(body) == [f"tflite-gate: {report.verdict.upper()}", "Findings", "Models"]
    findings_table, models_table = [e for e in body if e.tag == "table"]
    assert len(table_cells(findings_table)[1]) == len(report.findings)
    header, rows = table_cells(models_table)
    assert [row[:2] for row in rows] == [
        [model.name, variant.name] for model in report.models for variant in model.variants
    ]
    [strict] = [row for row in rows if row[header.index("run")] == "diverged"]
    assert re.search(r"cosine 0\.99\d+ < 0\.99999", strict[header.index("divergence")])
    collapsed = [e for e in body if e.tag == "details"]
    assert len(collapsed) >= len(report.models)
    assert all("open" not in details.attrib for details in collapsed)


def test_runtime_label_shows_a_version_only_where_the_name_does_not_pin_it() -> None:
    report = example_report()
    pinned = passing_run("error")
    pinned.runtime, pinned.runtime_version, pinned.metrics = "tflite-runtime==2.14.0", "2.14.0", []
    report.models[0].variants[0].runs.append(pinned)
    markdown = render_markdown(report, max_chars=COMMENT_LIMIT)
    terminal = render(report)
    for text in (markdown, terminal):
        assert "2.14.0 2.14.0" not in text
        assert "ai-edge-litert 2.3.0" in text
    assert "| tflite-runtime==2.14.0 |" in markdown
    assert "int8 on tflite-runtime==2.14.0: error" in terminal


def test_a_run_compared_with_another_runtime_says_which() -> None:
    report = example_report()
    old = passing_run("passed")
    old.runtime, old.runtime_version = "tflite-runtime==2.14.0", "2.14.0"
    old.compared_with = "ai-edge-litert 2.3.0"
    report.models[0].variants[0].runs.append(old)
    markdown = render_markdown(report, max_chars=COMMENT_LIMIT)
    assert "tflite-runtime==2.14.0 |" in markdown  # the runtimes of a variant share its row
    assert "<br>passed vs ai-edge-litert 2.3.0 |" in markdown
    assert "on tflite-runtime==2.14.0: passed vs ai-edge-litert 2.3.0 · 16 samples" in render(
        report
    )


def test_executed_custom_ops_say_who_resolved_them() -> None:
    report = example_report()
    by_runtime = report.models[0].variants[0].runs[0]
    by_runtime.custom_ops_executed = ["Convolution2DTransposeBias"]
    registered = passing_run()
    registered.runtime = "ai-edge-litert + RegisterMyOps"
    registered.custom_ops_executed, registered.custom_op_registerers = ["MyOp"], ["RegisterMyOps"]
    report.models[0].variants[0].runs.append(registered)
    terminal = render(report)
    assert "custom ops Convolution2DTransposeBias ran, resolved by the runtime itself" in terminal
    assert "custom ops MyOp ran, with the policy's registerers RegisterMyOps" in terminal
    markdown = render_markdown(report, max_chars=COMMENT_LIMIT)
    assert (
        "Custom ops executed on ai-edge-litert 2.3.0: `Convolution2DTransposeBias`, "
        "resolved by the runtime itself" in markdown
    )


def test_agreement_below_one_never_reads_as_one() -> None:
    from tflite_gate.report.text import format_metric, metrics_line

    close = metrics(cosine=0.99999997).model_copy(update={"top1": 0.9995})
    assert format_metric(close, "cosine", 6) == "0.99999997"
    assert format_metric(close, "top1", 3) == "0.9995"
    assert "cosine 0.99999997" in metrics_line(close) and "top1 0.9995" in metrics_line(close)
    exact = metrics(cosine=1.0)
    assert format_metric(exact, "cosine", 6) == "1"
    report = example_report()
    report.models[0].variants[0].runs[0].metrics = [close]
    assert "| 0.99999997 |" in render_markdown(report, max_chars=COMMENT_LIMIT)

"""The GitHub Actions reporter, checked against the real `@actions/core` and the runner's rules.

The oracle is the npm package `@actions/core` (pinned in tests/support/oracle/package.json
and package-lock.json): `tests/support/oracle/annotate.mjs` calls `core.error/warning/notice`
and its stdout is what our command lines must equal, byte for byte.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import SUPPORT
from tflite_gate.findings import Finding, Location, Severity
from tflite_gate.report.github import (
    ANNOTATIONS_PER_SEVERITY,
    MESSAGE_LIMIT,
    SUMMARY_LIMIT_BYTES,
    Annotations,
    JobSummary,
    StepOutputs,
    action_outputs,
    annotation_command,
    annotation_commands,
    annotation_message,
    choose_delimiter,
    choose_stop_token,
    escape_data,
    escape_property,
    format_outputs,
    runner_reporters,
    stop_commands,
    workflow_command,
    write_outputs,
    write_step_summary,
)
from tflite_gate.report.model import (
    EnvironmentInfo,
    ModelReport,
    Report,
    Tool,
    VariantReport,
)
from tflite_gate.report.reporters import PublishFailure, publish_each
from tflite_gate.rules import RULES

ORACLE = SUPPORT / "oracle"

TRICKY = [
    "plain",
    "100% done",
    "%0A is literal here, so is %25 and %3A and %2C",
    "two\nlines",
    "carriage\rreturn and CRLF\r\nend",
    "colon: and, comma",
    "a:b,c:d,,::",
    "::error::inner command",
    "trailing newline\n",
    "\n\nleading newlines",
    "naïve — 模型 🙂 \u202eRTL",
    "tab\tand \x1b[31mANSI\x1b[0m",
    "equals=sign and <html> & 'quotes' \"double\"",
    "%%%\r\r\n\n%",
    "percent then newline %\n%0D",
]
FILES = [
    "tflite-gate.yml",
    "example_models/gram.py",
    "dir,with:colon/file%0A.py",
    "spaces in name/ü.py",
    "weird%25,:\n.py",
]


# --------------------------------------------------------------------------- the oracle


@pytest.fixture(scope="session")
def oracle(npm_tools: Path) -> Any:
    """`run(cases) -> lines`: the real @actions/core's output for the given cases."""
    node = shutil.which("node")
    assert node is not None

    def run(cases: list[dict[str, Any]]) -> list[str]:
        completed = subprocess.run(
            [node, str(ORACLE / "annotate.mjs")],
            input=json.dumps(cases).encode("utf-8"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr.decode("utf-8", "replace")
        lines = completed.stdout.decode("utf-8").split("\n")
        assert lines[-1] == "", "the oracle's output must end with a newline"
        assert len(lines) - 1 == len(cases)
        return lines[:-1]

    return run


def _case(level: str, message: str, **properties: Any) -> dict[str, Any]:
    return {
        "level": level,
        "message": message,
        "properties": {key: value for key, value in properties.items() if value is not None},
    }


def _ours(case: dict[str, Any]) -> str:
    props = case["properties"]
    return workflow_command(
        case["level"],
        case["message"],
        {
            "title": props.get("title"),
            "file": props.get("file"),
            "line": props.get("startLine"),
            "col": props.get("startColumn"),
        },
    )


@pytest.mark.slow
def test_workflow_commands_equal_actions_core_byte_for_byte(oracle: Any) -> None:
    cases = [_case(level, text) for level in ("error", "warning", "notice") for text in TRICKY]
    cases += [_case("error", "", title="t"), _case("notice", "")]
    cases += [_case("warning", text, title=title) for text in TRICKY[:6] for title in TRICKY]
    cases += [
        _case("error", message, title=title, file=file, startLine=line, startColumn=col)
        for message, title in zip(TRICKY, reversed(TRICKY), strict=True)
        for file in FILES
        for line, col in ((1, None), (12345, 7), (None, 3), (None, None))
    ]
    expected = oracle(cases)
    assert [_ours(case) for case in cases] == expected


@pytest.mark.slow
def test_escape_functions_equal_actions_core(oracle: Any) -> None:
    # core's escapeData/escapeProperty are module-private; read them off the commands:
    # `::notice::<escapeData(v)>` and `::notice title=<escapeProperty(v)>::`.
    values = [*TRICKY, *FILES, "", "%", "\r", "\n", ":", ",", "%3A%2C%0D%0A%25"]
    data_lines = oracle([_case("notice", value) for value in values])
    assert [line.removeprefix("::notice::") for line in data_lines] == [
        escape_data(value) for value in values
    ]
    non_empty = [value for value in values if value]  # core drops empty properties
    prop_lines = oracle([_case("notice", "", title=value) for value in non_empty])
    assert [line.removeprefix("::notice title=").removesuffix("::") for line in prop_lines] == [
        escape_property(value) for value in non_empty
    ]


def _finding(
    message: str = "something happened",
    *,
    rule: str = "divergence",
    severity: Severity = Severity.ERROR,
    location: Location | None = None,
    model: str | None = "m",
) -> Finding:
    # Unvalidated: the escaping tests feed rule ids no `RuleId` allows.
    return Finding.model_construct(
        rule=rule, severity=severity, message=message, model=model, location=location
    )


@pytest.mark.slow
def test_annotation_command_is_what_core_prints_for_the_finding(oracle: Any) -> None:
    findings = [
        _finding(message, location=Location(path=path, line=line, column=column), severity=sev)
        for message, path, (line, column), sev in zip(
            TRICKY,
            FILES * 3,
            [(3, None), (35, 81), (None, None), (1, 1), (7, None)] * 3,
            list(Severity) * 5,
            strict=True,
        )
    ]
    findings += [
        _finding("no location at all"),
        _finding("a rule id we do not know", rule="weird,rule:%id\n"),
        _finding("", rule="flex-op", severity=Severity.NOTICE),
    ]
    cases = []
    for f in findings:
        rule = RULES.get(f.rule)
        cases.append(
            _case(
                f.severity.value,
                f"{f.message}\n\nFix: {rule.hint}" if rule else f.message,
                title=f"{f.rule}: {rule.title}" if rule else f.rule,
                file=f.location.path if f.location else None,
                startLine=f.location.line if f.location else None,
                startColumn=f.location.column if f.location else None,
            )
        )
    assert [annotation_command(f) for f in findings] == oracle(cases)


def test_annotation_without_location_has_no_file_property() -> None:
    line = annotation_command(_finding("m", rule="version-mismatch"))
    assert line.startswith("::error title=version-mismatch%3A An installed package")
    assert "file=" not in line
    assert "line=" not in line


def test_long_message_is_cut_to_the_runner_limit_keeping_the_fix_hint() -> None:
    for filler in ("x", "🙂"):  # 🙂 is two UTF-16 code units, as the runner counts
        message = annotation_message(_finding(filler * 10_000))
        units = len(message.encode("utf-16-le")) // 2
        assert units <= MESSAGE_LIMIT
        assert units >= MESSAGE_LIMIT - 2
        assert message.endswith(f"…\n\nFix: {RULES['divergence'].hint}")


# --------------------------------------------------------------------------- caps and order


def _report(findings: list[Finding], models: int = 1) -> Report:
    report = Report(
        tool=Tool(version="0.0.test"),
        started_at="2025-01-01T00:00:00+00:00",
        environment=EnvironmentInfo(python="3.11", platform="linux", packages={}),
        models=[
            ModelReport(
                name=f"model-{i}",
                source="m.keras",
                variants=[
                    VariantReport(name="float", quantization="none", io="float", status="converted")
                ],
            )
            for i in range(models)
        ],
    )
    report.add(findings)
    report.finalize("error")
    return report


def test_at_most_ten_per_severity_most_severe_first_then_how_many_more() -> None:
    errors = [_finding(f"error {i}", severity=Severity.ERROR) for i in range(25)]
    warnings = [_finding(f"warning {i}", severity=Severity.WARNING) for i in range(3)]
    notices = [_finding(f"notice {i}", severity=Severity.NOTICE) for i in range(12)]
    mixed = [*notices[:6], *warnings[:1], *errors[:13], *notices[6:], *warnings[1:], *errors[13:]]
    lines = annotation_commands(_report(mixed), report_path="out/report.json")

    kinds = [line.split("::")[1].split(" ")[0] for line in lines]
    assert kinds == ["error"] * 10 + ["warning"] * 3 + ["notice"] * 10
    for kind in ("error", "warning", "notice"):
        assert kinds.count(kind) <= ANNOTATIONS_PER_SEVERITY
    # Stable within a severity: the first ten errors of the report, in report order.
    assert [line.split("::")[2].split("%0A")[0] for line in lines[:10]] == [
        f"error {i}" for i in range(10)
    ]
    # The final notice takes the tenth notice slot, so only nine notices are findings:
    # 15 errors + 3 notices are left out.
    assert sum("::notice title=divergence" in line for line in lines) == 9
    last = lines[-1]
    assert last.startswith("::notice title=tflite-gate::18 more findings are not annotated")
    assert "out/report.json" in last
    assert "job summary" in last


def test_no_final_notice_when_everything_fits() -> None:
    findings = [_finding(f"e{i}") for i in range(10)] + [
        _finding(f"n{i}", severity=Severity.NOTICE) for i in range(10)
    ]
    lines = annotation_commands(_report(findings))
    assert len(lines) == 20
    assert not any("more finding" in line for line in lines)


def test_one_dropped_finding_is_reported_in_the_singular() -> None:
    lines = annotation_commands(_report([_finding(f"e{i}") for i in range(11)]))
    assert lines[-1].startswith("::notice title=tflite-gate::1 more finding is not annotated")


# --------------------------------------------------------------------------- outputs


def _read_like_the_runner(text: str) -> dict[str, str]:
    """The runner's GITHUB_OUTPUT parser (FileCommandManager, Linux): both forms, LF lines."""
    outputs: dict[str, str] = {}
    index = 0

    def read_line() -> str | None:
        nonlocal index
        if index >= len(text):
            return None
        end = text.find("\n", index)
        if end < 0:
            line, index = text[index:], len(text)
            return line
        line, index = text[index:end], end + 1
        return line

    line = read_line()
    while line is not None:
        if line:
            equals, heredoc = line.find("="), line.find("<<")
            if equals >= 0 and (heredoc < 0 or equals < heredoc):
                name, value = line.split("=", 1)
                outputs[name] = value
            elif heredoc >= 0:
                name, delimiter = line.split("<<", 1)
                assert name and delimiter, f"invalid format {line!r}"
                start = end = index
                current = read_line()
                while current != delimiter:
                    assert current is not None, f"matching delimiter not found {delimiter!r}"
                    end = index - 1
                    current = read_line()
                outputs[name] = text[start:end] if end > start else ""
            else:
                raise AssertionError(f"invalid format {line!r}")
        line = read_line()
    return outputs


def test_outputs_survive_the_runner_parser(tmp_path: Path) -> None:
    path = tmp_path / "github_output"
    path.write_text("previous=kept")  # no trailing newline: ours must not glue onto it
    values = {
        "verdict": "fail",
        "multi": "first line\nsecond line\n\nfourth",
        "trap": "ghadelimiter_ looks like ours\nghadelimiter_\nEOF",
        "newline-at-end": "value\n",
        "empty": "",
        "crlf": "a\r\nb",
        "looks-like-a-heredoc": "x<<EOF\nEOF",
        "unicode": "模型 🙂",
    }
    write_outputs(path, values)
    write_outputs(path, {"second-call": "appended"})
    text = path.read_bytes().decode("utf-8")  # as the runner reads it: no newline translation
    assert text.endswith("\n")
    assert _read_like_the_runner(text) == {"previous": "kept", **values, "second-call": "appended"}
    assert len(set(re.findall(r"ghadelimiter_[0-9a-f-]{36}", text))) == len(values) + 1


def test_delimiter_chooser_skips_candidates_found_in_name_or_value() -> None:
    value = "data with ghadelimiter_AAA inside"
    assert choose_delimiter("name", value, candidates=["ghadelimiter_AAA", "ghadelimiter_BBB"]) == (
        "ghadelimiter_BBB"
    )
    assert (
        choose_delimiter("x_ghadelimiter_AAA", "v", candidates=["ghadelimiter_AAA", "D2"]) == "D2"
    )
    with pytest.raises(RuntimeError):
        choose_delimiter(value, candidates=["ghadelimiter_AAA"])
    first, second = choose_delimiter("v"), choose_delimiter("v")
    assert first != second
    assert re.fullmatch(r"ghadelimiter_[0-9a-f-]{36}", first)


def test_invalid_output_names_are_refused() -> None:
    for name in ("", "a=b", "a<<b", "a\nb"):
        with pytest.raises(ValueError):
            format_outputs({name: "v"})


def test_action_outputs() -> None:
    report = _report([_finding(f"e{i}") for i in range(6)], models=5)
    outputs = action_outputs(report, "tflite-gate-report.json")
    assert outputs == {
        "verdict": "fail",
        "errors": "6",
        "warnings": "0",
        "report-path": "tflite-gate-report.json",
        "summary": "fail: 6 errors, 0 warnings in 5 models",
    }
    single = action_outputs(_report([_finding("e")]), "r.json")
    assert single["summary"] == "fail: 1 error, 0 warnings in 1 model"


# --------------------------------------------------------------------------- stop-commands


_REGISTERED = {
    "stop-commands", "error", "warning", "notice", "debug", "add-mask", "set-output",
    "save-state", "set-env", "add-path", "add-matcher", "remove-matcher", "group",
    "endgroup", "echo",
}  # fmt: skip


def _parse_command(line: str, registered: set[str]) -> tuple[str, str] | None:
    """ActionCommand.TryParseV2, then the legacy TryParse (`##[name]` anywhere in a line)."""
    names = {name.casefold() for name in registered}
    text = line.lstrip()
    if text.startswith("::"):
        end = text.find("::", 2)
        if end >= 0:
            name = text[2:end].split(" ", 1)[0]
            if name.casefold() in names:
                return name, text[end + 2 :]
    start = line.find("##[")
    if start >= 0:
        close = line.find("]", start)
        if close >= 0:
            name = line[start + 3 : close].split(" ", 1)[0]
            if name.casefold() in names:
                return name, line[close + 1 :]
    return None


def _commands_the_runner_obeys(output: str) -> list[str]:
    """Which commands a runner would act on (ActionCommandManager: stop/resume, any case)."""
    obeyed: list[str] = []
    stop_token: str | None = None
    for line in output.split("\n"):
        registered = _REGISTERED | ({stop_token} if stop_token else set())
        parsed = _parse_command(line, registered)
        if parsed is None:
            continue
        command, data = parsed
        if stop_token is not None:
            if command.casefold() == stop_token.casefold():
                stop_token = None
            continue
        if command.casefold() == "stop-commands":
            stop_token = data
            continue
        obeyed.append(command)
    return obeyed


def test_stop_commands_neutralises_untrusted_log_lines() -> None:
    log = [
        "converter: all fine",
        "::error::pwned",
        "::add-mask::x",
        "  ::set-output name=verdict::pass",
        "::STOP-COMMANDS::nested",
        "legacy form anywhere in a line: ##[add-mask]secret",
        "multi\n::warning::line",
    ]
    stream = io.StringIO()
    token = stop_commands(log, stream)
    written = stream.getvalue()
    lines = written.split("\n")
    assert lines[0] == f"::stop-commands::{token}"
    assert lines[-2:] == [f"::{token}::", ""]
    assert "\n".join(lines[1:-2]) == "\n".join(log)
    assert all(token.casefold() not in line.casefold() for line in log)
    assert _commands_the_runner_obeys(written) == []
    # Without the wrapper the runner would obey them: the check above means something.
    assert _commands_the_runner_obeys("\n".join(log[:4])) == ["error", "add-mask", "set-output"]
    assert _commands_the_runner_obeys(log[5]) == ["add-mask"]


def test_stop_token_is_fresh_and_absent_from_the_text_in_any_case() -> None:
    tokens = {stop_commands(["x"], io.StringIO()) for _ in range(20)}
    assert len(tokens) == 20
    assert choose_stop_token("log ABCDEF", candidates=["abcdef", "0123"]) == "0123"


# --------------------------------------------------------------------------- summary and entry point


def _to_github(
    report: Report, report_path: str, stream: io.StringIO, env: dict[str, str]
) -> list[PublishFailure]:
    """The GitHub reporters as the Action lists them: annotations, job summary, outputs."""
    reporters = [Annotations(stream, report_path), *runner_reporters(report_path, env)]
    return publish_each(report, reporters)


def test_github_reporters_print_annotations_and_append_summary_and_outputs(
    tmp_path: Path,
) -> None:
    summary, outputs = tmp_path / "summary.md", tmp_path / "output"
    summary.write_text("# Earlier step content\n", encoding="utf-8")
    report = _report(
        [
            _finding("diverged", location=Location(path="tflite-gate.yml", line=35, column=81)),
            _finding("fyi", severity=Severity.NOTICE, rule="flex-op"),
        ]
    )
    stream = io.StringIO()
    env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
    assert _to_github(report, "tflite-gate-report.json", stream, env) == []

    printed = stream.getvalue().splitlines()
    assert printed[0].startswith("::error title=divergence%3A ")
    assert ",file=tflite-gate.yml,line=35,col=81::diverged%0A%0AFix: " in printed[0]
    assert printed[1].startswith("::notice title=flex-op%3A ")
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# Earlier step content\n## tflite-gate: FAIL")
    assert "`tflite-gate-report.json`" in text
    parsed = _read_like_the_runner(outputs.read_bytes().decode("utf-8"))
    assert parsed["verdict"] == "fail"
    assert parsed["errors"] == "1"
    assert parsed["report-path"] == "tflite-gate-report.json"


def test_outside_actions_there_are_no_runner_reporters(tmp_path: Path) -> None:
    assert runner_reporters("r.json", {}) == []
    stream = io.StringIO()
    _to_github(_report([_finding("e")]), "r.json", stream, {})
    assert stream.getvalue().startswith("::error ")
    assert list(tmp_path.iterdir()) == []


def test_runner_reporters_go_where_the_runner_asks(tmp_path: Path) -> None:
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md"), "GITHUB_OUTPUT": str(tmp_path / "o")}
    assert runner_reporters("r.json", env) == [
        JobSummary(tmp_path / "s.md", "r.json"),
        StepOutputs(tmp_path / "o", "r.json"),
    ]


def test_unwritable_summary_is_a_failure_that_names_it_not_a_crash(tmp_path: Path) -> None:
    stream = io.StringIO()
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "missing-dir" / "summary.md")}
    [failure] = _to_github(_report([]), "r.json", stream, env)
    assert failure.message.startswith("could not write the job summary ")
    assert "missing-dir" in failure.message


def test_a_full_summary_is_skipped_with_where_the_report_is(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"x" * SUMMARY_LIMIT_BYTES)
    [failure] = publish_each(_report([]), [JobSummary(summary, "r.json")])
    assert failure.message == (
        f"did not write the job summary {summary}: the job summary is full (1 MiB); "
        "see the JSON report (r.json)"
    )


def test_summary_stays_under_one_mebibyte_in_bytes_with_non_ascii_text(tmp_path: Path) -> None:
    # 3-byte characters: a character budget alone would give a ~3 MiB file.
    findings = [_finding(f"{i}: " + "模型发散" * 120) for i in range(5_000)]
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"x" * 100_000 + b"\n")
    assert write_step_summary(_report(findings), summary, report_path="r.json")
    size = summary.stat().st_size
    assert size <= SUMMARY_LIMIT_BYTES
    assert size > SUMMARY_LIMIT_BYTES * 0.8  # and still uses most of the room
    assert "The full JSON report (`r.json`) has everything." in summary.read_text("utf-8")


def test_full_summary_file_is_left_alone(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"x" * SUMMARY_LIMIT_BYTES)
    assert not write_step_summary(_report([]), summary)
    assert summary.stat().st_size == SUMMARY_LIMIT_BYTES

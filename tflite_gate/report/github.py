"""The GitHub Actions reporter: annotations, job summary and step outputs.

Everything here follows what the runner and `@actions/core` actually do, because a
small mistake is silent on GitHub: an unescaped `%0A` in a message becomes a line
break, a `,` in a file name ends the property, the 11th error annotation of a step
is not shown, a summary over 1 MiB is not uploaded, and an output value that
contains its own heredoc delimiter corrupts every output after it. The test suite
compares our command lines byte for byte with the real `@actions/core` package.

Usable from the Action and from `tflite-gate check --format github`; the reporters at
the end are listed with the others in `app/publish.py`.
"""

from __future__ import annotations

import secrets
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tflite_gate.findings import Finding, Severity, sort_findings
from tflite_gate.report.markdown import render_markdown
from tflite_gate.report.model import Report
from tflite_gate.report.reporters import ReporterSkipped
from tflite_gate.report.text import plural
from tflite_gate.rules import RULES
from tflite_gate.support.workspace_files import require_regular_file

#: GitHub shows at most this many annotations of each type (error, warning, notice) per step.
ANNOTATIONS_PER_SEVERITY = 10
#: The runner cuts an annotation message at this many UTF-16 code units (C# string length).
MESSAGE_LIMIT = 4096
#: `$GITHUB_STEP_SUMMARY` is not uploaded at all when the file exceeds 1 MiB.
SUMMARY_LIMIT_BYTES = 1024 * 1024
#: What we give the Markdown renderer for the summary, well under the byte limit.
SUMMARY_MAX_CHARS = 1_000_000 - 16_384

PropertyValue = str | int | None


# --------------------------------------------------------------------------- escaping


def escape_data(text: str) -> str:
    """Escape a command's message as `@actions/core`'s `escapeData` does.

    The runner unescapes exactly these three; anything else (including a literal
    `%0A` the user wrote, which becomes `%250A`) comes back unchanged.
    """
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value as `escapeProperty` does: `:` and `,` delimit properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


#: What .NET's `char.IsWhiteSpace` accepts; the runner's `TrimStart()` skips these before `::`.
_RUNNER_WHITESPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: Default-ignorable characters that are not format (Cf) characters: a culture-aware
#: `StartsWith("::")` / `IndexOf("##[")` (ICU) may look through them, so they are shown escaped.
_IGNORABLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u3164\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))
)
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _visible(char: str) -> str:
    if char in _IGNORABLE or unicodedata.category(char) in _INVISIBLE_CATEGORIES:
        return char.encode("unicode_escape").decode("ascii")
    return char


def plain_line(text: str) -> str:
    """Untrusted text as one log line that the runner can never read as a workflow command.

    The runner splits output on CR and LF, then treats a line as a command if it
    starts with `::` after leading white space (v2) or contains `##[` anywhere (v1),
    on stdout and stderr alike. Progress lines and error messages carry model
    sources, names and runtime text, so control, format and separator characters are
    shown as `\\n`-style escapes (one line, nothing invisible), a leading `::` gets a
    backslash and `##[` becomes `#\\#[`.
    """
    shown = "".join(_visible(char) for char in text).replace("##[", "#\\#[")
    body = shown.lstrip("".join(_RUNNER_WHITESPACE))
    if body.startswith("::"):
        return shown[: len(shown) - len(body)] + "\\" + body
    return shown


def plain_lines(text: str) -> str:
    """Multi-line untrusted text (a summary, an error with context) kept multi-line.

    Each line goes through `plain_line`; splitting first keeps real line breaks
    readable, and a line made by a hostile break is neutralised like any other.
    """
    return "\n".join(plain_line(line) for line in text.splitlines())


def _to_command_value(value: str | int) -> str:
    """`toCommandValue`: strings as they are, numbers as JSON (`5`)."""
    return value if isinstance(value, str) else str(value)


def workflow_command(
    command: str, message: str, properties: Mapping[str, PropertyValue] | None = None
) -> str:
    """One workflow-command line, without the newline, as `@actions/core`'s `issueCommand`.

    Properties keep the given order; a property whose value is empty, 0 or None is
    left out, as in `@actions/core` (a `line=0` would point nowhere anyway).
    """
    shown = [
        f"{key}={escape_property(_to_command_value(value))}"
        for key, value in (properties or {}).items()
        if value  # JS truthiness: "", 0 and None are skipped
    ]
    head = f"::{command}" + (" " + ",".join(shown) if shown else "")
    return f"{head}::{escape_data(message)}"


# --------------------------------------------------------------------------- annotations


def _utf16_units(text: str) -> int:
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def _cut_utf16(text: str, limit: int) -> str:
    """The longest prefix of at most `limit` UTF-16 code units (how the runner counts)."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text


def annotation_message(finding: Finding) -> str:
    """The finding's message and its fix hint, cut so the hint survives the runner's cut.

    The runner keeps the first 4096 characters of a message; cutting the message
    ourselves (with an ellipsis) keeps the `Fix:` line, which is the actionable part.
    """
    rule = RULES.get(finding.rule)
    tail = f"\n\nFix: {rule.hint}" if rule is not None else ""
    text = finding.message + tail
    if _utf16_units(text) <= MESSAGE_LIMIT:
        return text
    room = MESSAGE_LIMIT - _utf16_units(tail) - 1
    if room <= 0:
        return _cut_utf16(text, MESSAGE_LIMIT)
    return _cut_utf16(finding.message, room) + "…" + tail


def annotation_title(finding: Finding) -> str:
    """`rule-id: Rule title`, so the rule id (what users grep and document) is visible."""
    rule = RULES.get(finding.rule)
    return f"{finding.rule}: {rule.title}" if rule is not None else finding.rule


def annotation_command(finding: Finding) -> str:
    """The line `core.error(message, {title, file, startLine, startColumn})` would print.

    `file` is the workspace-relative path, which the runner resolves against the
    checkout; findings without a location become annotations on the run only.
    """
    location = finding.location
    properties: dict[str, PropertyValue] = {"title": annotation_title(finding)}
    if location is not None:
        properties |= {"file": location.path, "line": location.line, "col": location.column}
    return workflow_command(finding.severity.value, annotation_message(finding), properties)


def annotation_commands(report: Report, *, report_path: str | None = None) -> list[str]:
    """Annotation lines, most severe first, at most 10 of each severity.

    GitHub drops every annotation of a type beyond the 10th of the step, so we choose
    which ones are shown (the most severe) instead of leaving it to print order. If
    any are left out, a final notice says how many and where to find them; it takes
    one of the 10 notice slots, otherwise it would itself be the one dropped.
    """
    findings = sort_findings(report.findings)
    counts = {severity: 0 for severity in Severity}
    for finding in findings:
        counts[finding.severity] += 1
    caps = dict.fromkeys(Severity, ANNOTATIONS_PER_SEVERITY)
    overflow = any(count > ANNOTATIONS_PER_SEVERITY for count in counts.values())
    if overflow:
        caps[Severity.NOTICE] = ANNOTATIONS_PER_SEVERITY - 1
    lines: list[str] = []
    shown = dict.fromkeys(Severity, 0)
    for finding in findings:
        if shown[finding.severity] < caps[finding.severity]:
            shown[finding.severity] += 1
            lines.append(annotation_command(finding))
    dropped = len(findings) - sum(shown.values())
    if dropped:
        where = f" ({report_path})" if report_path else ""
        noun = "finding is" if dropped == 1 else "findings are"
        lines.append(
            workflow_command(
                "notice",
                f"{dropped} more {noun} not annotated here (GitHub shows "
                f"{ANNOTATIONS_PER_SEVERITY} annotations per type per step): see the job "
                f"summary or the JSON report{where}.",
                {"title": "tflite-gate"},
            )
        )
    return lines


# --------------------------------------------------------------------------- markers


def _uuid_delimiters() -> Iterator[str]:
    while True:
        yield f"ghadelimiter_{uuid.uuid4()}"


def _random_tokens() -> Iterator[str]:
    while True:
        yield secrets.token_hex(16)


def choose_delimiter(*texts: str, candidates: Iterable[str] | None = None) -> str:
    """The first candidate delimiter that occurs in none of `texts`.

    The runner ends a heredoc value at the first line equal to the delimiter, so a
    value containing it would end early and turn its remainder into bogus outputs.
    `@actions/core` throws in that case; we take the next candidate instead.
    `candidates` defaults to endless `ghadelimiter_<uuid4>`; tests pass their own.
    """
    for candidate in candidates if candidates is not None else _uuid_delimiters():
        if candidate and not any(candidate in text for text in texts):
            return candidate
    raise RuntimeError("no candidate delimiter is absent from the text")


def choose_stop_token(*texts: str, candidates: Iterable[str] | None = None) -> str:
    """A `stop-commands` token occurring in none of `texts`, compared case-insensitively.

    The runner resumes command processing at the first `::<token>::` and compares
    command names ignoring case, so the text must not contain the token in any case.
    """
    folded = [text.casefold() for text in texts]
    for candidate in candidates if candidates is not None else _random_tokens():
        token = candidate.casefold()
        if token and not any(token in text for text in folded):
            return candidate
    raise RuntimeError("no candidate token is absent from the text")


def stop_commands(lines: list[str], stream: TextIO) -> str:
    """Echo untrusted text so that nothing in it can act as a workflow command.

    Converter and runtime logs are written by code we do not control; a line such as
    `::add-mask::x` or `::error::...` inside them would otherwise be obeyed. The
    runner ignores all commands between `::stop-commands::<token>` and `::<token>::`,
    with a fresh random token per call that does not occur in the text. Returns the
    token used.
    """
    token = choose_stop_token(*lines)
    stream.write(f"::stop-commands::{token}\n")
    for line in lines:
        stream.write(line if line.endswith("\n") else line + "\n")
    stream.write(f"::{token}::\n")
    return token


# --------------------------------------------------------------------------- files


def _appendable(path: Path) -> Path:
    """`path` if it is a regular file or none yet; SpecialFileError for a FIFO or device.

    The runner's file commands are regular files; a FIFO in their place would block
    the open forever, and a signal cannot end the step then.
    """
    if path.exists():
        require_regular_file(path)
    return path


def _ends_without_newline(path: Path) -> bool:
    """True for a non-empty file whose last byte is not a newline."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            if handle.tell() == 0:
                return False
            handle.seek(-1, 2)
            return handle.read(1) != b"\n"
    except FileNotFoundError:
        return False


def write_step_summary(report: Report, path: str | Path, *, report_path: str | None = None) -> bool:
    """Append the Markdown summary to `$GITHUB_STEP_SUMMARY`; False if there is no room.

    The runner uploads the file after the step only if it is at most 1 MiB (bytes,
    including anything written before us in this step), so the text is rendered to
    fit what is left; non-ASCII text can take more bytes than characters, hence the
    re-render with a smaller budget.
    """
    target = _appendable(Path(path))
    separator = "\n" if _ends_without_newline(target) else ""
    existing = target.stat().st_size if target.exists() else 0
    room = SUMMARY_LIMIT_BYTES - existing - len(separator) - 4096  # margin for the runner
    if room <= 0:
        return False
    max_chars = min(SUMMARY_MAX_CHARS, room)
    text = render_markdown(report, max_chars=max_chars, report_path=report_path)
    while len(text.encode("utf-8")) > room and max_chars > 0:
        max_chars = max_chars * room // len(text.encode("utf-8")) - 1
        text = render_markdown(report, max_chars=max(max_chars, 0), report_path=report_path)
    with target.open("a", encoding="utf-8", newline="") as handle:
        handle.write(separator + text)
    return True


def action_outputs(report: Report, report_path: str) -> dict[str, str]:
    """The step outputs a workflow can branch on without parsing the JSON report."""
    s = report.summary
    summary = (
        f"{report.verdict}: {plural(s.errors, 'error')}, {plural(s.warnings, 'warning')} "
        f"in {plural(len(report.models), 'model')}"
    )
    return {
        "verdict": report.verdict,
        "errors": str(s.errors),
        "warnings": str(s.warnings),
        "report-path": report_path,
        "summary": summary,
    }


def _check_output_name(name: str) -> None:
    """Names the runner would misread: empty, multi-line, or with `=` / `<<` in them."""
    if not name or "=" in name or "<<" in name or "\n" in name or "\r" in name:
        raise ValueError(f"invalid output name {name!r}")


def format_outputs(outputs: Mapping[str, str]) -> str:
    """`name<<DELIM\\nvalue\\nDELIM\\n` for each output, each with its own fresh delimiter."""
    chunks = []
    for name, value in outputs.items():
        _check_output_name(name)
        delimiter = choose_delimiter(name, value)
        chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(chunks)


def write_outputs(path: str | Path, outputs: Mapping[str, str]) -> None:
    """Append outputs to `$GITHUB_OUTPUT` in the heredoc form, which any value survives.

    The file is shared by everything in the step; if what came before us does not
    end with a newline, one is added so our first line is not glued onto theirs.
    """
    target = _appendable(Path(path))
    text = format_outputs(outputs)
    if _ends_without_newline(target):
        text = "\n" + text
    with target.open("a", encoding="utf-8", newline="") as handle:
        handle.write(text)


# --------------------------------------------------------------------------- reporters


@dataclass(frozen=True)
class Annotations:
    """Workflow-command annotations on the step's log, the most severe first."""

    stream: TextIO
    report_path: str  # where the notice about annotations left out points
    name: str = "the annotations"

    @property
    def place(self) -> str:
        return getattr(self.stream, "name", "the log")

    def publish(self, report: Report) -> None:
        """Print one workflow command per annotation shown."""
        for line in annotation_commands(report, report_path=self.report_path):
            self.stream.write(line + "\n")


@dataclass(frozen=True)
class RunnerFile:
    """A file command of the runner's: appended to, shared with the rest of the step."""

    path: Path
    report_path: str  # where the JSON report is, as what we append names it

    @property
    def place(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class JobSummary(RunnerFile):
    """The Markdown summary appended to `$GITHUB_STEP_SUMMARY`."""

    name: str = "the job summary"

    def publish(self, report: Report) -> None:
        """Append the summary; a file with no room left skips it (`ReporterSkipped`)."""
        if not write_step_summary(report, self.path, report_path=self.report_path):
            raise ReporterSkipped(
                f"the job summary is full (1 MiB); see the JSON report ({self.report_path})"
            )


@dataclass(frozen=True)
class StepOutputs(RunnerFile):
    """The step outputs (`verdict`, `errors`...) appended to `$GITHUB_OUTPUT`."""

    name: str = "the step outputs"

    def publish(self, report: Report) -> None:
        """Append the outputs a later step branches on."""
        write_outputs(self.path, action_outputs(report, self.report_path))


def runner_reporters(report_path: str, env: Mapping[str, str]) -> list[JobSummary | StepOutputs]:
    """The job summary and step outputs, each where the runner asks for it (none outside CI)."""
    reporters: list[JobSummary | StepOutputs] = []
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        reporters.append(JobSummary(Path(summary_path), report_path))
    output_path = env.get("GITHUB_OUTPUT")
    if output_path:
        reporters.append(StepOutputs(Path(output_path), report_path))
    return reporters


__all__ = [
    "ANNOTATIONS_PER_SEVERITY",
    "MESSAGE_LIMIT",
    "SUMMARY_LIMIT_BYTES",
    "Annotations",
    "JobSummary",
    "RunnerFile",
    "StepOutputs",
    "action_outputs",
    "annotation_command",
    "annotation_commands",
    "annotation_message",
    "annotation_title",
    "choose_delimiter",
    "choose_stop_token",
    "escape_data",
    "escape_property",
    "format_outputs",
    "plain_line",
    "plain_lines",
    "runner_reporters",
    "stop_commands",
    "workflow_command",
    "write_outputs",
    "write_step_summary",
]

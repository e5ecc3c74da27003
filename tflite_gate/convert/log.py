"""The converter's log: where it goes, and what in it a user should see.

TensorFlow's converter logs through C++ (absl) straight to file descriptor 2, not
through Python logging, so the worker points the descriptor at a file while it
converts (`output_to`). What the file holds is mostly noise; `interesting_log_lines`
keeps the messages about Flex, custom and resource ops and float fallbacks, and
`split_converter_message` separates what failed from the converter's advice.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

_ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ (?P<where>[\w./-]+:\d+)\] ")
_NOISE = (
    "Ignored output_format",
    "Ignored drop_control_dependency",
    "cpu_feature_guard",
    "absl::InitializeLog",
    "To enable the following instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
    "failed call to cuInit",
    "Could not find cuda drivers",
    "oneDNN custom operations are on",
    "Unable to register cu",
    "Skipping runtime version metadata in the model",
)
_SIGNAL = re.compile(
    r"flex|select tf|custom op|resource|fall(s|ing)? ?back|not quantized|quantiz\w* (is )?"
    r"(skipped|failed|not supported)|unsupported|not supported|will not be|won't be",
    re.IGNORECASE,
)


_STANDALONE = re.compile(r"^(\S+\.py:\d+: \w*Warning|WARNING:|Traceback|Saved artifact)")


def _records(text: str) -> list[tuple[str, str]]:
    """Group the log into (level, message) records.

    A C++ log message may span lines ("...Select TFop(s):\nFlex ops: FlexFoo\nDetails:");
    lines after an absl-prefixed line belong to it unless they start something else
    (a Python warning, a traceback).
    """
    records: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _ABSL_PREFIX.match(line)
        if match:
            records.append((line[0], f"{match['where']}: {line[match.end() :]}"))
        elif records and records[-1][0] and not _STANDALONE.match(line):
            level, message = records[-1]
            records[-1] = (level, f"{message}\n{line}")
        else:
            records.append(("", line))
    return records


def interesting_log_lines(text: str) -> list[str]:
    """Converter messages worth a user's look: Flex/custom/resource ops, float fallbacks."""
    kept: list[str] = []
    for level, message in _records(text):
        message = message.rstrip()
        if not message or any(noise in message for noise in _NOISE):
            continue
        if (level in {"W", "E"} or _SIGNAL.search(message)) and message not in kept:
            kept.append(message)
    return kept


@contextlib.contextmanager
def output_to(path: Path, descriptors: tuple[int, ...] = (2,)) -> Iterator[None]:
    """`descriptors` (stderr by default: the converter's C++ log) into `path`, then back.

    The descriptors themselves are redirected, not `sys.stderr`: C++ code writes to
    them directly and would bypass a Python stream.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in descriptors]
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd in descriptors:
        os.dup2(target, fd)
    os.close(target)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip(descriptors, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


# Where a converter message turns from what failed to what to try.
_ADVICE_START = re.compile(
    r"\b(?:please consider|consider|try|you (?:can|may|should|need)|see instructions"
    r"|for example)\b",
    re.IGNORECASE,
)
_MAX_ADVICE_LINES = 8
# MLIR's own dump of the failing operation and the error code: not advice for a user
# (the op and the code are reported in their own fields).
_NOT_ADVICE = re.compile(r"^(see current operation:|Error code:)", re.IGNORECASE)


def split_converter_message(text: str) -> tuple[str, list[str]]:
    """A converter error message as (what failed, the converter's advice lines).

    The converter packs its advice behind the first sentence ("Lowering tensor list
    ops is failed. Please consider using Select TF ops ...") and separates lines with
    real or escaped newlines; keeping only the first line loses what to do.
    """
    lines = [line.strip() for line in text.replace("\\n", "\n").splitlines() if line.strip()]
    if not lines:
        return "", []
    first, rest = lines[0], lines[1:]
    start = _ADVICE_START.search(first)
    if start is not None and start.start() > 0:
        rest = [first[start.start() :].strip(), *rest]
        first = first[: start.start()].strip()
    advice = [line for line in rest if not _NOT_ADVICE.match(line)]
    return first, advice[:_MAX_ADVICE_LINES]

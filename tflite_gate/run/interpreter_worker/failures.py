"""What went wrong in the worker, in the runtime's own words, as a result the gate reads.

A Python-level failure is a result (`ok: false`) with the phase and sample it
happened in and a kind: failures that are not a runtime bug (a missing Flex
delegate, an unregistered custom op, a runtime that does not import) get kinds of
their own, so the parent can say why without a reproducer.
"""

from __future__ import annotations

import re

from .messages import InterpreterResult

ERROR_LINES = 20
FLEX_MARKERS = ("Select TensorFlow op", "Flex")
# "Encountered unresolved custom op: GateAddOne." (LiteRT, tflite-runtime, TF's interpreter)
UNRESOLVED_CUSTOM_OP = re.compile(r"Encountered unresolved custom op: (.+?)\.(?=\s|$)")


class PhaseError(Exception):
    """A failure the worker reports as a result (not a crash): phase, sample and message."""

    def __init__(self, phase: str, sample: int | None, message: str, kind: str = "error"):
        super().__init__(message)
        self.phase, self.sample, self.message, self.kind = phase, sample, message, kind


def error_message(exc: BaseException) -> str:
    """The runtime's own words, cut to `ERROR_LINES` lines (some messages run long)."""
    text = str(exc).strip()
    half = len(text) // 2
    if text and text[:half] == text[half:]:  # tflite-runtime 2.14 repeats some messages
        text = text[:half]
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:ERROR_LINES]) or type(exc).__name__


def exception_line(exc: BaseException) -> str:
    """`ModuleNotFoundError: No module named 'numpy'`: the type and the last line say it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return type(exc).__name__ + (": " + lines[-1] if lines else "")


def failure_kind(message: str) -> str:
    """Failures that are not a runtime bug get their own kind, so the parent can say why.

    Select TF ops need the Flex delegate, which most Python interpreters do not link;
    a custom op needs a kernel registered by the application (or the policy).
    """
    if UNRESOLVED_CUSTOM_OP.search(message):
        return "unresolved-custom-op"
    return "unsupported-flex" if any(m in message for m in FLEX_MARKERS) else "error"


def unresolved_custom_ops(message: str) -> list[str]:
    """The custom ops the runtime names as unresolved, in order, each once."""
    names: list[str] = []
    for name in UNRESOLVED_CUSTOM_OP.findall(message):
        if name not in names:
            names.append(name)
    return names


def failure(phase: str, sample: int | None, message: str, kind: str) -> InterpreterResult:
    """The result that says where the run stopped and why."""
    return InterpreterResult(
        ok=False,
        phase=phase,
        sample=sample,
        error=message,
        kind=kind,
        unresolved_custom_ops=(
            unresolved_custom_ops(message) if kind == "unresolved-custom-op" else []
        ),
    )

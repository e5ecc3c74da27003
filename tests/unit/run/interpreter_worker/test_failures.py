"""What went wrong in the worker: the runtime's own words, cut short, with a kind the
gate can explain without a reproducer."""

from __future__ import annotations

import pytest

from tflite_gate.run.interpreter_worker.failures import (
    ERROR_LINES,
    PhaseError,
    error_message,
    exception_line,
    failure,
    failure_kind,
    unresolved_custom_ops,
)


def test_a_message_repeated_whole_is_said_once_and_long_ones_are_cut() -> None:
    assert error_message(RuntimeError("Registration failed.Registration failed.")) == (
        "Registration failed."
    )
    long = "\n".join(f"line {i}" for i in range(ERROR_LINES + 5))
    assert len(error_message(RuntimeError(long)).splitlines()) == ERROR_LINES
    assert error_message(RuntimeError("")) == "RuntimeError"


def test_an_error_message_drops_blank_lines_and_trailing_spaces() -> None:
    assert error_message(ValueError("\n first  \n\n   \n second\t\n")) == "first\n second"


def test_an_exception_line_is_its_type_and_last_line() -> None:
    error = ModuleNotFoundError("Traceback ...\nNo module named 'numpy'")
    assert exception_line(error) == "ModuleNotFoundError: No module named 'numpy'"


def test_an_exception_without_words_is_its_type_alone() -> None:
    assert exception_line(ImportError("  \n")) == "ImportError"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Encountered unresolved custom op: GateAddOne.\nNode number 0 failed", "unresolved-custom-op"),
        ("Select TensorFlow op(s), included in the given model, is(are) not supported", "unsupported-flex"),
        ("Regular TensorFlow ops are not supported by this interpreter. Make sure you apply/link the Flex delegate", "unsupported-flex"),
        ("tensorflow/lite/kernels/reshape.cc:92 num_input_elements != num_output_elements", "error"),
    ],
)  # fmt: skip
def test_failures_that_are_no_runtime_bug_get_kinds_of_their_own(message: str, kind: str) -> None:
    assert failure_kind(message) == kind


def test_a_failure_names_each_unresolved_custom_op_once() -> None:
    message = (
        "Encountered unresolved custom op: B.\nEncountered unresolved custom op: A.\n"
        "Encountered unresolved custom op: B.\n"
    )
    result = failure("allocate", None, message, failure_kind(message))
    assert (result.ok, result.phase, result.kind) == (False, "allocate", "unresolved-custom-op")
    assert result.unresolved_custom_ops == ["B", "A"]
    assert failure("invoke", 3, message, "error").unresolved_custom_ops == []


def test_a_custom_op_name_with_dots_is_kept_whole_up_to_its_closing_period() -> None:
    """The name ends at the period the runtime puts after it, not at a dot inside it."""
    message = (
        "Encountered unresolved custom op: gate.AddOne.\nEncountered unresolved custom op: Erf."
    )
    assert unresolved_custom_ops(message) == ["gate.AddOne", "Erf"]


def test_a_failure_says_where_the_run_stopped_and_in_whose_words() -> None:
    result = failure("invoke", 7, "boom: the runtime said no", "error")
    assert (result.ok, result.phase, result.sample) == (False, "invoke", 7)
    assert (result.error, result.kind) == ("boom: the runtime said no", "error")
    assert (result.samples, result.outputs) == (0, [])


def test_a_phase_error_carries_its_phase_sample_message_and_kind() -> None:
    error = PhaseError("load", 2, "no data for model input(s) ['x']")
    assert (error.phase, error.sample, error.kind) == ("load", 2, "error")
    assert str(error) == error.message == "no data for model input(s) ['x']"
    assert PhaseError("import", None, "no runtime", "import").kind == "import"

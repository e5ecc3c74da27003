"""A file the gate needed could not be read or written: the finding names the disk or
the permissions (not the model, not a bug), the file as the user knows it, and how to
put that directory elsewhere."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.support.check_facts import resolved_model
from tflite_gate.judge import checks
from tflite_gate.policy.resolve import ModelConfig


@pytest.fixture
def config(tmp_path: Path) -> ModelConfig:
    return resolved_model(tmp_path, "version: 1\nmodels:\n  - {name: m, source: m.keras}\n")


@pytest.mark.parametrize(
    ("number", "fix"),
    [
        (errno.ENOSPC, "free disk space"),
        (errno.EDQUOT, "free disk space"),
        (errno.EFBIG, "free disk space"),
        (errno.EROFS, "make it writable (and readable) for the user running the gate"),
        (errno.EACCES, "make it writable (and readable) for the user running the gate"),
        (errno.EPERM, "make it writable (and readable) for the user running the gate"),
        (errno.EIO, "check the file system"),
    ],
)
def test_the_fix_follows_the_errno(config: ModelConfig, number: int, fix: str) -> None:
    error = OSError(number, "it failed")
    [finding] = checks.check_environment_error(
        config, error, place="artifacts/m.tflite", elsewhere="give --artifacts another directory"
    )
    assert finding.rule == "environment-error"
    assert finding.message == (
        f"{fix}, or give --artifacts another directory: m: artifacts/m.tflite: it failed"
    )
    assert finding.errno == errno.errorcode[number]
    assert finding.details == {"path": "artifacts/m.tflite"}
    assert finding.error == str(error)


def test_a_variants_file_names_the_variant_and_keeps_the_original_error_text(
    config: ModelConfig,
) -> None:
    error = PermissionError(errno.EACCES, "Permission denied")
    [finding] = checks.check_environment_error(
        config,
        error,
        place="the conversion cache",
        elsewhere="",
        variant="int8",
        error_text="Traceback ... PermissionError",
    )
    assert finding.message == (
        "make it writable (and readable) for the user running the gate: m/int8: the "
        "conversion cache: Permission denied"
    )
    assert (finding.variant, finding.error) == ("int8", "Traceback ... PermissionError")


def test_an_error_without_errno_or_reason_is_named_by_its_type(config: ModelConfig) -> None:
    [finding] = checks.check_environment_error(
        config, IsADirectoryError(), place="report.json", elsewhere=""
    )
    assert finding.message == "check the file system: m: report.json: IsADirectoryError"
    assert finding.errno is None


def test_full_or_read_only_errnos_are_the_disks_fault() -> None:
    assert {errno.ENOSPC, errno.EDQUOT, errno.EROFS} == checks.FULL_OR_READ_ONLY

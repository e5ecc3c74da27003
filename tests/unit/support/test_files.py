"""`failure_errno`: the errno of a failure as the system gave it, never parsed from text."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from tflite_gate.support.files import failure_errno


def test_an_oserror_gives_its_own_errno(tmp_path: Path) -> None:
    assert failure_errno(OSError(errno.ENOSPC, "full"), tmp_path) == errno.ENOSPC


def test_the_errno_of_the_oserror_a_failure_was_raised_from(tmp_path: Path) -> None:
    try:
        try:
            raise OSError(errno.EROFS, "read-only")
        except OSError as cause:
            raise RuntimeError("saving the model failed") from cause
    except RuntimeError as error:
        assert failure_errno(error, tmp_path) == errno.EROFS


def test_text_that_names_a_full_disk_is_no_errno(tmp_path: Path) -> None:
    error = ValueError(f"[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}")
    assert failure_errno(error, tmp_path) is None

"""A file the gate needed could not be read or written: the disk or permissions,
not the model and not a bug.
"""

from __future__ import annotations

import errno
import os

from tflite_gate.findings import Finding
from tflite_gate.policy.load import ModelConfig
from tflite_gate.rules import make_finding

_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


_NO_ACCESS = {errno.EROFS, errno.EACCES, errno.EPERM}


def environment_errno(text: str) -> int | None:
    """The errno of a full or read-only disk named in an error's text, else None.

    TensorFlow reports a failed write of its own as `ResourceExhaustedError: ... No
    space left on device`, not as an OSError; its C++ uses the same strerror text.
    """
    for number in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        if os.strerror(number) in text:
            return number
    return None


def check_environment_error(
    config: ModelConfig,
    error: OSError,
    *,
    place: str,
    elsewhere: str,
    variant: str | None = None,
    error_text: str | None = None,
) -> list[Finding]:
    """A file the gate needed could not be read or written: the disk or permissions, not a bug.

    `place` names the file as the user knows it (workspace-relative, or which
    directory); `elsewhere` says how to move that directory ("give --artifacts ...").
    """
    if error.errno in _NO_ROOM:
        fix = "free disk space"
    elif error.errno in _NO_ACCESS:
        fix = "make it writable (and readable) for the user running the gate"
    else:
        fix = "check the file system"
    reason = error.strerror or type(error).__name__
    owner = f"{config.name}/{variant}" if variant else config.name
    return [
        make_finding(
            "environment-error",
            f"{fix}{f', or {elsewhere}' if elsewhere else ''}: {owner}: {place}: {reason}",
            model=config.name,
            variant=variant,
            details={
                "errno": errno.errorcode.get(error.errno or 0),
                "path": place,
                "error": error_text or str(error),
            },
        )
    ]

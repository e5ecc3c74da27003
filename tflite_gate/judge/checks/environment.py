"""A file the gate needed could not be read or written: the disk or permissions,
not the model and not a bug.
"""

from __future__ import annotations

import errno

from tflite_gate.findings import Finding
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.rules import make_finding

_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


_NO_ACCESS = {errno.EROFS, errno.EACCES, errno.EPERM}


FULL_OR_READ_ONLY = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
"""Errnos of a failed load that are the disk's fault, not the model's."""


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
            details={"path": place},
            errno=errno.errorcode.get(error.errno or 0),
            error=error_text or str(error),
        )
    ]

"""Opening files from the workspace in the gate process itself, refusing special files.

The gate process has no timeout around it: a FIFO named as the policy or a model
blocks `open()` forever, and a device such as /dev/zero never ends a read. Every
workspace file the gate process opens is checked by type first (and opened
non-blocking, so a file swapped for a FIFO after the check cannot block either).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# A .tflite is a flatbuffer, whose 32-bit offsets cannot address more than 2 GiB.
MAX_TFLITE_BYTES = 2 * 1024**3
TFLITE_LIMIT_REASON = "2 GiB, the most a .tflite flatbuffer can address"


class SpecialFileError(OSError):
    """A workspace path that is not a regular file, or larger than its kind of file can be."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _kind(mode: int) -> str:
    kinds = [
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _refuse(mode: int, name: str, expected: str) -> None:
    raise SpecialFileError(
        f"{name} is {_kind(mode)}; replace it with {expected} (the gate reads only "
        "regular files, because reading a pipe or a device may never end)"
    )


def require_regular_file(path: Path) -> None:
    """Raise SpecialFileError unless `path` (links followed) is a regular file.

    FileNotFoundError passes through, so callers keep their own "not found" message.
    """
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        _refuse(mode, path.name, "a regular file")


def refuse_special_files(path: Path) -> None:
    """Raise SpecialFileError if `path`, or a file in it (a SavedModel directory), is not regular.

    The converter reads these in a worker, but a FIFO blocks that worker until its
    timeout and costs the next model in the same worker its verdict: they are refused
    by type in the gate process, which opens none of them.
    """
    if not path.is_dir():
        require_regular_file(path)
        return
    for root, _directories, files in os.walk(path):  # links to directories are not followed
        for name in sorted(files):
            entry = Path(root, name)
            try:
                mode = entry.stat().st_mode
            except FileNotFoundError:  # a dangling link: the loader says what is missing
                continue
            if not stat.S_ISREG(mode):
                _refuse(mode, entry.relative_to(path.parent).as_posix(), "a regular file")


def read_regular_bytes(path: Path, *, limit: int, limit_reason: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; SpecialFileError otherwise.

    `limit_reason` says why no such file is larger, for the message.
    """
    require_regular_file(path)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as stream:
        status = os.fstat(stream.fileno())
        if not stat.S_ISREG(status.st_mode):
            _refuse(status.st_mode, path.name, "a regular file")
        if status.st_size > limit:
            raise SpecialFileError(
                f"check that {path.name} is the file you meant: it has {status.st_size} "
                f"bytes, more than {limit} ({limit_reason})"
            )
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise SpecialFileError(f"{path.name} grew past {limit} bytes while being read")
    return data


def read_tflite(path: Path) -> bytes:
    """A `.tflite` from the workspace, refused unread when no flatbuffer can be that large."""
    return read_regular_bytes(path, limit=MAX_TFLITE_BYTES, limit_reason=TFLITE_LIMIT_REASON)


def unreadable_message(error: OSError) -> str:
    """What to do about a workspace file the gate could not read, leading with the fix."""
    if isinstance(error, SpecialFileError):
        return error.message
    reason = error.strerror or type(error).__name__
    if isinstance(error, PermissionError):
        return f"make it readable for the user running the gate ({reason})"
    return f"check the file and the disk it is on: it could not be read ({reason})"

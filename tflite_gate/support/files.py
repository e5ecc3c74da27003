"""Writing files so that no reader ever sees half of one, and no failure leaves a stub.

Reports, converted models and reproducers are read by later CI steps and by people.
A cancelled job or a full disk must leave the old file or none: never a 0-byte or
truncated `.tflite` that a later step uploads as if it were the model.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit
PSEUDO_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


def link_chain(path: Path) -> list[Path]:
    """Every place a chain of symbolic links passes through: `path` first, where it ends last.

    `/dev/stdout` → `/proc/self/fd/1` → the terminal or the shell's redirect: each hop
    matters, because a hop through `/proc` or `/dev` means the end is not a file the
    user named, whatever it resolves to.
    """
    hops = [path.absolute()]
    while hops[-1].is_symlink() and len(hops) <= _MAX_LINK_HOPS:
        try:
            target = hops[-1].readlink()
        except OSError:
            break
        hops.append(Path(os.path.normpath(hops[-1].parent / target)))
    return hops


def in_pseudo_file_system(path: Path) -> bool:
    """Under /proc, /sys or /dev: kernel objects, never a report file."""
    return any(path.is_relative_to(root) for root in PSEUDO_FILE_SYSTEMS)


def written_through(path: Path) -> Path:
    """Where writing `path` lands: `path`, or the regular file a link at `path` leads to.

    A link is never replaced by the file written (a rename over it would): the write
    goes to its end, which must be a regular file, or none yet, outside /proc, /sys
    and /dev. Anything else is an OSError naming the link.
    """
    if not path.is_symlink():
        return path
    hops = link_chain(path)
    end = Path(os.path.realpath(path))
    through_kernel = any(in_pseudo_file_system(hop) for hop in [*hops, end])
    if through_kernel or len(hops) > _MAX_LINK_HOPS or (end.exists() and not end.is_file()):
        raise OSError(errno.EINVAL, "a link that does not lead to a regular file", str(path))
    return end


@contextmanager
def _replacing(path: Path, mode: str) -> Iterator[IO[Any]]:
    """A temporary file beside `path` that replaces it when the block ends without error.

    `mkstemp` creates files readable only by their owner; in the Docker action the gate
    runs as root and a later step (upload-sarif, a test reporter) may run as another
    user, so the file is made world-readable like one created with `open`. A link at
    `path` stays a link: the file it leads to is replaced (`written_through`).
    """
    path = written_through(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(handle, mode, encoding=encoding) as stream:
            yield stream
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        _name_the_file(error, path)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically (a cancelled job leaves the old file or none)."""
    with _replacing(path, "w") as stream:
        stream.write(text)


def copy_file_atomic(source: Path, target: Path) -> None:
    """Copy `source` to `target` atomically: on any failure `target` is as it was."""
    with open(source, "rb") as reader, _replacing(target, "wb") as writer:
        shutil.copyfileobj(reader, writer)


def write_directory_atomic(target: Path, fill: Callable[[Path], None]) -> None:
    """Let `fill` write a directory's files, then put it at `target` in one rename.

    On any failure nothing of it is left; an older `target` is replaced only once the
    new one is complete.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        fill(partial)
        partial.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        partial.replace(target)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        _name_the_file(error, target)
        raise


def _name_the_file(error: BaseException, path: Path) -> None:
    """A failed write (ENOSPC) carries no file name; the user needs to know which file."""
    if isinstance(error, OSError) and error.filename is None:
        error.filename = str(path)


_NEARLY_FULL_BYTES = 1 << 20


def failure_errno(error: BaseException, scratch: Path) -> int | None:
    """The errno behind a failure, as the number the system gave, never read from text.

    An OSError (or one the error was raised from) carries its own. TensorFlow's failed
    writes raise its own errors, whose C++ status kept only the strerror text: for
    those, the disk of `scratch` (where the worker wrote) says if it is full or read-only.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError) and cause.errno is not None:
            return cause.errno
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if type(error).__module__.startswith("tensorflow"):
        return disk_problem(scratch)
    return None


def disk_problem(directory: Path) -> int | None:
    """ENOSPC when `directory`'s file system is (nearly) full, EROFS when read-only, else None.

    A failed `write()` names no file, and a worker that died writing its own log
    leaves nothing to read: the disk itself says which one it was.
    """
    try:
        stats = os.statvfs(directory)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return errno.EROFS
    return errno.ENOSPC if stats.f_bavail * stats.f_frsize < _NEARLY_FULL_BYTES else None

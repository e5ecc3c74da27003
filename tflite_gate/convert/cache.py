"""Reuse a conversion when nothing that could change it has changed.

A conversion worker's results (the load result, each variant's `.tflite` and
diagnostics, evaluation inputs and reference outputs) are kept under
`CACHE_DIR/conversions/KEY/ENTRY/`. KEY hashes everything known before the run:
the request's options, the bytes of the source model and of the data files, the
gate's own code, the versions of TensorFlow, Keras and numpy, the machine, and (when
workspace code runs) every model or weight file in the workspace, because a factory
may read one through a C library the worker cannot see. ENTRY hashes what the
worker reported reading: the workspace modules it imported and the files it opened.
A lookup is a hit only when both still hash the same.

Entries are immutable: written in a hidden directory and renamed into place, so a
reader sees a whole entry or none; every file's hash is checked as it is copied out,
so a truncated or edited entry is a miss, never a result. Two gates storing the same
entry race harmlessly (the second rename fails and its copy is dropped). Least
recently used entries are evicted beyond a size bound.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tflite_gate import __version__
from tflite_gate.convert.parent import ConversionResult
from tflite_gate.convert.scratch import DEPENDENCIES_FILE, RESULT_FILE
from tflite_gate.report.model import CacheStatus, CacheUse
from tflite_gate.run.protocol import ConversionRequest, Dependencies, read_message
from tflite_gate.support.run_options import DEFAULT_CACHE_MAX_MB

CACHE_FORMAT = 1
# Partial entries older than this were left by a gate that was killed while storing.
_ABANDONED_S = 3600
_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "tf-keras", "numpy", "h5py", "ml-dtypes")
# What a finished conversion worker leaves that a later run needs (logs and the
# intermediate SavedModel are not kept).
_KEPT = re.compile(f"{RESULT_FILE.pattern}|^{re.escape(DEPENDENCIES_FILE)}$")
# Files a model factory may read through a C library (h5py, TensorFlow's file API),
# which the worker's audit hook cannot see.
_MODEL_FILE = re.compile(
    r"\.(h5|hdf5|keras|pb|pbtxt|index|npz|npy|ckpt|tflite|onnx|safetensors|bin|pt|pth|pkl"
    r"|weights)$|\.data-\d{5}-of-\d{5}$",
    re.IGNORECASE,
)
_PRUNED_DIRECTORIES = {"__pycache__", "node_modules", "site-packages", "dist-packages"}
_CHUNK = 1 << 20
# Variables that change what a worker imports (PYTHONPATH, a sitecustomize there) or how
# TensorFlow and Keras compute.
_ENVIRONMENT = ("TF_", "PYTHON", "KERAS")


class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    size: int


class Manifest(BaseModel):
    """An entry's own description; read back at every lookup, so it is validated."""

    model_config = ConfigDict(extra="forbid")
    format: int
    key: str
    created_at: str
    duration_s: float
    gate_version: str
    files: dict[str, _Stored]
    dependencies: dict[str, str]


@dataclass(frozen=True)
class Hit:
    """A reused conversion: its files are in the scratch directory, as the worker left them."""

    created_at: str
    duration_s: float
    entry: Path


@dataclass(frozen=True)
class ConversionCache:
    """Where conversions are kept (`CACHE_DIR/conversions`) and how much may be kept."""

    directory: Path
    max_bytes: int = DEFAULT_CACHE_MAX_MB << 20

    @classmethod
    def under(cls, cache_dir: Path, max_mb: int = DEFAULT_CACHE_MAX_MB) -> ConversionCache:
        return cls(cache_dir / "conversions", max_mb << 20)

    def restore(self, key: str, request: ConversionRequest) -> Hit | None:
        """Copy a valid entry for `key` into the request's scratch; None on a miss.

        Any problem reading the cache (a corrupt entry, one evicted while being read, an
        unreadable directory) is a miss: the conversion runs as if nothing was cached.
        """
        scratch = Path(request.scratch)
        for entry in self._entries(key):
            manifest = _manifest(entry)
            if manifest is None or manifest.key != key:
                _remove(entry)
                continue
            if not _unchanged(manifest.dependencies, Path(request.workspace)):
                continue
            try:
                intact = _copy_verified(entry, manifest, scratch)
            except OSError:
                intact = False
            if not intact:  # damaged, or evicted under us: either way not worth keeping
                _remove(entry)
                continue
            with contextlib.suppress(OSError):
                os.utime(entry / "manifest.json")  # last use, for eviction
            return Hit(manifest.created_at, manifest.duration_s, entry)
        return None

    def keep(self, key: str, request: ConversionRequest, result: ConversionResult) -> CacheUse:
        """Store a conversion a later run may reuse as its own; say why one is not stored.

        A failure that may come from outside the key (a crash, a timeout, a missing
        package, a factory or data that raised) is converted again next time.
        """
        reason = None
        if not result.complete:
            reason = "the conversion worker did not finish on its own"
        elif not result.load.ok:
            reason = "the model did not load"
        elif result.evaluation is not None and not result.evaluation.ok:
            reason = "the evaluation data or reference outputs failed"
        elif any(variant.data_error for variant in result.variants.values()):
            reason = "the calibration data failed"
        else:
            written = self.store(key, request, result.duration_s)
            reason = f"the cache could not be written: {written}" if written else None
        status: CacheStatus = "stored" if reason is None else "not-stored"
        return CacheUse(status=status, key=key[:16], reason=reason)

    def store(self, key: str, request: ConversionRequest, duration_s: float) -> str | None:
        """Keep what the worker left in scratch under `key`; why not, or None when stored.

        A full or read-only cache directory costs the next run its reuse, not this run
        its verdict: the reason is returned for the report.
        """
        scratch = Path(request.scratch)
        try:
            dependencies = _dependencies(scratch, Path(request.workspace))
            if dependencies is None:
                return f"{DEPENDENCIES_FILE} is missing or not valid"
            target = self.directory / key / _digest_of(dependencies)[:20]
            if target.exists():
                return None
            try:
                self._write_entry(target, key, scratch, dependencies, duration_s)
            except OSError:
                with contextlib.suppress(OSError):
                    target.parent.rmdir()  # a key folder with no entry is not a cache entry
                raise
            self._evict(keep=target)
        except OSError as error:
            return f"{error.strerror or error}" + (f" ({error.filename})" if error.filename else "")
        return None

    def _entries(self, key: str) -> list[Path]:
        try:
            found = [p for p in (self.directory / key).iterdir() if not p.name.startswith(".")]
        except OSError:
            return []
        return sorted(found, key=_last_used, reverse=True)

    def _write_entry(
        self,
        target: Path,
        key: str,
        scratch: Path,
        dependencies: dict[str, str],
        duration_s: float,
    ) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.directory))
        try:
            files = {}
            for path in sorted(scratch.iterdir()):
                if _KEPT.match(path.name) and path.is_file():
                    files[path.name] = _copy_hashed(path, partial / path.name)
            manifest = Manifest(
                format=CACHE_FORMAT,
                key=key,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                duration_s=round(duration_s, 3),
                gate_version=__version__,
                files=files,
                dependencies=dependencies,
            )
            (partial / "manifest.json").write_text(manifest.model_dump_json(indent=1))
            partial.chmod(0o755)
            try:
                partial.rename(target)
            except OSError:
                if not target.exists():
                    raise
                # another gate stored the same entry first: theirs is as good as ours
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def _evict(self, keep: Path) -> None:
        """Drop least recently used entries until the cache fits its bound."""
        entries: list[tuple[float, int, Path]] = []
        for key_directory in _subdirectories(self.directory):
            if key_directory.name.startswith(".partial-"):
                if time.time() - _last_used(key_directory) > _ABANDONED_S:
                    _remove(key_directory)
                continue
            for entry in _subdirectories(key_directory):
                entries.append((_last_used(entry), _size(entry), entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries):
            if total <= self.max_bytes:
                break
            if entry != keep:
                _remove(entry)
                total -= size
                with contextlib.suppress(OSError):
                    entry.parent.rmdir()  # its key has no entry left


# --------------------------------------------------------------------------- the key


def conversion_key(request: ConversionRequest, excluded: Sequence[Path] = ()) -> str:
    """The hash of everything known before the run that could change its results.

    `excluded`: directories the gate itself writes (the cache, the artifacts), whose
    files are never inputs.
    """
    return _digest_of(key_material(request, excluded))


def key_material(request: ConversionRequest, excluded: Sequence[Path] = ()) -> dict[str, Any]:
    """What `conversion_key` hashes, as readable data (tests and debugging read it)."""
    workspace = Path(request.workspace)
    options = request.model_dump(mode="json", exclude={"scratch", "skip"})
    content: dict[str, Any] = {}
    if request.source_path:
        content["source"] = path_digest(Path(request.source_path))
    for role in ("calibration", "evaluation"):
        spec = getattr(request, role)
        if spec and spec.path:
            content[role] = path_digest(Path(spec.path))
    if _runs_workspace_code(request):
        content["model files"] = workspace_model_files(workspace, excluded)
    return {
        "format": CACHE_FORMAT,
        "gate": gate_fingerprint(),
        "packages": {name: _version(name) for name in _PACKAGES},
        "python": sys.version,
        "machine": [platform.system(), platform.machine(), _cpu_model()],
        "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith(_ENVIRONMENT)},
        "prefix": sys.prefix,
        "request": options,
        "content": content,
    }


def _runs_workspace_code(request: ConversionRequest) -> bool:
    data = [request.calibration, request.evaluation]
    return request.source_kind == "factory" or any(d and d.kind == "generator" for d in data)


@functools.cache
def gate_fingerprint() -> str:
    """The gate's own code: a conversion by other code is not this gate's conversion."""
    package = Path(__file__).resolve().parent.parent
    return _digest_of({p.relative_to(package).as_posix(): _file_digest(p) for p in _code(package)})


def _code(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def _cpu_model() -> str:
    """Kernels (oneDNN, XNNPACK) pick code paths by CPU: reference outputs may differ."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor()


def path_digest(path: Path) -> str:
    """A file's or a directory tree's content hash; what is neither is named, not read."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        return f"unreadable: {error.strerror}"
    if stat.S_ISDIR(mode):
        return _digest_of({name: path_digest(path / name) for name in _tree(path)})
    if stat.S_ISREG(mode):
        try:
            return _file_digest(path)
        except OSError as error:
            return f"unreadable: {error.strerror}"
    return f"not a regular file (mode {stat.S_IFMT(mode):o})"


def _tree(directory: Path) -> list[str]:
    found = []
    for root, directories, files in os.walk(directory):
        directories.sort()
        found += [Path(root, name).relative_to(directory).as_posix() for name in files]
    return sorted(found)


def workspace_model_files(workspace: Path, excluded: Sequence[Path] = ()) -> dict[str, str]:
    """Every model or weight file in the workspace, by relative path, with its hash.

    Hidden directories, virtual environments, installed packages and the `excluded`
    directories are skipped: they are not the repository's models.
    """
    root = workspace.resolve()
    skipped = {path.resolve() for path in excluded}
    found: dict[str, str] = {}
    for directory, directories, files in os.walk(root):
        directories[:] = sorted(
            d
            for d in directories
            if not d.startswith(".")
            and d not in _PRUNED_DIRECTORIES
            and not (Path(directory, d) / "pyvenv.cfg").exists()
            and Path(directory, d) not in skipped
        )
        for name in sorted(files):
            if _MODEL_FILE.search(name):
                path = Path(directory, name)
                found[path.relative_to(root).as_posix()] = path_digest(path)
    return found


def _dependencies(scratch: Path, workspace: Path) -> dict[str, str] | None:
    """What the worker said it used: workspace files (hashed as they are now), packages."""
    listed = read_message(scratch / DEPENDENCIES_FILE, Dependencies)
    if listed is None:
        return None
    files = {f"file:{name}": path_digest(workspace / name) for name in listed.files}
    packages = {f"package:{name}": version for name, version in listed.packages.items()}
    return files | packages


def _unchanged(dependencies: dict[str, str], workspace: Path) -> bool:
    """Every file still hashes the same and every package has the same version."""
    for name, recorded in dependencies.items():
        kind, _, what = name.partition(":")
        now = path_digest(workspace / what) if kind == "file" else _version(what)
        if now != recorded:
            return False
    return True


# --------------------------------------------------------------------------- files


def _digest_of(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashed(source: Path, target: Path) -> _Stored:
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as reader, open(target, "wb") as writer:
        for chunk in iter(lambda: reader.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
            writer.write(chunk)
    return _Stored(sha256=digest.hexdigest(), size=size)


def _copy_verified(entry: Path, manifest: Manifest, scratch: Path) -> bool:
    """Copy an entry's files into scratch; False if any differs from what was stored.

    Whatever stops the copy, nothing of it is left in scratch: a worker would take a
    stray variant result there for its own and skip that variant.
    """
    copied: list[Path] = []
    intact = False
    try:
        for name, expected in manifest.files.items():
            copied.append(scratch / name)
            if _copy_hashed(entry / name, scratch / name) != expected:
                return False
        intact = True
        return True
    finally:
        if not intact:
            for path in copied:
                path.unlink(missing_ok=True)


def _manifest(entry: Path) -> Manifest | None:
    try:
        manifest = Manifest.model_validate_json((entry / "manifest.json").read_bytes())
    except (OSError, ValidationError, ValueError):
        return None
    unsafe = any(Path(name).name != name or not _KEPT.match(name) for name in manifest.files)
    unsafe |= not all(map(_plain_dependency, manifest.dependencies))
    return None if unsafe or manifest.format != CACHE_FORMAT else manifest


def _plain_dependency(name: str) -> bool:
    """`file:` a path inside the workspace, or `package:` a distribution name."""
    kind, _, what = name.partition(":")
    if kind == "package":
        return bool(what)
    path = Path(what)
    return kind == "file" and bool(what) and not path.is_absolute() and ".." not in path.parts


def _subdirectories(directory: Path) -> Iterator[Path]:
    try:
        yield from (p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return


def _last_used(entry: Path) -> float:
    try:
        return (entry / "manifest.json").stat().st_mtime
    except OSError:
        try:
            return entry.stat().st_mtime
        except OSError:
            return 0.0


def _size(entry: Path) -> int:
    try:
        return sum(p.stat().st_size for p in entry.iterdir())
    except OSError:
        return 0


def _remove(entry: Path) -> None:
    shutil.rmtree(entry, ignore_errors=True)

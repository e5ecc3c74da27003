"""Where a run writes: made and tried before the run, laid out so that nothing collides.

Scratch (one temporary directory per run, removed when it ends) is laid out by
index: no name from the policy reaches it, so a variant called `load.json` or
`reference` cannot land on a worker's own file. Artifacts (kept for upload and
debugging) are laid out by the names people read: model and variant names cannot
contain a path separator and are unique even on a case-insensitive disk (the
policy checks both); a converted model is `MODEL/VARIANT.tflite`, and everything
else of a model lives under a fixed directory name that no `*.tflite` file can
equal.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tflite_gate.support.lifetime import owned_scratch

GATE_DIRECTORY = ".tflite-gate"  # the gate's own directory in the workspace (artifacts, cache)
_GITIGNORE = "# Written by tflite-gate: converted models, reproducers, caches.\n*\n"
REPRODUCERS = "reproducers"  # MODEL/reproducers/VARIANT/RUNTIME/
REFERENCE_REPRODUCERS = "reference-reproducers"  # MODEL/reference-reproducers/RUNTIME/


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or "runtime"


def runtime_directories(names: list[str]) -> list[str]:
    """One directory name per runtime, readable and distinct (case-insensitively).

    `tflite-runtime==2.14.0` and `tflite-runtime>=2.14.0` slug alike; the second
    gets a numbered name instead of sharing the first one's reproducer.
    """
    taken: set[str] = set()
    directories = []
    for name in names:
        slug = candidate = _slug(name)
        number = 2
        while candidate.casefold() in taken:
            candidate, number = f"{slug}-{number}", number + 1
        taken.add(candidate.casefold())
        directories.append(candidate)
    return directories


@dataclass(frozen=True)
class ModelPlaces:
    """Every path one model's check writes to, in scratch and in artifacts."""

    scratch: Path
    artifacts: Path

    @classmethod
    def of(cls, scratch: Path, artifacts: Path, index: int, name: str) -> ModelPlaces:
        return cls(scratch=scratch / f"model-{index}", artifacts=artifacts / name)

    @property
    def conversion(self) -> Path:
        """The conversion worker's directory (requests, logs, variants, evaluation data)."""
        return self.scratch / "convert"

    @property
    def reference_conversion(self) -> Path:
        """The worker that computes a `.tflite` source's reference outputs in TensorFlow."""
        return self.scratch / "reference-convert"

    @property
    def data(self) -> Path:
        """The data worker of a `.tflite` source's generator."""
        return self.scratch / "data"

    def diagnosis(self, variant: int) -> Path:
        """A failing int8 variant's per-layer diagnosis and the keep_float trials."""
        return self.scratch / f"diagnose-{variant}"

    def run(self, variant: int | None, runtime: int) -> Path:
        """One interpreter run: one variant (None: the reference) on one runtime, by position."""
        return self.scratch / f"run-{'reference' if variant is None else variant}-{runtime}"

    def artifact(self, variant: str) -> Path:
        return self.artifacts / f"{variant}.tflite"

    def reproducer(self, variant: str | None, runtime_directory: str) -> Path:
        """Where a failed run's reproducer goes (variant None: the reference's run)."""
        if variant is None:
            return self.artifacts / REFERENCE_REPRODUCERS / runtime_directory
        return self.artifacts / REPRODUCERS / variant / runtime_directory


# --------------------------------------------------------------------------- before the run


class UnusablePlace(Exception):  # noqa: N818 -- a usage error, named for what it says
    """A directory the run must write to cannot be used; the message leads with the fix."""


def _shown(path: Path, workspace: Path) -> str:
    try:
        return path.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(path)


def refuse_artifacts_over(
    reads: Sequence[Path],
    artifacts: Path,
    models: Sequence[str],
    workspace: Path,
    option: str | None,
) -> None:
    """Converted models go to `ARTIFACTS/MODEL/`: never over a file the run reads."""
    owned = [artifacts.resolve() / name for name in models]
    for path in reads:
        inside = next((d for d in owned if path.resolve().is_relative_to(d)), None)
        if inside is not None:
            raise UnusablePlace(
                f"give {option or 'the artifacts'} a directory of its own: "
                f"{_shown(path, workspace)}, which the run reads, is inside {inside.name}/ of "
                "the artifacts, where the gate writes converted models"
            )


def prepare_artifacts(artifacts: Path, workspace: Path, *, own: bool, option: str | None) -> None:
    """Make the artifacts directory and try writing there, before any model work.

    A permission bit says nothing for root or a read-only mount, so a file is really
    created (and removed). `own`: it is the gate's default directory in the
    workspace, which then ignores itself in git, as `.pytest_cache` does.
    """
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
        ignore = workspace / GATE_DIRECTORY / ".gitignore"
        if own and not ignore.exists():
            ignore.write_text(_GITIGNORE, encoding="utf-8")
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=artifacts)
        os.close(handle)
        Path(probe).unlink()
    except OSError as error:
        raise UnusablePlace(
            f"give {option or 'the artifacts'} a writable directory: cannot create artifacts "
            f"in {_shown(artifacts, workspace)}: {error.strerror or error}"
        ) from None


def new_scratch_directory() -> tempfile.TemporaryDirectory[str]:
    """The run's temporary directory; one that cannot be made is the machine's problem."""
    try:
        return owned_scratch("tflite-gate-")
    except OSError as error:
        raise UnusablePlace(
            "set TMPDIR to a writable directory with room: cannot create a temporary "
            f"directory in {tempfile.gettempdir()}: {error.strerror or error}"
        ) from None

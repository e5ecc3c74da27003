"""The pinned-wheel cache itself: atomic download, sha256 checked, loud failures.

A real-model test that silently tested another file, or skipped when the package index
was unreachable, would look green while claiming nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from .packages import BASIC_PITCH, cache_root, extract, fetch_wheel

pytestmark = pytest.mark.realworld

MEMBER = "basic_pitch/saved_models/icassp_2022/nmp.tflite"


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TFLITE_GATE_TEST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_first_use_downloads_into_a_directory_keyed_by_the_pin(empty_cache: Path) -> None:
    wheel = fetch_wheel(BASIC_PITCH)
    assert wheel == empty_cache / "wheels" / "basic-pitch-0.4.0" / BASIC_PITCH.filename
    assert wheel.stat().st_size == BASIC_PITCH.size
    # the staging directory was renamed into place, nothing half-written is left
    assert sorted(p.name for p in (empty_cache / "wheels").iterdir()) == ["basic-pitch-0.4.0"]
    assert [p.name for p in wheel.parent.iterdir()] == [BASIC_PITCH.filename]


@pytest.mark.slow
def test_only_the_named_members_reach_the_workspace(empty_cache: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    placed = extract(BASIC_PITCH, {MEMBER: "models/nmp.tflite"}, workspace)
    assert placed == {MEMBER: workspace / "models" / "nmp.tflite"}
    assert [p.relative_to(workspace).as_posix() for p in workspace.rglob("*") if p.is_file()] == [
        "models/nmp.tflite"
    ]
    assert (workspace / "models" / "nmp.tflite").read_bytes()[4:8] == b"TFL3"


@pytest.mark.slow
def test_a_changed_file_under_the_pin_fails_loudly(empty_cache: Path) -> None:
    wheel = fetch_wheel(BASIC_PITCH)
    data = bytearray(wheel.read_bytes())
    data[-1] ^= 0xFF
    wheel.write_bytes(bytes(data))
    with pytest.raises(pytest.fail.Exception, match="does not match the sha256 pinned"):
        fetch_wheel(BASIC_PITCH)


@pytest.mark.slow
def test_an_unreachable_package_fails_with_what_to_do(empty_cache: Path) -> None:
    missing = dataclasses.replace(BASIC_PITCH, version="0.0.0.post999")
    with pytest.raises(pytest.fail.Exception, match=r"pip download` failed") as failure:
        fetch_wheel(missing)
    assert "basic-pitch==0.0.0.post999" in str(failure.value)
    assert "package index is reachable" in str(failure.value)
    assert list((empty_cache / "wheels").iterdir()) == []  # no staging directory left behind


def test_the_cache_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFLITE_GATE_TEST_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/nonexistent/xdg")
    assert cache_root() == Path("/nonexistent/xdg/tflite-gate-tests")

"""Where a run writes: scratch laid out by position (no policy name reaches it), artifacts
by the names people read, and every place made and tried before any model work."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from tflite_gate.support.layout import (
    GATE_DIRECTORY,
    ModelPlaces,
    UnusablePlace,
    new_scratch_directory,
    prepare_artifacts,
    refuse_artifacts_over,
    runtime_directories,
)
from tflite_gate.support.lifetime import OWNER_FILE

# --------------------------------------------------------------------------- names


def test_runtime_directories_are_readable_and_distinct_even_case_insensitively() -> None:
    names = ["tflite-runtime==2.14.0", "tflite-runtime>=2.14.0", "Default", "default", "==", "?"]
    assert runtime_directories(names) == [
        "tflite-runtime_2.14.0",
        "tflite-runtime_2.14.0-2",
        "Default",
        "default-2",
        "runtime",
        "runtime-2",
    ]


def test_a_numbered_name_does_not_take_a_name_a_runtime_has_already() -> None:
    assert runtime_directories(["a-2", "a", "A"]) == ["a-2", "a", "A-3"]


def test_scratch_places_come_from_positions_not_from_policy_names(tmp_path: Path) -> None:
    """A variant called `load.json` or `reference` cannot land on a worker's own file."""
    places = ModelPlaces.of(tmp_path / "scratch", tmp_path / "artifacts", 2, "reference")
    scratch = tmp_path / "scratch" / "model-2"
    assert places.scratch == scratch
    assert [places.conversion, places.reference_conversion, places.data] == [
        scratch / "convert",
        scratch / "reference-convert",
        scratch / "data",
    ]
    assert places.diagnosis(1) == scratch / "diagnose-1"
    assert [places.run(0, 1), places.run(None, 1)] == [
        scratch / "run-0-1",
        scratch / "run-reference-1",
    ]


def test_artifacts_are_named_for_people(tmp_path: Path) -> None:
    places = ModelPlaces.of(tmp_path / "scratch", tmp_path / "artifacts", 0, "classifier")
    model = tmp_path / "artifacts" / "classifier"
    assert places.artifact("int8") == model / "int8.tflite"
    assert places.reproducer("int8", "tflite-runtime_2.14.0") == (
        model / "reproducers" / "int8" / "tflite-runtime_2.14.0"
    )
    assert places.reproducer(None, "default") == model / "reference-reproducers" / "default"


# --------------------------------------------------------------------------- before the run


def test_artifacts_may_not_be_written_over_a_file_the_run_reads(tmp_path: Path) -> None:
    artifacts = tmp_path / "out"
    model = artifacts / "classifier" / "model.keras"
    with pytest.raises(UnusablePlace) as caught:
        refuse_artifacts_over([model], artifacts, ["classifier"], tmp_path, "--artifacts")
    assert str(caught.value) == (
        "give --artifacts a directory of its own: out/classifier/model.keras, which the run "
        "reads, is inside classifier/ of the artifacts, where the gate writes converted models"
    )


def test_reads_beside_the_models_directories_are_fine(tmp_path: Path) -> None:
    artifacts = tmp_path / "out"
    reads = [artifacts / "data.npz", artifacts / "classifier-v2" / "m.keras", tmp_path / "m.keras"]
    refuse_artifacts_over(reads, artifacts, ["classifier"], tmp_path, None)


def test_without_an_option_the_message_says_the_artifacts(tmp_path: Path) -> None:
    read = tmp_path / "m" / "x.tflite"
    with pytest.raises(UnusablePlace, match=r"^give the artifacts a directory of its own: m/x"):
        refuse_artifacts_over([read], tmp_path, ["m"], tmp_path, None)


def test_the_gates_own_artifacts_are_made_tried_and_ignored_by_git(tmp_path: Path) -> None:
    artifacts = tmp_path / GATE_DIRECTORY / "artifacts"
    prepare_artifacts(artifacts, tmp_path, own=True, option=None)
    assert artifacts.is_dir() and list(artifacts.iterdir()) == []  # the write test is gone
    ignore = (tmp_path / GATE_DIRECTORY / ".gitignore").read_text()
    assert ignore.splitlines()[-1] == "*"


def test_a_users_gitignore_is_kept_and_a_chosen_directory_gets_none(tmp_path: Path) -> None:
    ignore = tmp_path / GATE_DIRECTORY / ".gitignore"
    ignore.parent.mkdir()
    ignore.write_text("mine\n")
    prepare_artifacts(tmp_path / GATE_DIRECTORY / "artifacts", tmp_path, own=True, option=None)
    assert ignore.read_text() == "mine\n"
    elsewhere = tmp_path / "elsewhere"
    prepare_artifacts(elsewhere / "artifacts", elsewhere, own=False, option="--artifacts")
    assert not (elsewhere / GATE_DIRECTORY).exists()


def test_artifacts_that_cannot_be_made_are_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where the directory would go")
    with pytest.raises(UnusablePlace) as caught:
        prepare_artifacts(
            tmp_path / "taken" / "artifacts", tmp_path, own=False, option="--artifacts"
        )
    assert str(caught.value) == (
        "give --artifacts a writable directory: cannot create artifacts in taken/artifacts: "
        "Not a directory"
    )


def test_the_scratch_directory_is_owned_by_this_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    scratch = new_scratch_directory()
    try:
        directory = Path(scratch.name)
        assert directory.parent == tmp_path and directory.name.startswith("tflite-gate-")
        assert "pid" in json.loads((directory / OWNER_FILE).read_text())
    finally:
        scratch.cleanup()
    assert not directory.exists()


def test_a_scratch_directory_that_cannot_be_made_says_to_set_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    with pytest.raises(UnusablePlace) as caught:
        new_scratch_directory()
    assert str(caught.value) == (
        "set TMPDIR to a writable directory with room: cannot create a temporary directory "
        f"in {missing}: No such file or directory"
    )

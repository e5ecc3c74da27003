"""What `tflite-gate init` is asked: the model to probe, its name, the variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from tflite_gate.app.init.request import InitError, find_sources, model_name, variant_entries


def test_model_files_are_found_outside_hidden_and_environment_directories(tmp_path: Path) -> None:
    for name in ("a.keras", "models/b.tflite", ".git/c.keras", "venv/lib/d.h5", "e/saved_model.pb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    (tmp_path / "e" / "variables").mkdir()
    (tmp_path / "e" / "variables" / "f.h5").write_bytes(b"")
    assert find_sources(tmp_path) == ["a.keras", "e", "models/b.tflite"]


def test_names_come_from_the_source() -> None:
    assert model_name("models/Classifier v2.keras") == "Classifier_v2"
    assert model_name("zoo.models:build_mobilenet") == "build_mobilenet"
    assert model_name("example_models.gram:build") == "gram"
    assert model_name("saved/") == "saved"
    assert model_name("_x.h5") == "x"
    assert model_name("---.keras") == "model"


def test_variant_words_become_names_and_quantizations() -> None:
    assert variant_entries(["float", "int8", "none", "int8"]) == [
        ("float", "none"),
        ("int8", "int8"),
    ]
    with pytest.raises(InitError, match="pass --variants with some of float, dynamic"):
        variant_entries(["int4"])

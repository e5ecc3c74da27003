"""Sources loaded inside the conversion worker, and what each failure tells the user.

What is refused before Keras or TensorFlow is imported (a weights-only .h5, a broken
archive, a factory that does not import or raises) runs here in the fast tier; the
loads themselves import TensorFlow in this process (slow).
"""

from __future__ import annotations

import sys
import textwrap
import zipfile
from pathlib import Path

import h5py
import pytest

from tests.support.harness import save_tiny_keras
from tflite_gate.model.loader import PreparedModel, load_as_saved_model
from tflite_gate.model.sources import SourceError
from tflite_gate.report.model import SourceKind


def _load(
    workspace: Path,
    kind: SourceKind,
    source: str,
    *,
    input_shapes: dict[str, list[int]] | None = None,
    input_map: dict[str, str] | None = None,
) -> PreparedModel:
    scratch = workspace / "scratch"
    scratch.mkdir(exist_ok=True)
    return load_as_saved_model(
        kind=kind,
        source=source,
        path=None if kind == "factory" else workspace / source,
        workspace=workspace,
        scratch=scratch,
        input_shapes=input_shapes or {},
        signature=None,
        safe_mode=True,
        input_map=input_map,
    )


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Factories import from the workspace: leave `sys.path` as it was afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_a_weights_only_h5_asks_for_a_factory(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "weights.h5", "w") as handle:
        handle.create_group("dense")
    with pytest.raises(
        SourceError, match=r"weights.h5 holds only weights \(written by save_weights\)"
    ):
        _load(tmp_path, "h5", "weights.h5")


def test_a_git_lfs_pointer_says_to_fetch_the_files(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    with pytest.raises(SourceError, match="a Git LFS pointer, not the model"):
        _load(tmp_path, "keras", "m.keras")


def test_a_truncated_archive_says_to_save_it_again(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "whole.keras", "w") as archive:
        archive.writestr("config.json", "{}" * 100)
    whole = (tmp_path / "whole.keras").read_bytes()
    (tmp_path / "m.keras").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        SourceError, match=r"^not a valid \.keras archive \(truncated or corrupted\)"
    ):
        _load(tmp_path, "keras", "m.keras")


def test_a_factory_that_raises_is_located_at_its_own_line(
    tmp_path: Path, isolated_imports: None
) -> None:
    (tmp_path / "raising_factory.py").write_text(
        textwrap.dedent(
            """\
            def build():
                weights = None
                raise ValueError("weights file is missing")
            """
        )
    )
    with pytest.raises(SourceError) as raised:
        _load(tmp_path, "factory", "raising_factory:build")
    assert raised.value.message == (
        "the factory raising_factory:build raised ValueError: weights file is missing"
    )
    assert raised.value.location == ("raising_factory.py", 3)


def test_a_missing_package_is_named_for_installing(tmp_path: Path, isolated_imports: None) -> None:
    (tmp_path / "needs_package.py").write_text(
        "import not_installed_anywhere\n\ndef build(): ...\n"
    )
    with pytest.raises(SourceError) as raised:
        _load(tmp_path, "factory", "needs_package:build")
    assert raised.value.message.startswith("cannot import 'needs_package': ModuleNotFoundError")
    assert raised.value.missing_module == "not_installed_anywhere"
    assert raised.value.location == ("needs_package.py", 1)


def test_a_wrong_source_module_is_nothing_to_install(
    tmp_path: Path, isolated_imports: None
) -> None:
    with pytest.raises(SourceError) as raised:
        _load(tmp_path, "factory", "no_such_factory_module:build")
    assert raised.value.missing_module is None


def test_a_missing_function_names_module_and_function(
    tmp_path: Path, isolated_imports: None
) -> None:
    (tmp_path / "no_function.py").write_text("def other(): ...\n")
    with pytest.raises(SourceError, match="module 'no_function' has no function 'build'"):
        _load(tmp_path, "factory", "no_function:build")


@pytest.mark.slow  # Keras and TensorFlow in this process
def test_a_keras_file_becomes_a_saved_model_with_the_serving_signature(tmp_path: Path) -> None:
    save_tiny_keras(tmp_path / "tiny.keras", shape=(None, 3))
    prepared = _load(tmp_path, "keras", "tiny.keras", input_shapes={"x": [1, 5, 3]})
    assert prepared.signature_key == "serving_default"
    assert (prepared.saved_model_dir / "saved_model.pb").is_file()
    assert [(s.name, s.shape, s.dtype) for s in prepared.inputs] == [("x", [1, 5, 3], "float32")]


@pytest.mark.slow  # TensorFlow in this process
def test_a_directory_without_saved_model_pb_says_what_to_point_at(tmp_path: Path) -> None:
    (tmp_path / "export").mkdir()
    with pytest.raises(SourceError, match=r"^export/ is a directory without saved_model.pb"):
        _load(tmp_path, "saved_model", "export")


@pytest.mark.slow  # TensorFlow in this process
def test_a_factory_must_return_something_convertible(
    tmp_path: Path, isolated_imports: None
) -> None:
    (tmp_path / "odd_factories.py").write_text(
        textwrap.dedent(
            """\
            import tensorflow as tf

            @tf.function
            def untyped(x):
                return x

            def no_signature():
                return untyped

            def a_string():
                return "model"
            """
        )
    )
    with pytest.raises(SourceError, match=r"returned a tf\.function without input_signature"):
        _load(tmp_path, "factory", "odd_factories:no_signature")
    with pytest.raises(SourceError, match=r"returned builtins.str; expected a keras.Model"):
        _load(tmp_path, "factory", "odd_factories:a_string")


@pytest.mark.slow  # TensorFlow in this process
def test_a_tflite_reference_takes_the_tflites_input_names(
    tmp_path: Path, isolated_imports: None
) -> None:
    (tmp_path / "loader_reference.py").write_text(
        textwrap.dedent(
            """\
            import tensorflow as tf

            @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
            def double(features):
                return 2 * features

            def build():
                return double
            """
        )
    )
    prepared = _load(
        tmp_path,
        "factory",
        "loader_reference:build",
        input_shapes={"serving_default_x:0": [1, 4]},
        input_map={"serving_default_x:0": "features"},
    )
    assert [(s.name, s.shape) for s in prepared.inputs] == [("features", [1, 4])]
    assert prepared.data_names == {"features": "serving_default_x:0"}

"""Model sources as facts, read before any worker starts: kind, writer, declared shapes."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import pytest

from tflite_gate.model.sources import (
    DynamicShapeError,
    SourceError,
    apply_input_shapes,
    classify,
    signature_name,
    written_by,
)
from tflite_gate.report.model import WrittenBy
from tflite_gate.run.protocol import TensorSpec


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("m.keras", "keras"),
        ("m.H5", "h5"),
        ("m.hdf5", "h5"),
        ("m.tflite", "tflite"),
        ("m.onnx", None),
    ],
)
def test_a_file_is_classified_by_its_suffix(tmp_path: Path, name: str, kind: str | None) -> None:
    assert classify(name, tmp_path / name) == kind


def test_a_directory_is_a_saved_model_and_no_path_a_factory(tmp_path: Path) -> None:
    assert classify("exported", tmp_path) == "saved_model"
    assert classify("zoo.models:build", None) == "factory"


def test_a_keras_archive_names_the_keras_that_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "2.15.0"}))
    assert written_by("keras", path) == WrittenBy(keras="2.15.0")


def test_an_h5_file_names_the_keras_that_wrote_it(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = b"2.4.0"
    assert written_by("h5", path) == WrittenBy(keras="2.4.0")
    unmarked = tmp_path / "unmarked.h5"
    h5py.File(unmarked, "w").close()
    assert written_by("h5", unmarked) == WrittenBy(keras=None)


def test_an_unreadable_file_loses_only_the_hint(tmp_path: Path) -> None:
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert written_by("keras", tmp_path / "broken.keras") is None
    assert written_by("h5", tmp_path / "missing.h5") is None
    assert written_by("tflite", tmp_path / "m.tflite") is None


def test_a_converted_models_tensor_name_means_the_signature_input() -> None:
    names = {"x", "mask"}
    assert signature_name("x", names) == "x"
    assert signature_name("serving_default_x:0", names) == "x"
    assert signature_name("mask:0", names) == "mask"
    assert signature_name("y", names) == "y"  # unknown: the caller says so


SPECS = [TensorSpec(name="x", shape=[None, None, None, 3], dtype="float32")]


def test_declared_shapes_replace_the_models() -> None:
    [spec] = apply_input_shapes(SPECS, {"serving_default_x:0": [1, 32, 32, 3]})
    assert spec == TensorSpec(name="x", shape=[1, 32, 32, 3], dtype="float32")


def test_a_name_the_model_does_not_have_is_the_policys_fault() -> None:
    with pytest.raises(
        SourceError, match="input_shapes names 'y', but the model's inputs are: x"
    ) as raised:
        apply_input_shapes(SPECS, {"y": [1, 2]})
    assert raised.value.policy_key == "input_shapes"


def test_a_shape_of_another_rank_is_refused() -> None:
    with pytest.raises(
        SourceError, match=r"input_shapes\['x'\] has rank 2, the model's input has rank 4"
    ):
        apply_input_shapes(SPECS, {"x": [1, 2]})


def test_unknown_sizes_are_asked_for_with_placeholders_never_invented() -> None:
    with pytest.raises(DynamicShapeError) as raised:
        apply_input_shapes(SPECS, {})
    assert raised.value.policy_key == "input_shapes"
    assert raised.value.message == (
        "input 'x' has dynamic dimensions [None, None, None, 3]; declare them in the policy: "
        "input_shapes: {x: [1, H, W, 3]}, replacing H and W with the sizes your app feeds "
        "(the batch stays 1)"
    )


def test_other_unknown_dimensions_are_numbered() -> None:
    sequence = [TensorSpec(name="tokens", shape=[None, None, 8, None], dtype="int32")]
    with pytest.raises(
        DynamicShapeError, match=r"\{tokens: \[1, D1, 8, D3\]\}, replacing D1 and D3"
    ):
        apply_input_shapes(sequence, {})


def test_a_dynamic_batch_alone_is_left_to_the_converter() -> None:
    specs = [TensorSpec(name="x", shape=[None, 4], dtype="float32")]
    assert apply_input_shapes(specs, {}) == specs

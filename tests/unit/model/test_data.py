"""Representative data: seeded generation and .npz files checked against the inputs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tflite_gate.model.data import (
    DataError,
    generate,
    load_directory,
    load_generator,
    load_npz,
    representative_samples,
)
from tflite_gate.run.protocol import SourceSpec, TensorSpec

INPUTS = [
    TensorSpec.from_dims("image", [-1, 4, 4, 3], "float32"),
    TensorSpec.from_dims("ids", [-1, 5], "int32"),
]


def test_generate_is_seeded_and_dtype_aware() -> None:
    first = generate(INPUTS, seed=3, count=4, low=-1.0, high=1.0)
    again = generate(INPUTS, seed=3, count=4, low=-1.0, high=1.0)
    assert len(first) == 4
    assert first[0]["image"].shape == (1, 4, 4, 3) and first[0]["image"].dtype == np.float32
    assert first[0]["ids"].dtype == np.int32
    assert all(np.array_equal(a["image"], b["image"]) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(
        first[0]["image"], generate(INPUTS, seed=4, count=1, low=-1, high=1)[0]["image"]
    )
    assert all(s["image"].min() >= -1.0 and s["image"].max() < 1.0 for s in first)


def test_npz_samples_are_split_on_the_first_axis(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, image=np.ones((6, 4, 4, 3), np.float32), ids=np.zeros((6, 5), np.int32))
    samples = load_npz(path, INPUTS, limit=4)
    assert len(samples) == 4
    assert samples[0]["image"].shape == (1, 4, 4, 3)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"image": np.ones((2, 4, 4, 3), np.float32)},
            "d.npz has no array for input(s) ids; it has: image",
        ),
        (
            {"image": np.ones((2, 4, 3), np.float32), "ids": np.zeros((2, 5), np.int32)},
            "d.npz['image'] has sample shape [4, 3], the model expects [4, 4, 3]",
        ),
        (
            {"image": np.ones((2, 4, 4, 3), np.float64), "ids": np.zeros((2, 5), np.int32)},
            "d.npz['image'] has dtype float64, the model expects float32",
        ),
        (
            {"image": np.full((2, 4, 4, 3), np.nan, np.float32), "ids": np.zeros((2, 5), np.int32)},
            "d.npz['image'] contains NaN or Inf",
        ),
        (
            {"image": np.ones((2, 4, 4, 3), np.float32), "ids": np.zeros((3, 5), np.int32)},
            "inputs have different sample counts",
        ),
        (
            {"image": np.ones((0, 4, 4, 3), np.float32), "ids": np.zeros((0, 5), np.int32)},
            "d.npz: no samples",
        ),
    ],
)
def test_npz_that_does_not_fit(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as error:
        load_npz(path, INPUTS)
    assert message in str(error.value)


def test_npz_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, image=np.array([{"evil": 1}], dtype=object), ids=np.zeros((1, 5), np.int32))
    with pytest.raises(DataError, match="cannot read without unpickling"):
        load_npz(path, INPUTS)


def test_missing_and_corrupt_npz(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.npz: file not found"):
        load_npz(tmp_path / "nope.npz", INPUTS)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"bad\.npz"):
        load_npz(bad, INPUTS)


SINGLE = [TensorSpec.from_dims("x", [-1, 3], "float32")]


def test_directory_of_npy_and_npz_files_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    np.save(folder / "b.npy", np.full((2, 3), 2.0, np.float32))
    np.savez(folder / "a.npz", x=np.full((1, 3), 1.0, np.float32))
    (folder / "notes.txt").write_text("ignored")
    feeds = load_directory(folder, SINGLE, workspace=tmp_path)
    assert [float(f["x"][0, 0]) for f in feeds] == [1.0, 2.0, 2.0]
    assert feeds[0]["x"].shape == (1, 3)
    assert len(load_directory(folder, SINGLE, workspace=tmp_path, limit=2)) == 2


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty/ holds no \.npy or \.npz files"):
        (tmp_path / "empty").mkdir()
        load_directory(tmp_path / "empty", SINGLE, workspace=tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        load_directory(tmp_path / "missing", SINGLE, workspace=tmp_path)
    folder = tmp_path / "two"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(
        DataError, match=r"a \.npy file holds one array, but the model has 2 inputs"
    ):
        load_directory(folder, INPUTS, workspace=tmp_path)


def test_pickled_npy_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    np.save(folder / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="cannot read without unpickling"):
        load_directory(folder, SINGLE, workspace=tmp_path)


GENERATORS = """\
import numpy as np


def good():
    for i in range(10):
        yield {"x": np.full((3,), float(i), np.float32)}


def raises():
    yield {"x": np.zeros((1, 3), np.float32)}
    raise RuntimeError("camera feed lost")


def wrong_item():
    yield [1, 2, 3]


def wrong_dtype():
    yield {"x": np.zeros((1, 3), np.float64)}
"""


@pytest.fixture(scope="module")
def generators(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workspace for the module: Python caches the imported `feeds` module by name."""
    workspace = tmp_path_factory.mktemp("generators")
    (workspace / "feeds.py").write_text(GENERATORS)
    return workspace


def test_generator_feeds_get_a_batch_axis_and_a_limit(generators: Path) -> None:
    feeds = load_generator("feeds:good", SINGLE, workspace=generators, limit=4)
    assert len(feeds) == 4 and feeds[3]["x"].shape == (1, 3) and feeds[3]["x"][0, 0] == 3.0


def test_generator_that_raises_points_at_its_line(generators: Path) -> None:
    with pytest.raises(DataError) as error:
        load_generator("feeds:raises", SINGLE, workspace=generators, limit=4)
    assert error.value.message == "the generator feeds:raises raised RuntimeError: camera feed lost"
    line = GENERATORS.splitlines().index('    raise RuntimeError("camera feed lost")') + 1
    assert error.value.location == ("feeds.py", line)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            "feeds:wrong_item",
            "feeds:wrong_item sample 0: expected a dict of input name → array, got list",
        ),
        (
            "feeds:wrong_dtype",
            "feeds:wrong_dtype sample 0['x'] has dtype float64, the model expects float32",
        ),
        ("feeds:missing", "the generator feeds:missing raised AttributeError"),
    ],
)
def test_generator_errors(generators: Path, factory: str, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        load_generator(factory, SINGLE, workspace=generators, limit=4)


def test_one_source_serves_both_roles_with_different_samples(generators: Path) -> None:
    spec = SourceSpec(kind="generator", factory="feeds:good")
    calibration = representative_samples(
        "calibration", spec, None, SINGLE, samples=3, workspace=generators
    )
    evaluation = representative_samples(
        "evaluation", spec, None, SINGLE, samples=3, workspace=generators
    )
    assert [f["x"][0, 0] for f in calibration] == [0.0, 2.0, 4.0]
    assert [f["x"][0, 0] for f in evaluation] == [1.0, 3.0, 5.0]


def test_generated_data_uses_the_next_seed_for_evaluation(tmp_path: Path) -> None:
    spec = SourceSpec(kind="generate", seed=5)
    calibration = representative_samples(
        "calibration", None, spec, SINGLE, samples=2, workspace=tmp_path
    )
    evaluation = representative_samples(
        "evaluation", None, spec, SINGLE, samples=2, workspace=tmp_path
    )
    assert not np.array_equal(calibration[0]["x"], evaluation[0]["x"])
    again = representative_samples("calibration", None, spec, SINGLE, samples=2, workspace=tmp_path)
    assert np.array_equal(calibration[0]["x"], again[0]["x"])


def test_a_shared_source_with_one_sample_is_too_few(tmp_path: Path) -> None:
    np.savez(tmp_path / "one.npz", x=np.zeros((1, 3), np.float32))
    spec = SourceSpec(kind="npz", path=str(tmp_path / "one.npz"))
    with pytest.raises(
        DataError,
        match=r"1 sample\(s\); one source serving calibration and evaluation needs at least 2",
    ):
        representative_samples("evaluation", spec, None, SINGLE, samples=4, workspace=tmp_path)


# --------------------------------------------------------------------------- string inputs

TOKENS = [TensorSpec.from_dims("tokens", [-1, 3], "string")]

TEXTS = """\
import numpy as np


def as_bytes():
    for _ in range(4):
        yield {"tokens": np.array([b"a", b"bb", b"zz"])}


def as_objects():
    # What tf.data's .numpy() gives for a string tensor: an object array of bytes.
    for _ in range(4):
        yield {"tokens": np.array([[b"a", "caf\\u00e9", b"c"]], dtype=object)}


def as_lists():
    for _ in range(4):
        yield {"tokens": ["a", "b", "c"]}


def not_strings():
    yield {"tokens": np.array([[b"a", 2, None]], dtype=object)}
"""


@pytest.fixture(scope="module")
def texts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = tmp_path_factory.mktemp("texts")
    (workspace / "texts.py").write_text(TEXTS)
    return workspace


@pytest.mark.parametrize("factory", ["texts:as_bytes", "texts:as_objects", "texts:as_lists"])
def test_a_generator_feeds_string_inputs_as_bytes(texts: Path, factory: str) -> None:
    feeds = load_generator(factory, TOKENS, workspace=texts, limit=4)
    assert len(feeds) == 4
    assert feeds[0]["tokens"].shape == (1, 3) and feeds[0]["tokens"].dtype.kind == "S"


def test_str_values_are_fed_as_utf8(texts: Path) -> None:
    (feed,) = load_generator("texts:as_objects", TOKENS, workspace=texts, limit=1)
    assert feed["tokens"].tolist() == [[b"a", "café".encode(), b"c"]]


def test_a_string_input_refuses_other_objects(texts: Path) -> None:
    with pytest.raises(DataError) as error:
        load_generator("texts:not_strings", TOKENS, workspace=texts, limit=1)
    assert error.value.message == (
        "texts:not_strings sample 0['tokens']: give bytes or str values for this string "
        "input; it holds int"
    )


@pytest.mark.parametrize("dtype", ["S", "U"])
def test_npz_feeds_string_inputs_from_fixed_width_arrays(tmp_path: Path, dtype: str) -> None:
    path = tmp_path / "texts.npz"
    np.savez(path, tokens=np.array([["a", "bb", "ünï"], ["c", "d", "e"]]).astype(dtype)
             if dtype == "U" else np.array([[b"a", b"bb", b"x"], [b"c", b"d", b"e"]]))  # fmt: skip
    feeds = load_npz(path, TOKENS)
    assert [feed["tokens"].dtype.kind for feed in feeds] == ["S", "S"]
    assert feeds[1]["tokens"].tolist() == [[b"c", b"d", b"e"]]


def test_npz_of_string_objects_says_how_to_save_them(tmp_path: Path) -> None:
    path = tmp_path / "texts.npz"
    np.savez(path, tokens=np.array([[b"a", b"b", b"c"]], dtype=object))
    with pytest.raises(DataError) as error:
        load_npz(path, TOKENS)
    assert error.value.message.startswith("texts.npz: cannot read without unpickling (")
    assert error.value.message.endswith(
        "; save strings as bytes or str arrays (np.array(texts, dtype=bytes) or dtype=str), "
        "not dtype=object"
    )


def test_string_inputs_are_not_made_up(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        representative_samples("evaluation", None, None, TOKENS, samples=4, workspace=tmp_path)
    assert error.value.message == (
        "give a .npz of bytes or str arrays, or a module:function generator yielding them, "
        "for the string input 'tokens': random strings would not be text the model knows"
    )


def test_a_number_input_refuses_strings(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, image=np.array([["x"] * 48]).reshape(1, 4, 4, 3), ids=np.zeros((1, 5), np.int32))
    with pytest.raises(
        DataError, match=re.escape("d.npz['image'] has dtype <U1, the model expects float32")
    ):
        load_npz(path, INPUTS)

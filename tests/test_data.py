"""Representative data: seeded generation and .npz files checked against the inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tflite_gate.data import DataError, generate, load_npz

INPUTS = [("image", [-1, 4, 4, 3], "float32"), ("ids", [-1, 5], "int32")]


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

"""Arrays handed to another process: named, in an .npz that a reader opens without pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tflite_gate.run.arrays import save_npz


def test_named_arrays_come_back_by_name_and_dtype_without_pickle(tmp_path: Path) -> None:
    arrays: dict[str, np.ndarray[Any, Any]] = {
        "serving_default_x:0": np.arange(6, dtype=np.float32).reshape(2, 3),
        "ids": np.array([[1], [2]], np.int64),
        "mask": np.array([True, False]),
    }
    save_npz(tmp_path / "inputs.npz", arrays)
    with np.load(tmp_path / "inputs.npz", allow_pickle=False) as archive:
        assert archive.files == list(arrays)
        for name, array in arrays.items():
            assert archive[name].dtype == array.dtype
            np.testing.assert_array_equal(archive[name], array)


def test_the_file_is_written_where_it_was_asked_for(tmp_path: Path) -> None:
    save_npz(tmp_path / "reference-outputs.npz", {"y": np.zeros(2)})
    assert [path.name for path in tmp_path.iterdir()] == ["reference-outputs.npz"]


def test_no_arrays_make_an_empty_archive(tmp_path: Path) -> None:
    save_npz(tmp_path / "empty.npz", {})
    with np.load(tmp_path / "empty.npz", allow_pickle=False) as archive:
        assert archive.files == []

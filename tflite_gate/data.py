"""Representative data: seeded generation from the input signature, or a `.npz`.

Used for int8/int16x8 calibration. Every array is checked against the model's
inputs before the converter sees it, because the converter's own message for a
wrong shape is a C++ assertion far from the cause. `np.load` never unpickles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

Feed = dict[str, np.ndarray]


class DataError(Exception):
    """Representative data that does not fit the model."""


def _numpy_dtype(name: str) -> np.dtype[Any]:
    try:
        return np.dtype(name)
    except TypeError:
        raise DataError(f"cannot generate data for dtype {name!r}") from None


def generate(
    inputs: list[tuple[str, list[int], str]], *, seed: int, count: int, low: float, high: float
) -> list[Feed]:
    """`count` samples, batch 1, uniform in [low, high) (integers: clipped to the dtype)."""
    rng = np.random.default_rng(seed)
    samples: list[Feed] = []
    for _ in range(count):
        feed: Feed = {}
        for name, shape, dtype_name in inputs:
            dtype = _numpy_dtype(dtype_name)
            concrete = [1, *shape[1:]]
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                lo, hi = max(int(np.floor(low)), info.min), min(int(np.ceil(high)), info.max)
                feed[name] = rng.integers(lo, hi, size=concrete, endpoint=True).astype(dtype)
            elif dtype == np.bool_:
                feed[name] = rng.integers(0, 2, size=concrete).astype(np.bool_)
            else:
                feed[name] = rng.uniform(low, high, size=concrete).astype(dtype)
        samples.append(feed)
    return samples


def load_npz(
    path: Path, inputs: list[tuple[str, list[int], str]], *, limit: int | None = None
) -> list[Feed]:
    """Samples from a `.npz` keyed by input name, first axis = samples."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path.name}: file not found") from None
    except ValueError as exc:
        raise DataError(f"{path.name}: cannot read without unpickling ({exc})") from None
    except Exception as exc:
        raise DataError(f"{path.name}: not a readable .npz ({exc})") from None
    with archive:
        missing = [name for name, _, _ in inputs if name not in archive.files]
        if missing:
            raise DataError(
                f"{path.name} has no array for input(s) {', '.join(missing)}; "
                f"it has: {', '.join(archive.files) or 'nothing'}"
            )
        try:
            arrays = {name: archive[name] for name, _, _ in inputs}
        except ValueError as exc:
            raise DataError(f"{path.name}: cannot read without unpickling ({exc})") from None
    counts = {name: len(array) for name, array in arrays.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"{path.name}: inputs have different sample counts {counts}")
    for name, shape, dtype_name in inputs:
        _check_array(path.name, name, arrays[name], shape, dtype_name)
    total = next(iter(counts.values()), 0)
    if total == 0:
        raise DataError(f"{path.name}: no samples")
    count = total if limit is None else min(limit, total)
    return [{name: arrays[name][i : i + 1] for name in arrays} for i in range(count)]


def _check_array(file: str, name: str, array: np.ndarray, shape: list[int], dtype: str) -> None:
    expected = list(shape[1:])
    got = list(array.shape[1:])
    if got != expected:
        raise DataError(
            f"{file}[{name!r}] has sample shape {got}, the model expects {expected} "
            f"(array shape {list(array.shape)}: first axis = samples)"
        )
    if array.dtype != _numpy_dtype(dtype):
        raise DataError(f"{file}[{name!r}] has dtype {array.dtype}, the model expects {dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise DataError(f"{file}[{name!r}] contains NaN or Inf; calibration needs finite values")

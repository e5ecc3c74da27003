"""Representative data for calibration and evaluation, checked against the inputs.

Sources: a `.npz` (keys = input names, first axis = samples), a directory of
`.npy`/`.npz` files (read in name order and concatenated), `{generate: ...}`
(seeded, dtype-aware), or a `package.module:function` generator in the workspace
yielding feed dicts. Every sample is checked against the model's inputs before
the converter or interpreter sees it, because their own messages for a wrong
shape are C++ assertions far from the cause. `np.load` never unpickles.

A sample is a feed dict `{input name: array}` whose arrays have the input's full
shape (batch dimension included, usually 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tflite_gate.model.workspace_code import describe_exception, exception_location, import_function
from tflite_gate.run.protocol import SourceSpec, TensorSpec
from tflite_gate.support.workspace_files import SpecialFileError, require_regular_file

Feed = dict[str, np.ndarray]
InputSignature = list[TensorSpec]


class DataError(Exception):
    """Representative data that does not fit the model.

    `location` is a workspace (file, line) when a generator raised.
    """

    def __init__(self, message: str, location: tuple[str, int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location


STRING = "string"  # how TensorFlow and TFLite name a string tensor's dtype
OBJECT_ARRAY_ADVICE = (
    "save strings as bytes or str arrays (np.array(texts, dtype=bytes) or dtype=str), "
    "not dtype=object"
)


def _numpy_dtype(name: str) -> np.dtype[Any]:
    """The numpy dtype of a model input; a string input's values are bytes (UTF-8)."""
    if name == STRING:
        return np.dtype(np.bytes_)
    try:
        return np.dtype(name)
    except TypeError:
        raise DataError(f"cannot generate data for dtype {name!r}") from None


def _dtype_fits(array: np.ndarray, dtype: str) -> bool:
    """Bytes of any width fit a string input; anything else must be the input's dtype."""
    if dtype == STRING:
        return array.dtype.kind == "S"
    return array.dtype == _numpy_dtype(dtype)


def _as_bytes(where: str, array: np.ndarray) -> np.ndarray:
    """Values for a string input as a bytes array: str becomes UTF-8, as TensorFlow encodes it.

    Numeric arrays are left as they are, for `check_feed` to name their dtype. An
    object array (what tf.data's `.numpy()` gives) must hold only bytes and str.
    """
    if array.dtype.kind == "U":
        return np.char.encode(array, "utf-8")
    if array.dtype.kind != "O":
        return array
    values = array.ravel().tolist()
    other = next((v for v in values if not isinstance(v, bytes | str)), None)
    if other is not None:
        raise DataError(
            f"{where}: give bytes or str values for this string input; it holds "
            f"{type(other).__name__}"
        )
    encoded = [v.encode("utf-8") if isinstance(v, str) else v for v in values]
    return np.array(encoded, dtype=np.bytes_).reshape(array.shape)


def _fed_as(where: str, spec: TensorSpec, array: np.ndarray) -> np.ndarray:
    """`array` as the model takes it: only string inputs are converted (to bytes)."""
    return _as_bytes(f"{where}[{spec.name!r}]", array) if spec.dtype == STRING else array


def sample_shape(shape: list[int | None] | list[int]) -> list[int]:
    """The shape of one sample: dynamic dimensions (batch) become 1."""
    return [d if d is not None and d > 0 else 1 for d in shape]


def generate(
    inputs: InputSignature, *, seed: int, count: int, low: float, high: float
) -> list[Feed]:
    """`count` samples uniform in [low, high) (integers: clipped to the dtype)."""
    strings = [spec.name for spec in inputs if spec.dtype == STRING]
    if strings:
        raise DataError(
            "give a .npz of bytes or str arrays, or a module:function generator yielding "
            f"them, for the string input {strings[0]!r}: random strings would not be text "
            "the model knows"
        )
    rng = np.random.default_rng(seed)
    samples: list[Feed] = []
    for _ in range(count):
        feed: Feed = {}
        for spec in inputs:
            name, dtype = spec.name, _numpy_dtype(spec.dtype)
            concrete = sample_shape(spec.shape)
            if dtype == np.bool_:
                feed[name] = rng.integers(0, 2, size=concrete).astype(np.bool_)
            elif np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                lo, hi = max(int(np.floor(low)), info.min), min(int(np.ceil(high)), info.max)
                feed[name] = rng.integers(lo, hi, size=concrete, endpoint=True).astype(dtype)
            else:
                feed[name] = rng.uniform(low, high, size=concrete).astype(dtype)
        samples.append(feed)
    return samples


def _require_regular(path: Path) -> None:
    """Refuse a FIFO or a device before `np.load` opens it: reading one may never end."""
    try:
        require_regular_file(path)
    except SpecialFileError as exc:
        raise DataError(exc.message) from None
    except FileNotFoundError:
        raise DataError(f"{path.name}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path.name}: cannot read ({exc})") from None


def _open_npz(path: Path) -> dict[str, np.ndarray]:
    _require_regular(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path.name}: file not found") from None
    except ValueError as exc:
        raise _refused_load(path, exc, "np.savez", "a NumPy .npz archive") from None
    except Exception as exc:
        raise DataError(f"{path.name}: not a readable .npz ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path.name}: expected a .npz archive of named arrays")
    with archive:
        try:
            return {name: archive[name] for name in archive.files}
        except ValueError as exc:
            raise DataError(
                f"{path.name}: cannot read without unpickling ({exc}); {OBJECT_ARRAY_ADVICE}"
            ) from None


def _open_npy(path: Path) -> np.ndarray:
    _require_regular(path)
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise _refused_load(path, exc, "np.save", "a NumPy .npy file") from None
    except Exception as exc:
        raise DataError(f"{path.name}: not a readable .npy ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path.name}: expected a single array")
    return array


def _refused_load(path: Path, exc: ValueError, writer: str, kind: str) -> DataError:
    """np.load's ValueError in words: an object array (refused, it needs unpickling), a file
    without a NumPy header (text, a pickle...), or a damaged NumPy file."""
    text = str(exc).lower()
    if "object arrays" in text:
        return DataError(
            f"{path.name}: cannot read without unpickling ({exc}); {OBJECT_ARRAY_ADVICE}"
        )
    if "pickled" in text:  # numpy's guess for any file that starts with no known header
        return DataError(
            f"{path.name}: write this file with {writer}; it is not {kind} (it has no NumPy "
            "or zip header, so it may be text or a pickle, and pickles are never loaded)"
        )
    return DataError(f"{path.name}: not a readable {path.suffix or 'NumPy'} file ({exc})")


def _samples_from_arrays(
    where: str, arrays: dict[str, np.ndarray], inputs: InputSignature
) -> list[Feed]:
    """Split sample-major arrays (first axis = samples) into checked feeds."""
    missing = [spec.name for spec in inputs if spec.name not in arrays]
    if missing:
        raise DataError(
            f"{where} has no array for input(s) {', '.join(missing)}; "
            f"it has: {', '.join(arrays) or 'nothing'}"
        )
    arrays = {**arrays, **{spec.name: _fed_as(where, spec, arrays[spec.name]) for spec in inputs}}
    counts = {spec.name: len(arrays[spec.name]) for spec in inputs}
    if len(set(counts.values())) > 1:
        raise DataError(f"{where}: inputs have different sample counts {counts}")
    total = next(iter(counts.values()), 0)
    feeds = [{spec.name: arrays[spec.name][i : i + 1] for spec in inputs} for i in range(total)]
    for feed in feeds[:1]:
        check_feed(where, feed, inputs, sample_axis=True)
    for spec in inputs:
        _check_finite(where, spec.name, arrays[spec.name])
    return feeds


def load_npz(path: Path, inputs: InputSignature, *, limit: int | None = None) -> list[Feed]:
    """Samples from a `.npz` keyed by input name, first axis = samples."""
    feeds = _samples_from_arrays(path.name, _open_npz(path), inputs)
    if not feeds:
        raise DataError(f"{path.name}: no samples")
    return feeds if limit is None else feeds[:limit]


def load_directory(
    path: Path, inputs: InputSignature, *, workspace: Path, limit: int | None = None
) -> list[Feed]:
    """Every `.npz` (and, for single-input models, `.npy`) file in name order.

    The policy confines the directory to the workspace; a link in it must not lead
    out of it either, or a pull request could make the gate read any file it can.
    """
    if not path.is_dir():
        raise DataError(f"{path.name}: not a directory (expected .npy/.npz files in it)")
    files = sorted(p for p in path.iterdir() if p.suffix in {".npz", ".npy"})
    if not files:
        raise DataError(f"{path.name}/ holds no .npy or .npz files")
    root = workspace.resolve()
    feeds: list[Feed] = []
    for file in files:
        where = f"{path.name}/{file.name}"
        if not file.resolve().is_relative_to(root):
            raise DataError(
                f"{where}: replace this link with the file itself; it leads outside the "
                "workspace, and data files must be inside it"
            )
        if file.suffix == ".npz":
            feeds += _samples_from_arrays(where, _open_npz(file), inputs)
        elif len(inputs) != 1:
            raise DataError(
                f"{where}: a .npy file holds one array, but the model has {len(inputs)} inputs; "
                "use .npz files keyed by input name"
            )
        else:
            feeds += _samples_from_arrays(where, {inputs[0].name: _open_npy(file)}, inputs)
        if limit is not None and len(feeds) >= limit:
            return feeds[:limit]
    return feeds


def load_generator(
    factory: str, inputs: InputSignature, *, workspace: Path, limit: int
) -> list[Feed]:
    """Feed dicts from a `package.module:function` generator in the workspace."""
    feeds: list[Feed] = []
    try:
        produced: Iterable[Any] = import_function(factory, workspace)()
        for index, item in enumerate(produced):
            if len(feeds) >= limit:
                break
            feeds.append(_generator_feed(factory, index, item, inputs))
    except DataError:
        raise
    except Exception as exc:
        raise DataError(
            f"the generator {factory} raised {describe_exception(exc)}",
            exception_location(exc, workspace),
        ) from None
    if not feeds:
        raise DataError(f"the generator {factory} yielded no samples")
    return feeds


def _generator_feed(factory: str, index: int, item: Any, inputs: InputSignature) -> Feed:
    where = f"{factory} sample {index}"
    if not isinstance(item, dict):
        raise DataError(
            f"{where}: expected a dict of input name → array, got {type(item).__name__}"
        )
    feed: Feed = {}
    for spec in inputs:
        name, shape = spec.name, spec.shape
        if name not in item:
            raise DataError(f"{where} has no value for input {name!r}; it has: {', '.join(item)}")
        array = _fed_as(where, spec, np.asarray(item[name]))
        if array.ndim == len(shape) - 1:  # a sample without its batch axis
            array = array[np.newaxis]
        feed[name] = array
    check_feed(where, feed, inputs, sample_axis=False)
    for name, array in feed.items():
        _check_finite(where, name, array)
    return feed


def check_feed(where: str, feed: Feed, inputs: InputSignature, *, sample_axis: bool) -> None:
    """Shapes and dtypes against the model's inputs; dynamic dimensions match anything."""
    for spec in inputs:
        name, shape, dtype = spec.name, spec.shape, spec.dtype
        array = feed[name]
        expected = [d if d is not None and d > 0 else None for d in shape]
        got = list(array.shape)
        fits = len(got) == len(expected) and all(
            e is None or e == g for e, g in zip(expected, got, strict=True)
        )
        if not fits:
            shown = [e if e is not None else "?" for e in expected]
            got_shown = got[1:] if sample_axis else got
            exp_shown = shown[1:] if sample_axis else shown
            raise DataError(
                f"{where}[{name!r}] has sample shape {got_shown}, the model expects "
                f"{exp_shown}".replace("'?'", "?")
                + (" (first axis = samples)" if sample_axis else "")
            )
        if not _dtype_fits(array, dtype):
            raise DataError(f"{where}[{name!r}] has dtype {array.dtype}, the model expects {dtype}")


def _check_finite(where: str, name: str, array: np.ndarray) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise DataError(
            f"{where}[{name!r}] contains NaN or Inf; representative data must be finite"
        )


def load_source(
    spec: SourceSpec, inputs: InputSignature, *, workspace: Path, limit: int, seed_offset: int = 0
) -> list[Feed]:
    """Up to `limit` checked samples from one source (`generate.count`, if set, wins)."""
    if spec.kind == "generate":
        count = spec.count if spec.count is not None else limit
        return generate(
            inputs, seed=spec.seed + seed_offset, count=count, low=spec.low, high=spec.high
        )
    if spec.kind == "npz" and spec.path:
        return load_npz(Path(spec.path), inputs, limit=limit)
    if spec.kind == "dir" and spec.path:
        return load_directory(Path(spec.path), inputs, workspace=workspace, limit=limit)
    if spec.kind == "generator" and spec.factory:
        return load_generator(spec.factory, inputs, workspace=workspace, limit=limit)
    raise DataError(f"unknown data source {spec}")


def _shared_source(
    calibration: SourceSpec | None, evaluation: SourceSpec | None
) -> tuple[SourceSpec, bool]:
    """The source to read and whether it serves both calibration and evaluation."""
    if calibration is None and evaluation is None:
        return SourceSpec(kind="generate"), True
    if calibration is not None and evaluation is not None:
        return calibration, False
    shared = calibration or evaluation
    assert shared is not None
    return shared, True


def representative_samples(
    role: str,
    calibration: SourceSpec | None,
    evaluation: SourceSpec | None,
    inputs: InputSignature,
    *,
    samples: int,
    workspace: Path,
) -> list[Feed]:
    """Samples for `role` ("calibration" or "evaluation") that differ from the other role's.

    One source serves both when only one is given: generated data uses the next seed
    for evaluation; files and generators are read for twice the samples and
    interleaved, so a sorted dataset still gives both roles the same spread.
    """
    source, shared = _shared_source(calibration, evaluation)
    if not shared:
        own = calibration if role == "calibration" else evaluation
        assert own is not None
        return load_source(own, inputs, workspace=workspace, limit=samples)
    if source.kind == "generate":
        offset = 0 if role == "calibration" else 1
        return load_source(source, inputs, workspace=workspace, limit=samples, seed_offset=offset)
    loaded = load_source(source, inputs, workspace=workspace, limit=2 * samples)
    if len(loaded) < 2:
        raise DataError(
            f"{len(loaded)} sample(s); one source serving calibration and evaluation needs "
            "at least 2 (give `data.evaluation` its own source, or more samples)"
        )
    return loaded[(0 if role == "calibration" else 1) :: 2][:samples]


def stack(feeds: list[Feed]) -> dict[str, np.ndarray]:
    """Sample-major arrays (sample i is `array[i]`) for the interpreter worker."""
    return {name: np.stack([feed[name] for feed in feeds]) for name in feeds[0]}

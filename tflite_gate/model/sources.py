"""Model sources as facts: which kind a policy entry names, who wrote it, its shapes.

Classifying a source and checking declared input shapes only read names and files,
so the gate does them before any worker starts: a source it cannot classify, or
input shapes the policy gets wrong, are findings at once (a .tflite's inputs are
checked here too). `written_by` reads the versions a file records; the conversion
worker calls it when it loads the model (`model.loader`), so a load failure can
name them (for a SavedModel it needs TensorFlow's protobuf module).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tflite_gate.report.model import SourceKind, WrittenBy
from tflite_gate.run.protocol import TensorSpec
from tflite_gate.tflite.facts import SERVING_KEY

_KIND_BY_SUFFIX: dict[str, SourceKind] = {
    ".keras": "keras",
    ".h5": "h5",
    ".hdf5": "h5",
    ".tflite": "tflite",
}


class SourceError(Exception):
    """A source that cannot be loaded.

    `location` is a workspace file:line when user code raised; `policy_key` names the
    model's policy key at fault (e.g. `input_shapes`) when the policy, not the model,
    must change; `missing_module` the module an import did not find.
    """

    def __init__(
        self,
        message: str,
        location: tuple[str, int] | None = None,
        *,
        policy_key: str | None = None,
        missing_module: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.policy_key = policy_key
        self.missing_module = missing_module


def classify(source: str, resolved: Path | None) -> SourceKind | None:
    """The kind of source; None when a path does not name a supported model file."""
    if resolved is None:
        return "factory"
    if resolved.is_dir():
        return "saved_model"
    return _KIND_BY_SUFFIX.get(resolved.suffix.lower())


def written_by(kind: SourceKind, path: Path) -> WrittenBy | None:
    """The TF/Keras versions recorded in the file, so load failures can name them."""
    try:
        if kind == "keras":
            with zipfile.ZipFile(path) as archive:
                meta = json.loads(archive.read("metadata.json"))
            return WrittenBy(keras=str(meta.get("keras_version")) or None)
        if kind == "h5":
            import h5py

            with h5py.File(path, "r") as handle:
                keras_version = handle.attrs.get("keras_version")
            if isinstance(keras_version, bytes):
                keras_version = keras_version.decode()
            return WrittenBy(keras=str(keras_version) if keras_version else None)
        if kind == "saved_model":
            return WrittenBy(tensorflow=_saved_model_tf_version(path / "saved_model.pb"))
    except Exception:  # a reader failure only loses the hint, never the load itself
        return None
    return None


def _saved_model_tf_version(pb_path: Path) -> str | None:
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(pb_path.read_bytes())
    versions = {g.meta_info_def.tensorflow_version for g in proto.meta_graphs}
    versions.discard("")
    return ", ".join(sorted(versions)) or None


def signature_name(given: str, names: set[str]) -> str:
    """Accept the converted model's tensor name too: `serving_default_x:0` means `x`."""
    if given in names:
        return given
    bare = given.split(":")[0]
    for name in names:
        if bare in (name, f"{SERVING_KEY}_{name}"):
            return name
    return given


def apply_input_shapes(
    specs: list[TensorSpec], input_shapes: dict[str, list[int]]
) -> list[TensorSpec]:
    """Override declared shapes; refuse names the model does not have."""
    by_name = {spec.name: spec for spec in specs}
    for given, shape in input_shapes.items():
        name = signature_name(given, set(by_name))
        if name not in by_name:
            known = ", ".join(sorted(by_name))
            raise SourceError(
                f"input_shapes names {given!r}, but the model's inputs are: {known}",
                policy_key="input_shapes",
            )
        spec = by_name[name]
        if len(shape) != len(spec.shape):
            raise SourceError(
                f"input_shapes[{given!r}] has rank {len(shape)}, the model's input has rank "
                f"{len(spec.shape)} (shape {spec.shape})",
                policy_key="input_shapes",
            )
        by_name[name] = spec.model_copy(update={"shape": list(shape)})
    specs = [by_name[spec.name] for spec in specs]
    for spec in specs:
        if any(dim is None for dim in spec.shape[1:]):
            raise DynamicShapeError(spec)
    return specs


class DynamicShapeError(SourceError):
    """Dimensions other than the batch are unknown and the policy gave no shape.

    The suggestion keeps the batch at 1 (a fixed batch keeps SHAPE/PACK and TensorList
    ops out of the converted model) and puts placeholders where the sizes are unknown:
    any number we picked would convert a model the app never feeds.
    """

    def __init__(self, spec: TensorSpec) -> None:
        shown = ", ".join(str(d) for d in spec.shape)
        placeholders = _placeholders(spec.shape)
        example = ", ".join(
            str(placeholders.get(i, 1 if dim is None else dim)) for i, dim in enumerate(spec.shape)
        )
        names = list(placeholders.values())
        which = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        super().__init__(
            f"input {spec.name!r} has dynamic dimensions [{shown}]; declare them in the "
            f"policy: input_shapes: {{{spec.name}: [{example}]}}, replacing {which} with the "
            "sizes your app feeds (the batch stays 1)",
            policy_key="input_shapes",
        )


def _placeholders(shape: list[int | None]) -> dict[int, str]:
    """Letters for the unknown non-batch dims: H, W for images, D1, D2... otherwise."""
    unknown = [i for i, dim in enumerate(shape) if dim is None and i > 0]
    if len(shape) == 4 and unknown == [1, 2]:
        return {1: "H", 2: "W"}
    if len(shape) == 5 and unknown == [1, 2, 3]:
        return {1: "D", 2: "H", 3: "W"}
    return {i: f"D{i}" for i in unknown}

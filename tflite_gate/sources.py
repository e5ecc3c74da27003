"""Model sources: which kind a policy entry names, who wrote it, and loading it.

The classification and the "written by" readers run without TensorFlow (they
only read files). `load_as_saved_model` runs inside the conversion worker: it
turns every kind of source into one SavedModel directory plus signature key,
saved with debug info so converter errors keep the Python call stack of the op
(the line in the user's own model code we annotate).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tflite_gate.report.model import SourceKind, WrittenBy
from tflite_gate.workspace_code import describe_exception, exception_location, import_function

SERVING_KEY = "serving_default"
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
    must change.
    """

    def __init__(
        self,
        message: str,
        location: tuple[str, int] | None = None,
        *,
        policy_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.policy_key = policy_key


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


# --------------------------------------------------------------------------- in the worker


@dataclass
class InputSpec:
    name: str
    shape: list[int | None]
    dtype: str


@dataclass
class PreparedModel:
    """A SavedModel ready for `TFLiteConverter.from_saved_model`."""

    saved_model_dir: Path
    signature_key: str
    inputs: list[InputSpec]


def _signature_name(given: str, names: set[str]) -> str:
    """Accept the converted model's tensor name too: `serving_default_x:0` means `x`."""
    if given in names:
        return given
    bare = given.split(":")[0]
    for name in names:
        if bare in (name, f"{SERVING_KEY}_{name}"):
            return name
    return given


def _apply_shapes(specs: list[InputSpec], input_shapes: dict[str, list[int]]) -> list[InputSpec]:
    """Override declared shapes; refuse names the model does not have."""
    by_name = {spec.name: spec for spec in specs}
    for given, shape in input_shapes.items():
        name = _signature_name(given, set(by_name))
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
        spec.shape = list(shape)
    for spec in specs:
        if any(dim is None for dim in spec.shape[1:]):
            raise DynamicShapeError(spec)
    return specs


class DynamicShapeError(SourceError):
    """Dimensions other than the batch are unknown and the policy gave no shape."""

    def __init__(self, spec: InputSpec) -> None:
        shown = ", ".join(str(d) for d in spec.shape)
        example = [d if d is not None else 1 for d in spec.shape]
        super().__init__(
            f"input {spec.name!r} has dynamic dimensions [{shown}]; declare them in the "
            f"policy: input_shapes: {{{spec.name}: {example}}}",
            policy_key="input_shapes",
        )


def _spec_dtype(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype))


def _save_keras(model: Any, specs: list[InputSpec], target: Path) -> None:
    import tensorflow as tf
    from keras.export import ExportArchive

    tensor_specs = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs]
    output_names = list(getattr(model, "output_names", None) or [])

    def serve(*args: Any) -> Any:
        outputs = model(list(args) if len(args) > 1 else args[0], training=False)
        if isinstance(outputs, dict):
            return outputs
        if isinstance(outputs, list | tuple):
            names = output_names if len(output_names) == len(outputs) else []
            return {(names[i] if names else f"output_{i}"): out for i, out in enumerate(outputs)}
        return {output_names[0] if len(output_names) == 1 else "output_0": outputs}

    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_KEY, tf.function(serve, input_signature=tensor_specs))
    archive.write_out(
        str(target), options=tf.saved_model.SaveOptions(save_debug_info=True), verbose=False
    )


def _keras_specs(model: Any) -> list[InputSpec]:
    return [
        InputSpec(
            name=str(getattr(t, "name", f"input_{i}")).split(":")[0],
            shape=[None if d is None else int(d) for d in t.shape],
            dtype=_spec_dtype(t.dtype),
        )
        for i, t in enumerate(model.inputs)
    ]


def _function_specs(function: Any) -> list[InputSpec]:
    args, kwargs = function.structured_input_signature
    flat = list(args) + [kwargs[k] for k in sorted(kwargs)]
    specs = []
    for i, spec in enumerate(flat):
        specs.append(
            InputSpec(
                name=spec.name or f"input_{i}",
                shape=[None if d is None else int(d) for d in spec.shape.as_list()],
                dtype=_spec_dtype(spec.dtype),
            )
        )
    return specs


def _save_function(function: Any, owner: Any, specs: list[InputSpec], target: Path) -> None:
    """Re-trace `function` with the resolved specs and save it with debug info."""
    import tensorflow as tf

    tensor_specs = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs]

    def serve(*args: Any) -> Any:
        outputs = function(*args)
        if isinstance(outputs, dict):
            return outputs
        if isinstance(outputs, list | tuple):
            return {f"output_{i}": out for i, out in enumerate(outputs)}
        return {"output_0": outputs}

    module = owner if isinstance(owner, tf.Module) else tf.Module()
    module._gate_serve = tf.function(serve, input_signature=tensor_specs)
    tf.saved_model.save(
        module,
        str(target),
        signatures={SERVING_KEY: module._gate_serve.get_concrete_function()},
        options=tf.saved_model.SaveOptions(save_debug_info=True),
    )


def _concrete_of(candidate: Any) -> tuple[Any, Any] | None:
    """(concrete function, owner) for tf.function / tf.Module / ConcreteFunction returns."""
    import tensorflow as tf

    if isinstance(candidate, tf.types.experimental.ConcreteFunction):
        return candidate, None
    if isinstance(candidate, tf.types.experimental.PolymorphicFunction):
        if candidate.input_signature is None:
            raise SourceError(
                "the factory returned a tf.function without input_signature; "
                "decorate it with @tf.function(input_signature=[tf.TensorSpec(...)])"
            )
        return candidate.get_concrete_function(), None
    if isinstance(candidate, tf.Module):
        call = vars(type(candidate)).get("__call__")
        if isinstance(call, tf.types.experimental.PolymorphicFunction):
            call = candidate.__call__
            found = _concrete_of(call)
            return (found[0], candidate) if found else None
    return None


def _call_factory(source: str, workspace: Path) -> Any:
    module_name, _, _ = source.partition(":")
    try:
        factory = import_function(source, workspace)
    except AttributeError as exc:
        raise SourceError(str(exc)) from None
    except Exception as exc:
        raise SourceError(
            f"cannot import {module_name!r}: {describe_exception(exc)}",
            exception_location(exc, workspace),
        ) from None
    try:
        return factory()
    except Exception as exc:
        raise SourceError(
            f"the factory {source} raised {describe_exception(exc)}",
            exception_location(exc, workspace),
        ) from None


def _load_keras_file(path: Path, kind: SourceKind, safe_mode: bool) -> Any:
    import keras

    if kind == "keras":
        return keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    return keras.saving.load_model(path, compile=False)


def _signature_of_saved_model(path: Path, key: str) -> tuple[Any, Any]:
    import tensorflow as tf

    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise SourceError(
            f"{path.name}/ is a directory without saved_model.pb; point `source` at a "
            "SavedModel directory, a .keras/.h5/.tflite file or a module:function factory"
        )
    loaded = tf.saved_model.load(str(path))
    signatures = dict(loaded.signatures)
    if key not in signatures:
        known = ", ".join(sorted(signatures)) or "none"
        raise SourceError(
            f"the SavedModel has no signature {key!r}; it has: {known}", policy_key="signature"
        )
    return signatures[key], loaded


def load_as_saved_model(
    *,
    kind: SourceKind,
    source: str,
    path: Path | None,
    workspace: Path,
    scratch: Path,
    input_shapes: dict[str, list[int]],
    signature: str | None,
    safe_mode: bool,
) -> PreparedModel:
    """Load any supported source and return a SavedModel the converter can read."""
    import keras

    target = scratch / "saved_model"
    key = signature or SERVING_KEY
    if kind == "saved_model" and path is not None:
        function, owner = _signature_of_saved_model(path, key)
        specs = _function_specs(function)
        if input_shapes:
            specs = _apply_shapes(specs, input_shapes)
            _save_function(function, owner, specs, target)
            return PreparedModel(target, SERVING_KEY, specs)
        _apply_shapes(specs, {})
        return PreparedModel(path, key, specs)

    if kind == "factory":
        candidate = _call_factory(source, workspace)
    else:
        assert path is not None
        candidate = _load_keras_file(path, kind, safe_mode)

    if isinstance(candidate, keras.Model):
        specs = _keras_specs(candidate)
        specs = _apply_shapes(specs, input_shapes)
        _save_keras(candidate, specs, target)
        return PreparedModel(target, SERVING_KEY, specs)
    found = _concrete_of(candidate)
    if found is None:
        raise SourceError(
            f"the factory {source} returned {type(candidate).__module__}."
            f"{type(candidate).__qualname__}; expected a keras.Model, a tf.function with an "
            "input_signature, or a tf.Module whose __call__ is one"
        )
    function, owner = found
    specs = _apply_shapes(_function_specs(function), input_shapes)
    _save_function(function, owner, specs, target)
    return PreparedModel(target, SERVING_KEY, specs)

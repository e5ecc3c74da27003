"""Model sources: which kind a policy entry names, who wrote it, and loading it.

The classification and the "written by" readers run without TensorFlow (they
only read files). `load_as_saved_model` runs inside the conversion worker: it
turns every kind of source into one SavedModel directory plus signature key,
saved with debug info so converter errors keep the Python call stack of the op
(the line in the user's own model code we annotate).
"""

from __future__ import annotations

import inspect
import json
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tflite_gate.model.input_pairing import PairingError, pair_inputs
from tflite_gate.model.workspace_code import (
    LayerSites,
    describe_exception,
    exception_location,
    import_function,
    missing_module,
    module_files,
    recording_layer_sites,
)
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


# --------------------------------------------------------------------------- in the worker


@dataclass
class PreparedModel:
    """A SavedModel ready for `TFLiteConverter.from_saved_model`.

    `data_names`: for a .tflite's reference, its input names → the .tflite's, which the
    evaluation data uses (empty: the data uses the model's own names).
    """

    saved_model_dir: Path
    signature_key: str
    inputs: list[TensorSpec]
    data_names: dict[str, str] = field(default_factory=dict)
    layer_sites: LayerSites = field(default_factory=dict)  # a factory's Keras layers


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


def _spec_dtype(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype))


Pack = Callable[[tuple[Any, ...]], tuple[tuple[Any, ...], dict[str, Any]]]
"""Turns the serving function's flat tensors into the model's call arguments."""


def _pack_flat(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A functional model's call: one tensor, or a list of them in `inputs` order."""
    return (list(args) if len(args) > 1 else args[0],), {}


def _keras_serve(model: Any, pack: Pack) -> Callable[..., Any]:
    """A serving function returning a dict named by the model's outputs."""
    output_names = _output_names(model)

    def serve(*args: Any) -> Any:
        call_args, call_kwargs = pack(args)
        outputs = model(*call_args, training=False, **call_kwargs)
        if isinstance(outputs, dict):
            return outputs
        if isinstance(outputs, list | tuple):
            names = output_names if len(output_names) == len(outputs) else []
            return {(names[i] if names else f"output_{i}"): out for i, out in enumerate(outputs)}
        return {output_names[0] if len(output_names) == 1 else "output_0": outputs}

    return serve


def _output_names(model: Any) -> list[str]:
    try:
        return [str(name) for name in getattr(model, "output_names", None) or []]
    except Exception:  # subclassed models may raise instead of having none
        return []


def _save_keras(model: Any, specs: list[TensorSpec], target: Path, pack: Pack) -> None:
    import tensorflow as tf
    from keras.export import ExportArchive

    tensor_specs = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs]
    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVING_KEY, tf.function(_keras_serve(model, pack), input_signature=tensor_specs)
    )
    archive.write_out(
        str(target), options=tf.saved_model.SaveOptions(save_debug_info=True), verbose=False
    )


def _tensor_specs(tensors: list[Any]) -> list[TensorSpec]:
    return [
        TensorSpec(
            name=str(getattr(t, "name", None) or f"input_{i}").split(":")[0],
            shape=[None if d is None else int(d) for d in t.shape],
            dtype=_spec_dtype(t.dtype),
        )
        for i, t in enumerate(tensors)
    ]


def _keras_specs(model: Any, input_shapes: dict[str, list[int]]) -> tuple[list[TensorSpec], Pack]:
    """The model's inputs: its symbolic `inputs`, else the shapes its build recorded.

    Subclassed Keras 3 models have no `inputs`; calling or building them records the
    argument shapes (`get_build_config()`), which name and shape the inputs here. When
    nothing was recorded, the policy's `input_shapes` must say what the model takes.
    """
    try:
        inputs = list(getattr(model, "inputs", None) or [])
    except Exception:  # a Keras 2 subclassed model raises before it is called
        inputs = []
    if inputs:
        return _tensor_specs(inputs), _pack_flat
    dtype = _spec_dtype(getattr(model, "input_dtype", None) or "float32")
    shapes = _recorded_shapes(model)
    if len(shapes) > 1:
        named = {k.removesuffix("_shape"): v for k, v in shapes.items()}
        return _named_specs(named, dtype), _pack_keywords(list(named))
    if not shapes:
        return _declared_specs(model, input_shapes, dtype)
    (recorded,) = shapes.values()
    parameters = _call_parameters(model)
    if len(parameters) > 1:
        return _positional_specs(model, parameters, input_shapes, dtype)
    first = parameters[:1] or ["input"]
    if _is_shape(recorded):
        return [_build_spec(first[0], recorded, dtype)], _pack_flat
    if isinstance(recorded, dict):
        return _named_specs(recorded, dtype), _pack_dict(list(recorded))
    names = {f"{first[0]}_{i}": shape for i, shape in enumerate(recorded)}
    return _named_specs(names, dtype), _pack_list


def _positional_specs(
    model: Any, parameters: list[str], input_shapes: dict[str, list[int]], dtype: str
) -> tuple[list[TensorSpec], Pack]:
    """`call(self, a, b)`: Keras records only the first argument's shape, so declare all."""
    missing = [name for name in parameters if name not in input_shapes]
    if missing:
        example = ", ".join(f"{name}: [1, ...]" for name in parameters)
        raise SourceError(
            f"{type(model).__qualname__}.call takes {len(parameters)} tensors "
            f"({', '.join(parameters)}) and Keras records the shape of the first only; "
            f"declare them all: input_shapes: {{{example}}}",
            policy_key="input_shapes",
        )
    return _declared_specs(model, {name: input_shapes[name] for name in parameters}, dtype)


def _recorded_shapes(model: Any) -> dict[str, Any]:
    """Build shapes by build argument: as Keras recorded them, else `build`'s defaults.

    Keras records only the arguments passed, so a model built with `model.build()`
    and a default `input_shape=(None, None, None, 3)` (MTCNN's networks) records none;
    its defaults are then what it was built with.
    """
    config = model.get_build_config() if hasattr(model, "get_build_config") else None
    if config and "input_shape" in config:
        return {"input_shape": config["input_shape"]}
    if config and config.get("shapes_dict"):
        return dict(config["shapes_dict"])
    if not getattr(model, "built", False):
        return {}
    try:
        parameters = inspect.signature(model.build).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in parameters
        if p.default is not p.empty and p.default is not None and _is_shape_tree(p.default)
    }


def _is_shape_tree(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value) and all(_is_shape(v) for v in value.values())
    if isinstance(value, list | tuple) and value and not _is_shape(value):
        return all(_is_shape(v) for v in value)
    return _is_shape(value)


def _build_by_calling(model: Any, specs: list[TensorSpec], pack: Pack, workspace: Path) -> None:
    """Create an unbuilt model's variables by calling it once on zeros of the declared shapes."""
    import numpy as np

    zeros = tuple(
        np.zeros([1 if d is None else d for d in spec.shape], dtype=spec.dtype) for spec in specs
    )
    call_args, call_kwargs = pack(zeros)
    try:
        model(*call_args, training=False, **call_kwargs)
    except Exception as exc:
        shapes = ", ".join(f"{spec.name}: {spec.shape}" for spec in specs)
        raise SourceError(
            f"calling {type(model).__qualname__} on zeros of the declared input_shapes "
            f"({shapes}) raised {describe_exception(exc)}",
            exception_location(exc, workspace),
        ) from None


def _is_shape(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(d is None or isinstance(d, int) for d in value)


def _build_spec(name: str, shape: Any, dtype: str) -> TensorSpec:
    """A recorded build shape; its batch is whatever the first call used, so it is left open."""
    dims = [None if d is None else int(d) for d in shape]
    return TensorSpec(name=name, shape=[None, *dims[1:]] if dims else dims, dtype=dtype)


def _named_specs(shapes: dict[str, Any], dtype: str) -> list[TensorSpec]:
    return [_build_spec(str(name), shape, dtype) for name, shape in shapes.items()]


def _pack_list(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (list(args),), {}


def _pack_dict(names: list[str]) -> Pack:
    return lambda args: (({name: arg for name, arg in zip(names, args, strict=True)},), {})


def _pack_keywords(names: list[str]) -> Pack:
    return lambda args: ((), {name: arg for name, arg in zip(names, args, strict=True)})


def _call_parameters(model: Any) -> list[str]:
    """The tensor parameters of `call`, so inputs are named as the model's code names them."""
    try:
        parameters = inspect.signature(model.call).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.default is p.empty
        and p.name not in ("training", "mask")
    ]


def _declared_specs(
    model: Any, input_shapes: dict[str, list[int]], dtype: str
) -> tuple[list[TensorSpec], Pack]:
    """An unbuilt subclassed model: its inputs are exactly what the policy declares."""
    parameters = _call_parameters(model) or ["input"]
    if not input_shapes:
        name = parameters[0]
        raise SourceError(
            f"{type(model).__qualname__} is a subclassed model that was never called or built, "
            f"so it records no input shape; call it once on an example batch in the factory "
            f"(e.g. model(tf.zeros([1, ...]))) or declare input_shapes: {{{name}: [1, ...]}}",
            policy_key="input_shapes",
        )
    specs = [
        TensorSpec(name=name, shape=list(shape), dtype=dtype)
        for name, shape in input_shapes.items()
    ]
    if len(specs) == 1:
        return specs, _pack_flat
    names = [spec.name for spec in specs]
    if set(names) <= set(parameters):
        return specs, _pack_keywords(names)
    return specs, _pack_dict(names)


def _function_specs(function: Any) -> list[TensorSpec]:
    args, kwargs = function.structured_input_signature
    flat = list(args) + [kwargs[k] for k in sorted(kwargs)]
    specs = []
    for i, spec in enumerate(flat):
        specs.append(
            TensorSpec(
                name=spec.name or f"input_{i}",
                shape=[None if d is None else int(d) for d in spec.shape.as_list()],
                dtype=_spec_dtype(spec.dtype),
            )
        )
    return specs


def _save_function(function: Any, owner: Any, specs: list[TensorSpec], target: Path) -> None:
    """Re-trace `function` with the resolved specs and save it with debug info."""

    def serve(*args: Any) -> Any:
        outputs = function(*args)
        if isinstance(outputs, dict):
            return outputs
        if isinstance(outputs, list | tuple):
            return {f"output_{i}": out for i, out in enumerate(outputs)}
        return {"output_0": outputs}

    _write_saved_model(serve, owner, specs, target)


def _write_saved_model(
    serve: Callable[..., Any], owner: Any, specs: list[TensorSpec], target: Path
) -> None:
    """Save `serve` as the serving signature, tracking `owner`'s variables.

    The owner is attached to a fresh module rather than used as the root: a loaded
    SavedModel's root is not a `tf.Module`, and a new root that did not track it would
    export functions capturing untracked variables.
    """
    import tensorflow as tf

    tensor_specs = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs]
    module = tf.Module()
    if owner is not None:
        module.source = owner
    module.gate_serve = tf.function(serve, input_signature=tensor_specs)
    tf.saved_model.save(
        module,
        str(target),
        signatures={SERVING_KEY: module.gate_serve.get_concrete_function()},
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


def _call_factory(source: str, workspace: Path) -> tuple[Any, LayerSites]:
    """What the factory returns, and the lines that created its Keras layers."""
    module_name, _, _ = source.partition(":")
    try:
        factory = import_function(source, workspace)
    except AttributeError as exc:
        raise SourceError(str(exc)) from None
    except Exception as exc:
        raise _factory_error(
            f"cannot import {module_name!r}:", exc, module_name, workspace
        ) from None
    try:
        with recording_layer_sites(workspace) as sites:
            return factory(), sites
    except Exception as exc:
        raise _factory_error(f"the factory {source} raised", exc, module_name, workspace) from None


def _factory_error(what: str, exc: Exception, module_name: str, workspace: Path) -> SourceError:
    """At the factory module's own line; where deeper workspace code (a vendored library)
    raised is named in the message."""
    located = exception_location(exc, workspace, own_files=module_files(module_name, workspace))
    raised = exception_location(exc, workspace)
    deeper = f" (raised at {raised[0]}:{raised[1]})" if raised and raised != located else ""
    missing = missing_module(exc)
    if missing is not None and f"{module_name}.".startswith(f"{missing}."):
        missing = None  # the factory's own module: a wrong `source`, nothing to install
    return SourceError(f"{what} {describe_exception(exc)}{deeper}", located, missing_module=missing)


def _load_keras_file(path: Path, kind: SourceKind, source: str, safe_mode: bool) -> Any:
    """Load with the Keras that wrote the file: Keras 3, or tf-keras for Keras 2 files.

    Keras 3 cannot read much of what Keras 2 wrote (TF-op layers in an .h5, a Keras 2
    `.keras` archive), and even where it can, tf-keras rebuilds the same graph the
    model's own code built. (Factories choose for themselves: under
    `TF_USE_LEGACY_KERAS=1` their `tf.keras` models are tf-keras models.)
    """
    if kind == "h5":
        _refuse_weights_only(path, source)
    if kind == "keras":
        _refuse_broken_archive(path)
    if _written_by_keras2(kind, path):
        return _load_with_tf_keras(path, kind, source, safe_mode)
    import keras

    if kind == "keras":
        return keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    return keras.saving.load_model(path, compile=False)


_LFS_POINTER = b"version https://git-lfs"


def _refuse_broken_archive(path: Path) -> None:
    """Keras calls every .keras it cannot open as a zip "File not found", even one that is
    there but truncated, corrupted, unreadable or a Git LFS pointer: say which it is."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(len(_LFS_POINTER))
        with zipfile.ZipFile(path):
            return
    except OSError as exc:
        raise SourceError(
            f"cannot read the file ({exc.strerror or exc}); make it readable by the user that "
            "runs the gate"
        ) from None
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
    if head == _LFS_POINTER:
        raise SourceError(
            "a Git LFS pointer, not the model: fetch the LFS files before the gate runs "
            "(actions/checkout with `lfs: true`, or `git lfs pull`)"
        )
    raise SourceError(
        f"not a valid .keras archive (truncated or corrupted): {reason}; save the model "
        "again with model.save() and commit the whole file"
    )


def _written_by_keras2(kind: SourceKind, path: Path) -> bool:
    recorded = written_by(kind, path)
    return bool(recorded and recorded.keras and recorded.keras.startswith("2."))


def _load_with_tf_keras(path: Path, kind: SourceKind, source: str, safe_mode: bool) -> Any:
    try:
        import tf_keras
    except ImportError as exc:
        raise SourceError(
            f"{source} was written by Keras 2, which this TensorFlow reads only through "
            f"tf-keras: {_tf_keras_fix(exc)}"
        ) from None
    if kind == "keras":
        return tf_keras.models.load_model(path, compile=False, safe_mode=safe_mode)
    return tf_keras.models.load_model(path, compile=False)


def _tf_keras_fix(exc: BaseException) -> str:
    """What to install: the tf-keras release made for the installed TensorFlow."""
    import tensorflow as tf

    minor = ".".join(tf.__version__.split(".")[:2])
    reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return (
        f"pip install 'tf-keras=={minor}.*' (the Keras 2 package for TensorFlow {minor}; {reason})"
    )


def _refuse_weights_only(path: Path, source: str) -> None:
    """An .h5 without a model config holds weights only: there is nothing to convert."""
    try:
        import h5py

        with h5py.File(path, "r") as handle:
            has_model = "model_config" in handle.attrs
    except Exception:  # not HDF5 at all: let the loader say what is wrong with it
        return
    if not has_model:
        raise SourceError(
            f"{source} holds only weights (written by save_weights), not the model's "
            "architecture; point `source` at a module:function factory that builds the "
            f'model and loads them: `model = build_model()` then `model.load_weights("{source}")`'
            ", and return the model"
        )


def _signature_of_saved_model(path: Path, key: str, source: str) -> tuple[Any, Any]:
    import tensorflow as tf

    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise SourceError(
            f"{path.name}/ is a directory without saved_model.pb; point `source` at a "
            "SavedModel directory, a .keras/.h5/.tflite file or a module:function factory"
        )
    try:
        loaded = tf.saved_model.load(str(path))
    except AttributeError as exc:
        # TensorFlow revives a Keras 2 optimizer through tf-keras; without it the optimizer
        # becomes a plain object and restoring its slot variables fails on `add_slot`.
        if "add_slot" not in str(exc):
            raise
        raise SourceError(_keras2_saved_model_fix(source)) from None
    signatures = dict(loaded.signatures)
    if key not in signatures:
        known = ", ".join(sorted(signatures)) or "none"
        raise SourceError(
            f"the SavedModel has no signature {key!r}; it has: {known}", policy_key="signature"
        )
    return signatures[key], loaded


def _keras2_saved_model_fix(source: str) -> str:
    try:
        import tf_keras  # noqa: F401
    except ImportError as exc:
        missing = _tf_keras_fix(exc)
    else:
        missing = "tf-keras imports here but did not revive the optimizer"
    return (
        f"{source} holds a Keras 2 optimizer that TensorFlow restores only through tf-keras: "
        f"{missing}; or re-export it once without the optimizer, with the Keras 2 that "
        "loads it: model.save(new_path, include_optimizer=False, save_format='tf')"
    )


def _keras_kind(candidate: Any) -> str | None:
    """ "keras" for a Keras 3 model, "tf_keras" for a Keras 2 one, else None.

    tf-keras is only looked up if something already imported it (a legacy file, or a
    factory under TF_USE_LEGACY_KERAS), so no one else pays for importing it.
    """
    import keras

    if isinstance(candidate, keras.Model):
        return "keras"
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is not None and isinstance(candidate, tf_keras.Model):
        return "tf_keras"
    return None


def _paired_shapes(
    specs: list[TensorSpec], input_shapes: dict[str, list[int]], input_map: dict[str, str] | None
) -> tuple[dict[str, list[int]], dict[str, str]]:
    """`input_shapes` by the model's own input names, and own name → the data's name.

    Without `input_map` the shapes already use the model's names. With one, the model
    is a .tflite's reference: `input_shapes` names every input of the .tflite, in its
    order, and pairs with the model's inputs by name, the map, or position.
    """
    if input_map is None:
        return input_shapes, {}
    try:
        pairs = pair_inputs(list(input_shapes), [spec.name for spec in specs], input_map)
    except PairingError as error:
        raise SourceError(error.message, policy_key=error.policy_key) from None
    shapes = {pairs.names[name]: shape for name, shape in input_shapes.items()}
    return shapes, {theirs: ours for ours, theirs in pairs.names.items()}


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
    input_map: dict[str, str] | None = None,
) -> PreparedModel:
    """Load any supported source and return a SavedModel the converter can read.

    `input_map` (a .tflite's reference only): see `_paired_shapes`.
    """
    target = scratch / "saved_model"
    key = signature or SERVING_KEY
    if kind == "saved_model" and path is not None:
        function, owner = _signature_of_saved_model(path, key, source)
        specs = _function_specs(function)
        shapes, names = _paired_shapes(specs, input_shapes, input_map)
        if shapes:
            specs = apply_input_shapes(specs, shapes)
            _save_function(function, owner, specs, target)
            return PreparedModel(target, SERVING_KEY, specs, names)
        apply_input_shapes(specs, {})
        return PreparedModel(path, key, specs)

    sites: LayerSites = {}
    if kind == "factory":
        candidate, sites = _call_factory(source, workspace)
    else:
        assert path is not None
        candidate = _load_keras_file(path, kind, source, safe_mode)

    keras_kind = _keras_kind(candidate)
    if keras_kind is not None:
        specs, pack = _keras_specs(candidate, input_shapes)
        shapes, names = _paired_shapes(specs, input_shapes, input_map)
        specs = apply_input_shapes(specs, shapes)
        if not getattr(candidate, "built", True):
            _build_by_calling(candidate, specs, pack, workspace)
        if keras_kind == "keras":
            _save_keras(candidate, specs, target, pack)
        else:
            _write_saved_model(
                _keras_serve(candidate, pack), list(candidate.variables), specs, target
            )
        return PreparedModel(target, SERVING_KEY, specs, names, sites)
    found = _concrete_of(candidate)
    if found is None:
        raise SourceError(
            f"the factory {source} returned {type(candidate).__module__}."
            f"{type(candidate).__qualname__}; expected a keras.Model, a tf.function with an "
            "input_signature, or a tf.Module whose __call__ is one"
        )
    function, owner = found
    specs = _function_specs(function)
    shapes, names = _paired_shapes(specs, input_shapes, input_map)
    specs = apply_input_shapes(specs, shapes)
    _save_function(function, owner, specs, target)
    return PreparedModel(target, SERVING_KEY, specs, names)

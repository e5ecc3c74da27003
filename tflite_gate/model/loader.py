"""Inside the conversion worker: any supported source loaded and exported for the converter.

`load_as_saved_model` turns a `.keras`/`.h5` file (with Keras 3, or tf-keras for what
Keras 2 wrote), a SavedModel directory or a `module:function` factory into one
SavedModel directory plus signature key (`model.export`). What goes wrong is a
`SourceError` that says what to change: the policy key at fault, the workspace line
that raised, or the package to install.
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tflite_gate.model.export import keras_serve, save_function, save_keras, write_saved_model
from tflite_gate.model.input_pairing import PairingError, pair_inputs
from tflite_gate.model.signatures import build_by_calling, function_specs, keras_specs
from tflite_gate.model.sources import SourceError, apply_input_shapes, written_by
from tflite_gate.model.workspace_code import (
    LayerSites,
    describe_exception,
    exception_location,
    import_function,
    missing_module,
    module_files,
    recording_layer_sites,
)
from tflite_gate.report.model import SourceKind
from tflite_gate.run.protocol import TensorSpec
from tflite_gate.tflite.facts import SERVING_KEY


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
        specs = function_specs(function)
        shapes, names = _paired_shapes(specs, input_shapes, input_map)
        if shapes:
            specs = apply_input_shapes(specs, shapes)
            save_function(function, owner, specs, target)
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
        specs, pack = keras_specs(candidate, input_shapes)
        shapes, names = _paired_shapes(specs, input_shapes, input_map)
        specs = apply_input_shapes(specs, shapes)
        if not getattr(candidate, "built", True):
            build_by_calling(candidate, specs, pack, workspace)
        if keras_kind == "keras":
            save_keras(candidate, specs, target, pack)
        else:
            write_saved_model(
                keras_serve(candidate, pack), list(candidate.variables), specs, target
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
    specs = function_specs(function)
    shapes, names = _paired_shapes(specs, input_shapes, input_map)
    specs = apply_input_shapes(specs, shapes)
    save_function(function, owner, specs, target)
    return PreparedModel(target, SERVING_KEY, specs, names)

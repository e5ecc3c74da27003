"""Inside the conversion worker: a model written as the SavedModel the converter reads.

Every kind of source becomes one SavedModel with one serving signature
(`SERVING_KEY`) returning a dict of named outputs, saved with debug info so that
converter errors keep the Python call stack of each op: the line in the user's own
model code the gate annotates.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tflite_gate.model.signatures import Pack
from tflite_gate.run.protocol import TensorSpec
from tflite_gate.tflite.facts import SERVING_KEY


def keras_serve(model: Any, pack: Pack) -> Callable[..., Any]:
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


def save_keras(model: Any, specs: list[TensorSpec], target: Path, pack: Pack) -> None:
    """Export a Keras 3 model through its own `ExportArchive`, which tracks its variables
    the way Keras saves them, with the serving signature built from `specs`."""
    import tensorflow as tf
    from keras.export import ExportArchive

    tensor_specs = [tf.TensorSpec(s.shape, s.dtype, name=s.name) for s in specs]
    archive = ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVING_KEY, tf.function(keras_serve(model, pack), input_signature=tensor_specs)
    )
    archive.write_out(
        str(target), options=tf.saved_model.SaveOptions(save_debug_info=True), verbose=False
    )


def save_function(function: Any, owner: Any, specs: list[TensorSpec], target: Path) -> None:
    """Re-trace `function` with the resolved specs and save it with debug info."""

    def serve(*args: Any) -> Any:
        outputs = function(*args)
        if isinstance(outputs, dict):
            return outputs
        if isinstance(outputs, list | tuple):
            return {f"output_{i}": out for i, out in enumerate(outputs)}
        return {"output_0": outputs}

    write_saved_model(serve, owner, specs, target)


def write_saved_model(
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

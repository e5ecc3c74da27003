"""Inside the conversion worker: the inputs a model takes, as `TensorSpec`s.

A functional Keras model names its inputs; a subclassed one only records the shapes
it was built or called with, and its `call` says how the tensors are passed (one,
a list, a dict, keywords). A `tf.function` has its input signature. The specs found
here are what the SavedModel is exported with and what the data is made for; `Pack`
turns the flat tensors of a serving call back into the model's own call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tflite_gate.model.sources import SourceError
from tflite_gate.model.workspace_code import describe_exception, exception_location
from tflite_gate.run.protocol import TensorSpec


def _spec_dtype(dtype: Any) -> str:
    return str(getattr(dtype, "name", dtype))


Pack = Callable[[tuple[Any, ...]], tuple[tuple[Any, ...], dict[str, Any]]]
"""Turns the serving function's flat tensors into the model's call arguments."""


def _pack_flat(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A functional model's call: one tensor, or a list of them in `inputs` order."""
    return (list(args) if len(args) > 1 else args[0],), {}


def _tensor_specs(tensors: list[Any]) -> list[TensorSpec]:
    return [
        TensorSpec(
            name=str(getattr(t, "name", None) or f"input_{i}").split(":")[0],
            shape=[None if d is None else int(d) for d in t.shape],
            dtype=_spec_dtype(t.dtype),
        )
        for i, t in enumerate(tensors)
    ]


def keras_specs(model: Any, input_shapes: dict[str, list[int]]) -> tuple[list[TensorSpec], Pack]:
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


def build_by_calling(model: Any, specs: list[TensorSpec], pack: Pack, workspace: Path) -> None:
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


def function_specs(function: Any) -> list[TensorSpec]:
    """A concrete function's inputs, positional then keyword (sorted, as TensorFlow
    flattens them), so the exported signature takes them in the order it was traced."""
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

"""The request the gate sends the interpreter worker and the result it gets back.

The gate validates both dataclasses with pydantic (strictly, as JSON gives them);
the worker has no pydantic, so `checked` reads the same annotations with checks of
its own. Both ends must agree on every payload (a property test holds them to it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class InterpreterRequest:
    """What the gate asks for: a model, the runtime module, and where each file goes."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}  # for the gate

    model: str
    module: str
    inputs: str
    outputs: str
    result: str
    status: str
    num_threads: int = 1
    batch: int = 1
    latency_runs: int = 0  # timed invokes on the first sample after the outputs; 0: none
    latency_threads: int = 0  # threads for the timed invokes; 0: num_threads
    custom_op_registerers: list[str] = field(default_factory=list)
    custom_op_libraries: list[str] = field(default_factory=list)
    pythonpath: list[str] = field(default_factory=list)


@dataclass
class InterpreterResult:
    """What the worker found: outputs written (`ok`), or the phase and sample that failed."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    ok: bool
    samples: int = 0
    runtime_version: str | None = None
    outputs: list[str] = field(default_factory=list)
    input_names: list[str] = field(default_factory=list)
    ragged: dict[str, list[str]] = field(default_factory=dict)
    batched: bool = False
    latency_ms: float | None = None  # median of the timed invokes
    phase: str | None = None
    sample: int | None = None
    error: str | None = None
    kind: str | None = None
    unresolved_custom_ops: list[str] = field(default_factory=list)


class SchemaError(ValueError):
    """A message that does not fit its dataclass: which field, and what was expected."""


class _Check:
    """A field's annotation as a check; `a | None` and `list[...]` build bigger ones."""

    def __init__(self, name: str, test: Any) -> None:
        self.name, self.test = name, test

    def __or__(self, other: _Check | None) -> _Check:
        right = _NONE if other is None else other
        return _Check(f"{self.name} | {right.name}", lambda v: self.test(v) or right.test(v))

    def __getitem__(self, arguments: Any) -> _Check:
        if self.name == "list":
            item = arguments
            return _Check(f"list[{item.name}]", lambda v: _is_list(v, item))
        key, value = arguments
        return _Check(f"dict[{key.name}, {value.name}]", lambda v: _is_dict(v, key, value))


def _is_list(value: Any, item: _Check) -> bool:
    return isinstance(value, list) and all(item.test(v) for v in value)


def _is_dict(value: Any, key: _Check, item: _Check) -> bool:
    return isinstance(value, dict) and all(key.test(k) and item.test(v) for k, v in value.items())


_NONE = _Check("None", lambda v: v is None)
# bool is an int in Python, not in JSON's schema: an int field refuses true and false.
_ANNOTATIONS = {
    "str": _Check("str", lambda v: isinstance(v, str)),
    "int": _Check("int", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": _Check("bool", lambda v: isinstance(v, bool)),
    "float": _Check("float", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "list": _Check("list", lambda v: isinstance(v, list)),
    "dict": _Check("dict", lambda v: isinstance(v, dict)),
}


def checked(kind: Any, raw: Any) -> Any:
    """`raw` (parsed JSON) as a `kind` dataclass, or SchemaError naming the field at fault.

    The annotations are strings (postponed evaluation); they are read with the checks
    above, which needs neither pydantic nor a Python that can subscript `list`.
    """
    if not isinstance(raw, dict):
        raise SchemaError(f"{kind.__name__}: expected an object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SchemaError(f"{kind.__name__}: unknown field(s) {', '.join(unknown)}")
    for name, spec in fields.items():
        required = (
            spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        )
        if name not in raw:
            if required:
                raise SchemaError(f"{kind.__name__}.{name}: required")
            continue
        check = eval(str(spec.type), {"__builtins__": {}}, _ANNOTATIONS)
        if not check.test(raw[name]):
            got = type(raw[name]).__name__
            raise SchemaError(f"{kind.__name__}.{name}: expected {check.name}, got {got}")
    return kind(**raw)

"""Policy errors at their line: pydantic's validation errors said as what to write, where.

A policy error must name the file, line and column and say what was expected. Pydantic
reports a path through the models, with union branches labelled in it; this module
keeps the part that names data in the file, finds that data's position, and words
the message as the fix.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from tflite_gate.findings import Location
from tflite_gate.policy.positions import PathKey, SourceMap, dotted, mark_to_location
from tflite_gate.policy.schema import (
    DATA_SOURCE_EXPECTED,
    MAX_SAMPLES,
    EmptyKeyError,
    PathError,
    Policy,
    UnquotedVersionError,
)


@dataclass(frozen=True)
class PolicyIssue:
    """One thing wrong with the policy, where it is written (the file alone when unknown)."""

    path: str
    line: int | None
    column: int | None
    message: str

    @classmethod
    def at(cls, location: Location, message: str) -> PolicyIssue:
        """The issue at `location`, a place in the policy file."""
        return cls(location.path, location.line, location.column, message)

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.message}"


class PolicyError(Exception):
    """The policy cannot be used; each issue says where and what was expected."""

    def __init__(self, issues: list[PolicyIssue]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types behind Optional/Union/Annotated/list/dict at one step."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_class_at(path: PathKey) -> type[BaseModel] | None:
    """Which pydantic model describes the mapping at `path` (for "expected one of")."""
    current: list[Any] = [Policy]
    for part in path:
        following: list[Any] = []
        for candidate in current:
            origin = typing.get_origin(candidate)
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                if isinstance(part, str) and part in candidate.model_fields:
                    following.extend(_unwrap(candidate.model_fields[part].annotation))
            elif origin is list and isinstance(part, int):
                following.extend(_unwrap(typing.get_args(candidate)[0]))
            elif origin is dict and isinstance(part, str):
                following.extend(_unwrap(typing.get_args(candidate)[1]))
        current = following
    for candidate in current:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


# What to write when a value has another type than the key takes (no coercion: see _Strict).
_TYPE_ADVICE = {
    "float_type": "write a number",
    "int_type": "write a whole number",
    "bool_type": "write true or false",
    "string_type": "write text (in quotes when YAML would read it as a number or true/false)",
}
# Errors of either branch of a `DataSource` when the value fits neither.
_DATA_SOURCE_ERRORS = {"value_error", "string_type", "model_type", "dict_type"}


def _describe(error: Any, path: PathKey, written: str | None) -> str:
    """The message for one validation error; `written` is the value's text in the file."""
    kind = error["type"]
    given = error.get("input")
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, UnquotedVersionError) and written is not None:
        return f"{dotted(path)}: {cause.advice(written)}"
    if kind == "extra_forbidden":
        key = str(path[-1])
        owner = _model_class_at(path[:-1])
        known = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        expected = f"; expected one of {', '.join(known)}" if known else ""
        return f"{dotted(path)}: unknown key {key!r}{hint}{expected}"
    if kind == "missing":
        return f"{dotted(path[:-1]) or 'policy'}: missing required key {path[-1]!r}"
    if kind == "literal_error":
        expected = error["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"{dotted(path)}: expected one of {expected}, got {given!r}"
    if path[-1:] in (("calibration",), ("evaluation",)) and kind in _DATA_SOURCE_ERRORS:
        return f"{dotted(path)}: {DATA_SOURCE_EXPECTED}, got {given!r}"
    if kind == "value_error":
        return f"{dotted(path) or 'policy'}: {error['ctx']['error']}"
    if kind == "finite_number":
        return f"{dotted(path)}: write a finite number here (not .nan or .inf), got {given!r}"
    if kind in _TYPE_ADVICE:
        number = kind in {"float_type", "int_type"}
        unquote = " without quotes" if number and isinstance(given, str) else ""
        return f"{dotted(path)}: {_TYPE_ADVICE[kind]}{unquote}, got {given!r}"
    if kind == "less_than_equal" and path[-1:] in (("count",), ("samples",)):
        return (
            f"{dotted(path)}: use at most {MAX_SAMPLES} samples (each is run through every "
            f"variant on every runtime), got {given!r}"
        )
    if kind == "string_pattern_mismatch" and path and path[-1] == "name":
        return (
            f"{dotted(path)}: {given!r} is not a valid name "
            "(letters, digits, '_', '-', '.'; must start with a letter or digit)"
        )
    message = error["msg"]
    message = message[0].lower() + message[1:]
    return f"{dotted(path) or 'policy'}: {message}, got {given!r}"


def _looks_like_union_tag(part: Any) -> bool:
    """Pydantic labels union branches in `loc` (`str`, `GenerateSource`, `constrained-str`)."""
    if not isinstance(part, str):
        return False
    builtin = part in {"str", "int", "float", "bool", "list", "dict"}
    return builtin or part[:1].isupper() or "[" in part or "-" in part


def _data_path(loc: tuple[Any, ...], source_map: SourceMap) -> tuple[PathKey, bool]:
    """Keep the parts of pydantic's `loc` that name real data, dropping union labels.

    Also says whether a union label was dropped (the error is one union branch's).
    """
    path: list[str | int] = []
    dropped = False
    for position, part in enumerate(loc):
        candidate = (*path, part)
        exists = candidate in source_map.values or candidate in source_map.keys
        last = position == len(loc) - 1
        if exists or (last and not _looks_like_union_tag(part)):
            path.append(part)
        else:
            dropped = True
    return tuple(path), dropped


def issues_from_validation(
    exc: ValidationError, source_map: SourceMap, display_path: str
) -> list[PolicyIssue]:
    """Each validation error once, at the line of the value (or key) it is about."""
    issues: list[PolicyIssue] = []
    seen_paths: set[PathKey] = set()
    errors: list[tuple[Any, PathKey, bool]] = []
    for error in exc.errors():
        path, in_union = _data_path(error["loc"], source_map)
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, PathError):
            path = (*path, *cause.subpath)
        errors.append((error, path, in_union))
    branch_paths = [path for _, path, in_union in errors if in_union]
    for error, path, in_union in errors:
        if path in seen_paths:  # a union reports once per branch; the first is enough
            continue
        if in_union and any(len(p) > len(path) and p[: len(path)] == path for p in branch_paths):
            continue  # another union branch got further into the value: its error says more
        seen_paths.add(path)
        empty = isinstance(error.get("ctx", {}).get("error"), EmptyKeyError)
        key_like = error["type"] == "extra_forbidden" or empty
        mark = source_map.nearest(path, prefer_key=key_like)
        message = _describe(error, path, source_map.texts.get(path))
        issues.append(PolicyIssue.at(mark_to_location(display_path, mark), message))
    return issues

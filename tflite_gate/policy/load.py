"""The policy file: schema, loading with positions, and per-model resolution.

A policy error must name the file, line and column and say what was expected,
and must come back in well under a second: nothing here imports TensorFlow.
Settings in `defaults` are inherited by every model, key by key; the resolved
settings remember where they were written so findings can point a reviewer at
the exact line to change.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tflite_gate.findings import Location
from tflite_gate.policy.positions import Mark, PathKey, SourceMap, YamlError, load_yaml_with_marks
from tflite_gate.run.runtimes import looks_like_path
from tflite_gate.support.workspace_files import (
    SpecialFileError,
    require_regular_file,
    unreadable_message,
)
from tflite_gate.tflite.runtime_versions import parse_runtime_version

DEFAULT_POLICY_FILE = "tflite-gate.yml"
SCHEMA_VERSION = 1

Quantization = Literal["none", "dynamic", "float16", "int8", "int16x8"]
IoType = Literal["float32", "int8", "uint8", "int16"]
FailOn = Literal["error", "warning"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")


class _PathError(ValueError):
    """A validator's error about one item below the validated value (a key, an index)."""

    def __init__(self, message: str, subpath: PathKey) -> None:
        super().__init__(message)
        self.subpath = subpath


class _UnquotedVersionError(_PathError):
    """A version YAML read as a number: the fix quotes the text as the user wrote it."""

    def __init__(self, key: str, number: float) -> None:
        self.key, self.number = key, number
        super().__init__(self.advice(str(number)), (key,))

    def advice(self, written: str) -> str:
        """What to write instead of `written` (2.10, which YAML read as 2.1)."""
        if self.key == "target_runtime":
            how, fix = "write the version in quotes", f'"{written}"'
        else:
            how, fix = "write the version as a quoted specifier", f'"=={written}.*"'
        read = "as a number" if str(self.number) == written else f"as the number {self.number}"
        return f"{how} ({self.key}: {fix}): YAML reads {written} unquoted {read}"


class _EmptyKeyError(_PathError):
    """A key written with no value: YAML reads it as null, which the gate never takes as unset."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"write a value under {key}: or delete the line; an empty key is null, not the default",
            (key,),
        )


class _Strict(BaseModel):
    """Values are taken in the JSON schema's types only: "0.9999" is text, not a number.

    A key is either absent (its default) or has a value: `variants:` left empty would
    otherwise mean the default, one float variant, without a word.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_empty_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            names = {field.alias or name for name, field in cls.model_fields.items()}
            for key, value in data.items():
                if value is None and key in names:
                    raise _EmptyKeyError(key)
        return data


def _whole_number(value: Any) -> Any:
    """2.0 as 2: a JSON schema (and so an editor) counts it an integer, and so does the gate."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Written after a Field's bounds: bounds after it reach the schema as unknown `ge`
# keywords instead of `minimum`.
WHOLE = BeforeValidator(_whole_number)
# Every sample goes through the source model and every variant on every runtime: the
# bound keeps a typo (count: 10000000) from holding a run for minutes.
MAX_SAMPLES = 100_000
SampleCount = Annotated[int, Field(ge=1, le=MAX_SAMPLES), WHOLE]


class OpsPolicy(_Strict):
    allow: list[str] | None = None
    deny: list[str] | None = None
    select_tf_ops: bool | None = None
    custom: list[str] | None = None

    @field_validator("allow", "deny")
    @classmethod
    def _upper_builtin_names(cls, names: list[str] | None) -> list[str] | None:
        return None if names is None else [name.strip().upper() for name in names]


class Thresholds(_Strict):
    max_abs: Annotated[FiniteFloat, Field(ge=0)] | None = None
    mean_abs: Annotated[FiniteFloat, Field(ge=0)] | None = None
    rmse: Annotated[FiniteFloat, Field(ge=0)] | None = None
    rel_rmse: Annotated[FiniteFloat, Field(ge=0)] | None = None
    min_cosine: Annotated[FiniteFloat, Field(ge=-1, le=1)] | None = None
    min_snr_db: FiniteFloat | None = None
    min_top1: Annotated[FiniteFloat, Field(ge=0, le=1)] | None = None


class Divergence(Thresholds):
    per_output: dict[str, Thresholds] | None = None


class GenerateSpec(_Strict):
    seed: Annotated[int, Field(ge=0), WHOLE] = 0  # NumPy takes no negative seed
    count: SampleCount | None = None  # default: `data.samples`
    low: FiniteFloat = -1.0
    high: FiniteFloat = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> GenerateSpec:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be smaller than high ({self.high})")
        if not math.isfinite(self.high - self.low):  # numpy cannot draw from such a range
            raise ValueError(
                f"narrow the range: high - low ({self.high} - {self.low}) must be a finite number"
            )
        return self


class GenerateSource(_Strict):
    generate: GenerateSpec


DATA_SOURCE_EXPECTED = (
    "expected a .npz file, a directory of .npy/.npz files, a package.module:function "
    "generator, or a mapping {generate: {seed, count, low, high}}"
)


def _data_source_text(value: str) -> str:
    """A .npz file, a generator `module:function`, or a directory (no file suffix)."""
    if value.endswith((".npz", "/")) or is_factory(value) or not Path(value).suffix:
        return value
    raise ValueError(DATA_SOURCE_EXPECTED)


DataSource = Annotated[str, AfterValidator(_data_source_text)] | GenerateSource


class DataPolicy(_Strict):
    calibration: DataSource | None = None
    evaluation: DataSource | None = None
    samples: SampleCount | None = None


class Limits(_Strict):
    timeout_s: Annotated[FiniteFloat, Field(gt=0)] | None = None
    interpreter_timeout_s: Annotated[FiniteFloat, Field(gt=0)] | None = None
    memory_mb: Annotated[int, Field(ge=256), WHOLE] | None = None
    num_threads: Annotated[int, Field(ge=1), WHOLE] | None = None


BudgetSeverity = Literal["error", "warning", "notice"]


class Budgets(_Strict):
    """What a variant may cost on the device: bytes, and milliseconds per invoke."""

    max_size_bytes: Annotated[int, Field(ge=1), WHOLE] | None = None
    max_latency_ms: Annotated[FiniteFloat, Field(gt=0)] | None = None
    latency_runs: Annotated[int, Field(ge=1, le=10_000), WHOLE] | None = None
    num_threads: Annotated[int, Field(ge=1), WHOLE] | None = None
    latency_severity: BudgetSeverity | None = None


# The schema's pattern and the loader's parse are one: what an editor accepts, the gate does.
SHARE_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?%\s*$"


def _share(value: Any) -> Any:
    """`10%` or `0.1` → 0.1: how much larger a value may get than the baseline's."""
    if isinstance(value, str):
        if not re.match(SHARE_PATTERN, value):
            raise ValueError(
                f"write a share as a percentage (10%) or a number (0.1), got {value!r}"
            )
        return float(value.strip()[:-1]) / 100
    return value


Share = Annotated[
    FiniteFloat,
    Field(ge=0),
    BeforeValidator(_share),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": SHARE_PATTERN},
            ],
            "description": "A share of the baseline's value: 10% or 0.1.",
        }
    ),
]


class Regression(_Strict):
    """What may change since the baseline report (`check --baseline`)."""

    max_size_increase: Share | None = None
    allow_new_ops: bool | None = None
    allow_min_runtime_increase: bool | None = None
    max_metric_worsening: Share | None = None


_SYMBOL_PATTERN = re.compile(r"^[A-Za-z_]\w*$")


def _registerer(value: str) -> str:
    """A C symbol LiteRT looks up in the process, or a Python `package.module:function`."""
    if _SYMBOL_PATTERN.match(value) or _FACTORY_PATTERN.match(value):
        return value
    raise ValueError(
        f"{value!r} is not a custom-op registerer: give a C function name "
        "(RegisterMyOps) or a Python function package.module:function"
    )


class RuntimeEntry(_Strict):
    requirement: Annotated[str, Field(min_length=1)]
    with_: list[str] = Field(default_factory=list, alias="with")
    module: str | None = None
    custom_op_registerers: list[Annotated[str, AfterValidator(_registerer)]] = Field(
        default_factory=list
    )
    custom_op_libraries: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    @model_validator(mode="after")
    def _libraries_need_registerers(self) -> RuntimeEntry:
        if self.custom_op_libraries and not self.custom_op_registerers:
            raise _PathError(
                "custom_op_libraries are only loaded for custom_op_registerers: name the "
                "registerer functions the libraries define",
                ("custom_op_libraries",),
            )
        return self


RuntimeItem = Annotated[str, Field(min_length=1)] | RuntimeEntry


class KeepFloatSpec(_Strict):
    """Selective quantization: these ops of a full-integer variant stay in float."""

    nodes: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    ops: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)

    @field_validator("ops")
    @classmethod
    def _upper_op_names(cls, names: list[str]) -> list[str]:
        return [name.strip().upper() for name in names]


class VariantSpec(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    quantization: Quantization = "none"
    io: IoType = "float32"
    max_divergence: Divergence | None = None
    keep_float: KeepFloatSpec | None = None

    @model_validator(mode="after")
    def _keep_float_needs_int8(self) -> VariantSpec:
        if self.keep_float is not None and self.quantization != "int8":
            raise _PathError(
                "keep_float needs quantization int8 (full-integer, where the converter can "
                f"leave ops in float), got {self.quantization!r}",
                ("keep_float",),
            )
        return self

    @model_validator(mode="after")
    def _io_fits_quantization(self) -> VariantSpec:
        allowed = {"int8": {"float32", "int8", "uint8"}, "int16x8": {"float32", "int16"}}
        if self.io not in allowed.get(self.quantization, {"float32"}):
            raise _PathError(
                f"io {self.io!r} needs quantization "
                f"{'int16x8' if self.io == 'int16' else 'int8'}, got {self.quantization!r}",
                ("io",),
            )
        return self


class Settings(_Strict):
    """Keys that `defaults` and each model share; a model's value wins."""

    ops: OpsPolicy | None = None
    versions: dict[str, str] | None = None
    max_divergence: Divergence | None = None
    data: DataPolicy | None = None
    limits: Limits | None = None
    budgets: Budgets | None = None
    regression: Regression | None = None
    runtimes: Annotated[list[RuntimeItem], Field(min_length=1)] | None = None
    variants: Annotated[list[VariantSpec], Field(min_length=1)] | None = None

    @field_validator("variants")
    @classmethod
    def _unique_variant_names(cls, variants: list[VariantSpec] | None) -> list[VariantSpec] | None:
        _refuse_duplicates([v.name for v in variants or []], "variant")
        return variants

    @field_validator("runtimes")
    @classmethod
    def _unique_runtimes(cls, runtimes: list[RuntimeItem] | None) -> list[RuntimeItem] | None:
        _refuse_duplicates(
            [runtime_name(r) for r in runtimes or []], "runtime", key=None, file_names=False
        )
        return runtimes

    @field_validator("versions", mode="before")
    @classmethod
    def _versions_are_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, spec in value.items():
                if isinstance(spec, int | float) and not isinstance(spec, bool):
                    raise _UnquotedVersionError(key, spec)
        return value

    @field_validator("versions")
    @classmethod
    def _versions_parse(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, spec in (value or {}).items():
            if key == "target_runtime":
                try:
                    parse_runtime_version(spec)
                except ValueError as exc:
                    raise _PathError(str(exc), (key,)) from None
                continue
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                raise _PathError(
                    f'{spec!r} is not a PEP 440 version specifier (for example ">=2.16,<2.22")',
                    (key,),
                ) from None
        return value


InputName = Annotated[str, Field(min_length=1)]


class ModelSpec(Settings):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    source: Annotated[str, Field(min_length=1)]
    input_shapes: dict[str, list[Annotated[int, Field(ge=1), WHOLE]]] | None = None
    signature: str | None = None
    safe_mode: bool = True
    classification: list[Annotated[str, Field(min_length=1)]] | None = None
    reference: Annotated[str, Field(min_length=1)] | None = None  # for .tflite sources
    input_map: dict[InputName, InputName] | None = Field(
        default=None,
        description="A .tflite source's input name -> its reference's input name, for inputs "
        "that names do not pair (one input each pairs by position).",
    )

    @field_validator("input_map")
    @classmethod
    def _each_reference_input_fed_once(
        cls, input_map: dict[str, str] | None
    ) -> dict[str, str] | None:
        """Two .tflite inputs feeding one reference input leave another unfed: a typo."""
        fed: dict[str, str] = {}
        for ours, theirs in (input_map or {}).items():
            if theirs in fed:
                raise _PathError(
                    f"map {ours!r} to another of the reference's inputs: {theirs!r} is "
                    f"already fed by {fed[theirs]!r}",
                    (ours,),
                )
            fed[theirs] = ours
        return input_map


class Policy(_Strict):
    version: Literal[1]
    fail_on: FailOn = "error"
    defaults: Settings = Field(default_factory=Settings)
    models: Annotated[list[ModelSpec], Field(min_length=1)]

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_a_number(cls, value: Any) -> Any:
        """`true` equals 1 in Python, but it is no number to the schema: refused, as there."""
        if isinstance(value, bool):
            raise ValueError(f"expected one of 1, got {value!r}")
        return value

    @field_validator("models")
    @classmethod
    def _unique_model_names(cls, models: list[ModelSpec]) -> list[ModelSpec]:
        _refuse_duplicates([m.name for m in models], "model")
        return models


def _refuse_duplicates(
    names: list[str], kind: str, key: str | None = "name", *, file_names: bool = True
) -> None:
    """A repeated name is a typo; the error points at the repeat (its `key`, else the item).

    Model and variant names become file names in the artifacts, so with `file_names`
    two that differ only in case are repeats too (one file on macOS or Windows disks).
    """
    seen: dict[str, tuple[int, str]] = {}
    for index, name in enumerate(names):
        folded = name.casefold() if file_names else name
        if folded in seen:
            first, spelled = seen[folded]
            also = (
                ""
                if spelled == name
                else f" as {spelled!r}; file names must differ by more than case"
            )
            raise _PathError(
                f"duplicate {kind} name {name!r} (first used at index {first}{also})",
                (index, key) if key else (index,),
            )
        seen[folded] = (index, name)


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class PolicyIssue:
    path: str
    line: int | None
    column: int | None
    message: str

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


def _dotted(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


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
    if isinstance(cause, _UnquotedVersionError) and written is not None:
        return f"{_dotted(path)}: {cause.advice(written)}"
    if kind == "extra_forbidden":
        key = str(path[-1])
        owner = _model_class_at(path[:-1])
        known = sorted(owner.model_fields) if owner else []
        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        expected = f"; expected one of {', '.join(known)}" if known else ""
        return f"{_dotted(path)}: unknown key {key!r}{hint}{expected}"
    if kind == "missing":
        return f"{_dotted(path[:-1]) or 'policy'}: missing required key {path[-1]!r}"
    if kind == "literal_error":
        expected = error["ctx"]["expected"].replace("'", "").replace(" or ", ", ")
        return f"{_dotted(path)}: expected one of {expected}, got {given!r}"
    if path[-1:] in (("calibration",), ("evaluation",)) and kind in _DATA_SOURCE_ERRORS:
        return f"{_dotted(path)}: {DATA_SOURCE_EXPECTED}, got {given!r}"
    if kind == "value_error":
        return f"{_dotted(path) or 'policy'}: {error['ctx']['error']}"
    if kind == "finite_number":
        return f"{_dotted(path)}: write a finite number here (not .nan or .inf), got {given!r}"
    if kind in _TYPE_ADVICE:
        number = kind in {"float_type", "int_type"}
        unquote = " without quotes" if number and isinstance(given, str) else ""
        return f"{_dotted(path)}: {_TYPE_ADVICE[kind]}{unquote}, got {given!r}"
    if kind == "less_than_equal" and path[-1:] in (("count",), ("samples",)):
        return (
            f"{_dotted(path)}: use at most {MAX_SAMPLES} samples (each is run through every "
            f"variant on every runtime), got {given!r}"
        )
    if kind == "string_pattern_mismatch" and path and path[-1] == "name":
        return (
            f"{_dotted(path)}: {given!r} is not a valid name "
            "(letters, digits, '_', '-', '.'; must start with a letter or digit)"
        )
    message = error["msg"]
    message = message[0].lower() + message[1:]
    return f"{_dotted(path) or 'policy'}: {message}, got {given!r}"


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


def _issues_from_validation(
    exc: ValidationError, source_map: SourceMap, display_path: str
) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    seen_paths: set[PathKey] = set()
    errors: list[tuple[Any, PathKey, bool]] = []
    for error in exc.errors():
        path, in_union = _data_path(error["loc"], source_map)
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _PathError):
            path = (*path, *cause.subpath)
        errors.append((error, path, in_union))
    branch_paths = [path for _, path, in_union in errors if in_union]
    for error, path, in_union in errors:
        if path in seen_paths:  # a union reports once per branch; the first is enough
            continue
        if in_union and any(len(p) > len(path) and p[: len(path)] == path for p in branch_paths):
            continue  # another union branch got further into the value: its error says more
        seen_paths.add(path)
        empty = isinstance(error.get("ctx", {}).get("error"), _EmptyKeyError)
        key_like = error["type"] == "extra_forbidden" or empty
        mark = source_map.nearest(path, prefer_key=key_like)
        issues.append(
            PolicyIssue(
                display_path,
                mark.line if mark else None,
                mark.column if mark else None,
                _describe(error, path, source_map.texts.get(path)),
            )
        )
    return issues


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    source_map: SourceMap
    display_path: str  # relative to the workspace when inside it, for annotations

    def location(self, path: PathKey) -> Location:
        """Where the setting at `path` is written; falls back to its parent block."""
        mark = self.source_map.nearest(path)
        return Location(
            path=self.display_path,
            line=mark.line if mark else None,
            column=mark.column if mark else None,
        )


def display_path_for(file: Path, workspace: Path) -> str:
    try:
        return file.resolve().relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(file)


# Real policies are a few KB; PyYAML composes only a few hundred KB per second in
# pure Python, so a huge file from a pull request would hold the gate for minutes.
MAX_POLICY_BYTES = 256 * 1024


def _read_policy_text(file: Path, display: str, policy_option: str) -> str:
    """The policy's text, refused unparsed when it is larger than any policy needs."""
    require_regular_file(file)  # a FIFO would block the open below forever
    with open(file, "rb") as stream:
        data = stream.read(MAX_POLICY_BYTES + 1)
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            [
                PolicyIssue(
                    display,
                    None,
                    None,
                    f"shrink the policy below {MAX_POLICY_BYTES // 1024} KiB (the limit that "
                    f"keeps loading it fast) or check that {policy_option} names the policy "
                    "file: a policy needs a few KB, with settings shared by models written once "
                    "in `defaults`",
                )
            ]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError([_not_utf8(display, data, exc)]) from None


def _not_utf8(display: str, data: bytes, error: UnicodeDecodeError) -> PolicyIssue:
    """Point at the first byte that is not UTF-8, as an editor counts lines and columns."""
    before = data[: error.start]
    line = before.count(b"\n") + 1
    column = len(before) - (before.rfind(b"\n") + 1) + 1
    byte = data[error.start : error.start + 1].hex()
    return PolicyIssue(
        display,
        line,
        column,
        f"save the policy as UTF-8: byte 0x{byte} here is not UTF-8 text",
    )


_OTHER_YAML_SUFFIX = {".yml": ".yaml", ".yaml": ".yml"}


def _missing_policy_message(file: Path, workspace: Path, policy_option: str) -> str:
    """What to do when the policy file is not there: first contact, or a `.yaml`/`.yml` slip.

    The other spelling is named as the user would type it (relative to where they run
    the gate); an absolute path (the Action's) is shown relative to the workspace.
    """
    other_suffix = _OTHER_YAML_SUFFIX.get(file.suffix.lower())
    other = file.with_suffix(other_suffix) if other_suffix else None
    if other is not None and other.is_file():
        typed = display_path_for(other, workspace) if other.is_absolute() else str(other)
        return (
            f"did you mean {typed}? give {policy_option} {typed}, or rename it {file.name}: "
            "no such file"
        )
    shown = display_path_for(file, workspace) if file.is_absolute() else str(file)
    return (
        "run `tflite-gate init` to write a first policy (it checks the model once), or give "
        f"{policy_option} the policy's path: {shown} does not exist"
    )


def load_policy(file: Path, workspace: Path, *, policy_option: str = "--policy") -> LoadedPolicy:
    """Read and validate the policy, including that model paths stay in the workspace.

    `policy_option` is how the user names the policy file (the CLI's flag, the
    Action's input), for the messages that tell them to change it.
    """
    display = display_path_for(file, workspace)
    try:
        text = _read_policy_text(file, display, policy_option)
    except FileNotFoundError:
        message = _missing_policy_message(file, workspace, policy_option)
        raise PolicyError([PolicyIssue(display, None, None, message)]) from None
    except SpecialFileError as exc:
        raise PolicyError([PolicyIssue(display, None, None, exc.message)]) from None
    except OSError as exc:
        raise PolicyError([PolicyIssue(display, None, None, unreadable_message(exc))]) from None
    try:
        data, source_map = load_yaml_with_marks(text)
    except YamlError as exc:
        line = exc.mark.line if exc.mark else None
        column = exc.mark.column if exc.mark else None
        raise PolicyError([PolicyIssue(display, line, column, exc.message)]) from None
    if data is None:
        raise PolicyError(
            [
                PolicyIssue(
                    display, 1, 1, "the policy file is empty; expected `version: 1` and `models:`"
                )
            ]
        )
    if not isinstance(data, dict):
        raise PolicyError(
            [
                PolicyIssue(
                    display, 1, 1, f"expected a mapping at the top level, got {type(data).__name__}"
                )
            ]
        )
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(_issues_from_validation(exc, source_map, display)) from None
    loaded = LoadedPolicy(policy, source_map, display)
    _check_paths_inside(loaded, workspace)
    return loaded


def is_factory(source: str) -> bool:
    """`package.module:function` rather than a file path."""
    return bool(_FACTORY_PATTERN.match(source))


def resolve_inside(raw: str, workspace: Path) -> Path | None:
    """The absolute path for `raw`, or None if it leaves the workspace (also via symlinks)."""
    if Path(raw).is_absolute():
        return None
    root = workspace.resolve()
    candidate = (root / raw).resolve()
    try:
        candidate.relative_to(root)
    except ValueError:
        return None
    return candidate


# A file: URL alone, after `name @` or in a VCS URL (git+file:) names a local path.
_FILE_URL = re.compile(r"(^|[\s@+])file:", re.IGNORECASE)


def _check_paths_inside(loaded: LoadedPolicy, workspace: Path) -> None:
    issues: list[PolicyIssue] = []

    def check(raw: str, path: PathKey, what: str) -> None:
        if resolve_inside(raw, workspace) is None:
            mark = loaded.source_map.nearest(path)
            issues.append(
                PolicyIssue(
                    loaded.display_path,
                    mark.line if mark else None,
                    mark.column if mark else None,
                    f"{_dotted(path)}: {what} {raw!r} is outside the workspace; paths are "
                    "relative to the workspace root and must stay inside it",
                )
            )

    def check_requirement(requirement: str, path: PathKey) -> None:
        """pip reads paths and file: URLs: both must name something in the workspace."""
        if _FILE_URL.search(requirement):
            mark = loaded.source_map.nearest(path)
            issues.append(
                PolicyIssue(
                    loaded.display_path,
                    mark.line if mark else None,
                    mark.column if mark else None,
                    f"{_dotted(path)}: write the path relative to the workspace instead of the "
                    f"file: URL {requirement!r}; runtimes install only from inside the workspace",
                )
            )
        elif looks_like_path(requirement):
            check(requirement, path, "runtime path")

    for index, model in enumerate(loaded.policy.models):
        if not is_factory(model.source):
            check(model.source, ("models", index, "source"), "source")
        if model.reference is not None and not is_factory(model.reference):
            check(model.reference, ("models", index, "reference"), "reference")
    for scope, settings in _scopes(loaded.policy):
        for position, item in enumerate(settings.runtimes or []):
            requirement = item.requirement if isinstance(item, RuntimeEntry) else item
            where = (*scope, "runtimes", position)
            check_requirement(
                requirement, (*where, "requirement") if isinstance(item, RuntimeEntry) else where
            )
            for number, extra in enumerate(item.with_ if isinstance(item, RuntimeEntry) else []):
                check_requirement(extra, (*where, "with", number))
            for number, library in enumerate(
                item.custom_op_libraries if isinstance(item, RuntimeEntry) else []
            ):
                check(library, (*where, "custom_op_libraries", number), "custom-op library")
        for key in ("calibration", "evaluation"):
            value = getattr(settings.data, key) if settings.data else None
            if isinstance(value, str) and not is_factory(value):
                check(value, (*scope, "data", key), "data source")
    if issues:
        raise PolicyError(issues)


def _scopes(policy: Policy) -> list[tuple[PathKey, Settings]]:
    scopes: list[tuple[PathKey, Settings]] = [(("defaults",), policy.defaults)]
    scopes += [(("models", i), model) for i, model in enumerate(policy.models)]
    return scopes


# --------------------------------------------------------------------------- resolution

T = TypeVar("T")


@dataclass(frozen=True)
class Setting(typing.Generic[T]):
    """An effective setting and where it was written (None: the built-in default)."""

    value: T
    location: Location | None


@dataclass(frozen=True)
class MappedInput:
    """One `input_map` entry: the .tflite's input, the reference's it feeds, each located."""

    tflite: str
    reference: str
    tflite_location: Location  # the key
    reference_location: Location  # the value


@dataclass(frozen=True)
class ModelConfig:
    """Everything the pipeline needs for one model, defaults already applied."""

    index: int
    name: str
    source: str
    source_location: Location
    # Where each key written in the model's own entry sits: top-level keys, and dotted
    # paths below them ("data.calibration", "variants[1]", "variants[0].quantization").
    key_locations: dict[str, Location]
    input_shapes: dict[str, list[int]]
    signature: str | None
    safe_mode: bool
    classification: Setting[list[str] | None]  # outputs gated by a model-wide min_top1
    reference: Setting[str | None]  # a .tflite source's reference model
    input_map: list[MappedInput]  # pairs the .tflite's inputs with the reference's
    variants: list[VariantSpec]  # the model's own list, else the defaults', else one float
    allow_ops: Setting[list[str] | None]
    deny_ops: Setting[list[str]]
    select_tf_ops: Setting[bool]
    custom_ops: Setting[list[str]]
    version_specs: dict[str, Setting[str]]
    target_runtime: Setting[str | None]
    calibration: Setting[str | GenerateSource | None]
    evaluation: Setting[str | GenerateSource | None]
    samples: Setting[int]
    timeout_s: Setting[float]
    interpreter_timeout_s: Setting[float]
    memory_mb: Setting[int]
    num_threads: int
    max_size_bytes: Setting[int | None]
    max_latency_ms: Setting[float | None]
    latency_runs: Setting[int | None]  # invokes timed; None: latency is not measured
    latency_threads: Setting[int]
    latency_severity: Setting[BudgetSeverity]
    max_size_increase: Setting[float | None]
    allow_new_ops: Setting[bool]
    allow_min_runtime_increase: Setting[bool]
    max_metric_worsening: Setting[float | None]
    runtimes: Setting[list[str | RuntimeEntry]]
    runtime_locations: dict[str, Location]  # by runtime name: the entry's own line
    thresholds: dict[str, ThresholdPlan]  # by variant name; AS_IS_VARIANT for a .tflite run


@dataclass(frozen=True)
class ThresholdPlan:
    """A variant's divergence thresholds, each with the line it was written on."""

    base: dict[str, Setting[float]]
    per_output: dict[str, dict[str, Setting[float]]]

    def for_output(self, output: str) -> dict[str, Setting[float]]:
        """The variant's thresholds with `per_output` ones for `output` on top."""
        return {**self.base, **self.per_output.get(output, {})}

    def all_settings(self) -> list[Setting[float]]:
        """Every threshold written for the variant, per-output ones included."""
        return [*self.base.values(), *(s for o in self.per_output.values() for s in o.values())]


DEFAULT_TIMEOUT_S = 900.0
# A worker may use half of the machine's memory (or of its cgroup's limit): enough for
# real conversions (MobileNet peaks near 1 GB), not enough for an inflating model to
# take the runner down. Capped, so a shared big machine is protected too.
MEMORY_FRACTION = 0.5
MIN_DEFAULT_MEMORY_MB = 1024
MAX_DEFAULT_MEMORY_MB = 8192
DEFAULT_INTERPRETER_TIMEOUT_S = 300.0
DEFAULT_SAMPLES = 16
DEFAULT_LATENCY_RUNS = 20
DEFAULT_RUNTIME = "ai-edge-litert"
DEFAULT_VARIANTS = (VariantSpec(name="float", quantization="none"),)
AS_IS_VARIANT = "tflite"  # how a .tflite source's own run is named unless it names one


def machine_memory_mb() -> int | None:
    """Memory this process can have: physical memory, lowered by a cgroup (v2 or v1) limit."""
    limits: list[int] = []
    with contextlib.suppress(ValueError, OSError, AttributeError):  # not every OS has them
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20)
    for control in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(control).read_text(encoding="ascii").strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) means no limit; v1 writes a huge number instead
            limits.append(int(text) // 2**20)
    positive = [limit for limit in limits if limit > 0]
    return min(positive) if positive else None


def default_memory_mb(total_mb: int | None) -> int:
    """The worker memory limit where the policy writes none: a share of `total_mb`, capped."""
    if total_mb is None:
        return MAX_DEFAULT_MEMORY_MB
    share = int(total_mb * MEMORY_FRACTION)
    return min(max(share, MIN_DEFAULT_MEMORY_MB), MAX_DEFAULT_MEMORY_MB)


def _threshold_plan(
    loaded: LoadedPolicy, index: int, variant: VariantSpec | None, variant_path: PathKey
) -> ThresholdPlan:
    """Defaults, then the model, then the variant; per_output on top, key by key.

    `variant_path` is where the variant was written (the model's or the defaults' list),
    so a broken per-variant threshold points at its own line.
    """
    model = loaded.policy.models[index]
    layers: list[tuple[PathKey, Divergence | None]] = [
        (("defaults", "max_divergence"), loaded.policy.defaults.max_divergence),
        (("models", index, "max_divergence"), model.max_divergence),
        (
            (*variant_path, "max_divergence"),
            variant.max_divergence if variant is not None else None,
        ),
    ]
    base: dict[str, Setting[float]] = {}
    per_output: dict[str, dict[str, Setting[float]]] = {}
    for path, divergence in layers:
        if divergence is None:
            continue
        for key, value in _written_thresholds(divergence).items():
            base[key] = Setting(value, loaded.location((*path, key)))
        for output, thresholds in (divergence.per_output or {}).items():
            target = per_output.setdefault(output, {})
            for key, value in _written_thresholds(thresholds).items():
                target[key] = Setting(value, loaded.location((*path, "per_output", output, key)))
    return ThresholdPlan(base, per_output)


def _written_thresholds(thresholds: Thresholds) -> dict[str, float]:
    return {
        key: value
        for key in Thresholds.model_fields
        if (value := getattr(thresholds, key)) is not None
    }


def _pick(loaded: LoadedPolicy, index: int, section: str, key: str, default: T) -> Setting[T]:
    """The model's value if written, else the defaults' value, else `default`."""
    model = loaded.policy.models[index]
    for scope, settings in ((("models", index), model), (("defaults",), loaded.policy.defaults)):
        block = getattr(settings, section)
        value = getattr(block, key) if block is not None else None
        if value is not None:
            return Setting(value, loaded.location((*scope, section, key)))
    return Setting(default, None)


def resolve_model(loaded: LoadedPolicy, index: int) -> ModelConfig:
    """Apply `defaults` to model `index`, key by key."""
    model = loaded.policy.models[index]
    specs: dict[str, Setting[str]] = {}
    for scope, settings in ((("defaults",), loaded.policy.defaults), (("models", index), model)):
        for name, spec in (settings.versions or {}).items():
            specs[name] = Setting(spec, loaded.location((*scope, "versions", name)))
    target = specs.pop("target_runtime", None)
    runtimes, runtimes_path = _pick_runtimes(loaded, index)
    variants, variants_path = _pick_variants(loaded, index)
    thresholds = {
        variant.name: _threshold_plan(loaded, index, variant, (*variants_path, i))
        for i, variant in enumerate(variants)
    }
    thresholds.setdefault(AS_IS_VARIANT, _threshold_plan(loaded, index, None, ()))
    return ModelConfig(
        index=index,
        name=model.name,
        source=model.source,
        source_location=loaded.location(("models", index, "source")),
        key_locations={
            key: loaded.location(("models", index, *path))
            for key, path in _written_keys(model).items()
        },
        input_shapes=dict(model.input_shapes or {}),
        signature=model.signature,
        safe_mode=model.safe_mode,
        classification=Setting(
            model.classification, loaded.location(("models", index, "classification"))
        )
        if model.classification is not None
        else Setting(None, None),
        reference=Setting(
            model.reference,
            loaded.location(("models", index, "reference")) if model.reference else None,
        ),
        input_map=_mapped_inputs(loaded, index),
        variants=variants,
        allow_ops=_pick(loaded, index, "ops", "allow", None),
        deny_ops=_pick(loaded, index, "ops", "deny", []),
        select_tf_ops=_pick(loaded, index, "ops", "select_tf_ops", False),
        custom_ops=_pick(loaded, index, "ops", "custom", []),
        version_specs=specs,
        target_runtime=Setting(target.value, target.location) if target else Setting(None, None),
        calibration=_pick(loaded, index, "data", "calibration", None),
        evaluation=_pick(loaded, index, "data", "evaluation", None),
        samples=_pick(loaded, index, "data", "samples", DEFAULT_SAMPLES),
        timeout_s=_pick(loaded, index, "limits", "timeout_s", DEFAULT_TIMEOUT_S),
        interpreter_timeout_s=_pick(
            loaded, index, "limits", "interpreter_timeout_s", DEFAULT_INTERPRETER_TIMEOUT_S
        ),
        memory_mb=_pick(
            loaded, index, "limits", "memory_mb", default_memory_mb(machine_memory_mb())
        ),
        num_threads=_pick(loaded, index, "limits", "num_threads", 2).value,
        **_budgets(loaded, index),
        max_size_increase=_pick(loaded, index, "regression", "max_size_increase", None),
        allow_new_ops=_pick(loaded, index, "regression", "allow_new_ops", True),
        allow_min_runtime_increase=_pick(
            loaded, index, "regression", "allow_min_runtime_increase", True
        ),
        max_metric_worsening=_pick(loaded, index, "regression", "max_metric_worsening", None),
        runtimes=runtimes,
        runtime_locations={
            runtime_name(item): loaded.location((*runtimes_path, position))
            for position, item in enumerate(runtimes.value)
        }
        if runtimes_path
        else {},
        thresholds=thresholds,
    )


def _mapped_inputs(loaded: LoadedPolicy, index: int) -> list[MappedInput]:
    """The model's `input_map`, each name located for the findings that refuse it."""
    entries = []
    for ours, theirs in (loaded.policy.models[index].input_map or {}).items():
        path = ("models", index, "input_map", ours)
        key = loaded.source_map.nearest(path, prefer_key=True)
        entries.append(
            MappedInput(
                tflite=ours,
                reference=theirs,
                tflite_location=mark_to_location(loaded.display_path, key),
                reference_location=loaded.location(path),
            )
        )
    return entries


def _budgets(loaded: LoadedPolicy, index: int) -> dict[str, Setting[Any]]:
    """Budget settings; a latency budget without `latency_runs` times the default count.

    Latency is measured only when asked for (a budget or a run count): timed invokes
    cost CI minutes, and a number nobody reads is noise.
    """
    threads = _pick(loaded, index, "limits", "num_threads", 2)
    latency: Setting[float | None] = _pick(loaded, index, "budgets", "max_latency_ms", None)
    runs: Setting[int | None] = _pick(loaded, index, "budgets", "latency_runs", None)
    if runs.value is None and latency.value is not None:
        runs = Setting(DEFAULT_LATENCY_RUNS, None)
    return {
        "max_size_bytes": _pick(loaded, index, "budgets", "max_size_bytes", None),
        "max_latency_ms": latency,
        "latency_runs": runs,
        "latency_threads": _pick(loaded, index, "budgets", "num_threads", threads.value),
        "latency_severity": _pick(loaded, index, "budgets", "latency_severity", "warning"),
    }


def _pick_variants(loaded: LoadedPolicy, index: int) -> tuple[list[VariantSpec], PathKey]:
    """The model's own list replaces the defaults' list as a whole (no merging by name)."""
    model = loaded.policy.models[index]
    for scope, settings in ((("models", index), model), (("defaults",), loaded.policy.defaults)):
        if settings.variants is not None:
            return list(settings.variants), (*scope, "variants")
    return list(DEFAULT_VARIANTS), ("models", index, "variants")


def _written_keys(model: ModelSpec) -> dict[str, PathKey]:
    """Every key written in a model's entry, two levels deep, by dotted name."""
    written: dict[str, PathKey] = {}
    for key in model.model_fields_set:
        written[key] = (key,)
        value = getattr(model, key)
        if isinstance(value, BaseModel):
            for sub in value.model_fields_set:
                written[f"{key}.{sub}"] = (key, sub)
        elif isinstance(value, list):
            for position, item in enumerate(value):
                written[f"{key}[{position}]"] = (key, position)
                for sub in item.model_fields_set if isinstance(item, BaseModel) else ():
                    written[f"{key}[{position}].{sub}"] = (key, position, sub)
    return written


def runtime_name(item: str | RuntimeEntry) -> str:
    """How a runtime is named in findings and the report: its requirement as written.

    Custom-op registerers are part of the name: the same runtime with and without
    them are two runs.
    """
    if not isinstance(item, RuntimeEntry):
        return item.strip()
    if item.custom_op_registerers:
        return f"{item.requirement} + {' + '.join(item.custom_op_registerers)}"
    return item.requirement


def _pick_runtimes(
    loaded: LoadedPolicy, index: int
) -> tuple[Setting[list[str | RuntimeEntry]], PathKey | None]:
    model = loaded.policy.models[index]
    for scope, settings in ((("models", index), model), (("defaults",), loaded.policy.defaults)):
        if settings.runtimes is not None:
            path = (*scope, "runtimes")
            return Setting(list(settings.runtimes), loaded.location(path)), path
    return Setting([DEFAULT_RUNTIME], None), None


def mark_to_location(display_path: str, mark: Mark | None) -> Location:
    return Location(
        path=display_path, line=mark.line if mark else None, column=mark.column if mark else None
    )

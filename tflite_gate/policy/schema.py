"""The policy file's schema: what each key may hold, checked as the JSON schema checks it.

The pydantic models here are the one definition of the policy language: the JSON
schema editors validate with is generated from them (`tflite-gate schema`), and
what an editor accepts, the gate does. Validators raise `PathError`s that name the
key below the value they checked, so `policy.errors` can point at its line.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tflite_gate.policy.positions import PathKey
from tflite_gate.tflite.runtime_versions import parse_runtime_version

Quantization = Literal["none", "dynamic", "float16", "int8", "int16x8"]
IoType = Literal["float32", "int8", "uint8", "int16"]
# What a policy's `fail_on` may say; the CLI and the Action add `never`
# (`support.run_options.FailOn`), which only a run may ask for.
PolicyFailOn = Literal["error", "warning"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
# The runtime installed next to the gate: a policy that names no runtime runs on it.
DEFAULT_RUNTIME = "ai-edge-litert"


def is_factory(source: str) -> bool:
    """`package.module:function` rather than a file path."""
    return bool(FACTORY_PATTERN.match(source))


def looks_like_path(requirement: str) -> bool:
    """Like pip: a path has a separator or starts with a dot; archives count too."""
    if "://" in requirement or requirement.startswith("file:"):
        return False
    has_separator = "/" in requirement or os.sep in requirement
    archive = requirement.endswith((".whl", ".tar.gz", ".zip"))
    return has_separator or requirement.startswith(".") or archive


class PathError(ValueError):
    """A validator's error about one item below the validated value (a key, an index)."""

    def __init__(self, message: str, subpath: PathKey) -> None:
        super().__init__(message)
        self.subpath = subpath


class UnquotedVersionError(PathError):
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


class EmptyKeyError(PathError):
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
                    raise EmptyKeyError(key)
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
    if _SYMBOL_PATTERN.match(value) or FACTORY_PATTERN.match(value):
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
            raise PathError(
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
            raise PathError(
                "keep_float needs quantization int8 (full-integer, where the converter can "
                f"leave ops in float), got {self.quantization!r}",
                ("keep_float",),
            )
        return self

    @model_validator(mode="after")
    def _io_fits_quantization(self) -> VariantSpec:
        allowed = {"int8": {"float32", "int8", "uint8"}, "int16x8": {"float32", "int16"}}
        if self.io not in allowed.get(self.quantization, {"float32"}):
            raise PathError(
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
                    raise UnquotedVersionError(key, spec)
        return value

    @field_validator("versions")
    @classmethod
    def _versions_parse(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, spec in (value or {}).items():
            if key == "target_runtime":
                try:
                    parse_runtime_version(spec)
                except ValueError as exc:
                    raise PathError(str(exc), (key,)) from None
                continue
            try:
                SpecifierSet(spec)
            except InvalidSpecifier:
                raise PathError(
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
                raise PathError(
                    f"map {ours!r} to another of the reference's inputs: {theirs!r} is "
                    f"already fed by {fed[theirs]!r}",
                    (ours,),
                )
            fed[theirs] = ours
        return input_map


class Policy(_Strict):
    version: Literal[1]
    fail_on: PolicyFailOn = "error"
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
            raise PathError(
                f"duplicate {kind} name {name!r} (first used at index {first}{also})",
                (index, key) if key else (index,),
            )
        seen[folded] = (index, name)


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

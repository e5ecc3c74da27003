"""Per-model settings: `defaults` applied to each model, key by key, each value located.

Settings in `defaults` are inherited by every model, key by key (variant and runtime
lists as a whole); the resolved settings remember where they were written, so
findings can point a reviewer at the exact line to change.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from tflite_gate.findings import Location
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.policy.positions import PathKey
from tflite_gate.policy.schema import (
    DEFAULT_RUNTIME,
    BudgetSeverity,
    Divergence,
    GenerateSource,
    ModelSpec,
    RuntimeEntry,
    Thresholds,
    VariantSpec,
    runtime_name,
)
from tflite_gate.support.environment import default_memory_mb, machine_memory_mb

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
DEFAULT_INTERPRETER_TIMEOUT_S = 300.0
DEFAULT_SAMPLES = 16
DEFAULT_LATENCY_RUNS = 20
DEFAULT_NUM_THREADS = 2
DEFAULT_VARIANTS = (VariantSpec(name="float", quantization="none"),)
AS_IS_VARIANT = "tflite"  # how a .tflite source's own run is named unless it names one


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
    """The thresholds a block writes (its unwritten keys are None)."""
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
    variants, variants_path = picked_variants(loaded, index)
    specs, target = _version_specs(loaded, index)
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
        classification=_own(loaded, index, "classification", model.classification),
        reference=_own(loaded, index, "reference", model.reference),
        input_map=_mapped_inputs(loaded, index),
        variants=variants,
        allow_ops=_pick(loaded, index, "ops", "allow", None),
        deny_ops=_pick(loaded, index, "ops", "deny", []),
        select_tf_ops=_pick(loaded, index, "ops", "select_tf_ops", False),
        custom_ops=_pick(loaded, index, "ops", "custom", []),
        version_specs=specs,
        target_runtime=target,
        calibration=_pick(loaded, index, "data", "calibration", None),
        evaluation=_pick(loaded, index, "data", "evaluation", None),
        samples=_pick(loaded, index, "data", "samples", DEFAULT_SAMPLES),
        **_limits(loaded, index),
        **_budgets(loaded, index),
        **_regression(loaded, index),
        **_runtimes(loaded, index),
        thresholds=_thresholds(loaded, index, variants, variants_path),
    )


def _own(loaded: LoadedPolicy, index: int, key: str, value: T | None) -> Setting[T | None]:
    """A key only a model's own entry has (no default), located where it is written."""
    location = loaded.location(("models", index, key)) if value is not None else None
    return Setting(value, location)


def _version_specs(
    loaded: LoadedPolicy, index: int
) -> tuple[dict[str, Setting[str]], Setting[str | None]]:
    """Version specifiers (a model's own over the defaults', name by name), and the
    `target_runtime` among them, which is a version, not a specifier."""
    model = loaded.policy.models[index]
    specs: dict[str, Setting[str]] = {}
    for scope, settings in ((("defaults",), loaded.policy.defaults), (("models", index), model)):
        for name, spec in (settings.versions or {}).items():
            specs[name] = Setting(spec, loaded.location((*scope, "versions", name)))
    target = specs.pop("target_runtime", None)
    return specs, Setting(target.value, target.location) if target else Setting(None, None)


def _limits(loaded: LoadedPolicy, index: int) -> dict[str, Any]:
    """How long and how large a model's workers may get, and their threads."""
    return {
        "timeout_s": _pick(loaded, index, "limits", "timeout_s", DEFAULT_TIMEOUT_S),
        "interpreter_timeout_s": _pick(
            loaded, index, "limits", "interpreter_timeout_s", DEFAULT_INTERPRETER_TIMEOUT_S
        ),
        "memory_mb": _pick(
            loaded, index, "limits", "memory_mb", default_memory_mb(machine_memory_mb())
        ),
        "num_threads": _pick(loaded, index, "limits", "num_threads", DEFAULT_NUM_THREADS).value,
    }


def _regression(loaded: LoadedPolicy, index: int) -> dict[str, Any]:
    """What may change since a baseline report: by default anything but the metrics."""
    return {
        "max_size_increase": _pick(loaded, index, "regression", "max_size_increase", None),
        "allow_new_ops": _pick(loaded, index, "regression", "allow_new_ops", True),
        "allow_min_runtime_increase": _pick(
            loaded, index, "regression", "allow_min_runtime_increase", True
        ),
        "max_metric_worsening": _pick(loaded, index, "regression", "max_metric_worsening", None),
    }


def _runtimes(loaded: LoadedPolicy, index: int) -> dict[str, Any]:
    """The runtimes to run on, and where each entry is written (none for the default)."""
    runtimes, runtimes_path = _pick_runtimes(loaded, index)
    located = {
        runtime_name(item): loaded.location((*runtimes_path, position))
        for position, item in enumerate(runtimes.value)
        if runtimes_path is not None
    }
    return {"runtimes": runtimes, "runtime_locations": located}


def _thresholds(
    loaded: LoadedPolicy, index: int, variants: list[VariantSpec], variants_path: PathKey
) -> dict[str, ThresholdPlan]:
    """Each variant's thresholds, and those of a .tflite source's as-is run."""
    thresholds = {
        variant.name: _threshold_plan(loaded, index, variant, (*variants_path, i))
        for i, variant in enumerate(variants)
    }
    thresholds.setdefault(AS_IS_VARIANT, _threshold_plan(loaded, index, None, ()))
    return thresholds


def _mapped_inputs(loaded: LoadedPolicy, index: int) -> list[MappedInput]:
    """The model's `input_map`, each name located for the findings that refuse it."""
    entries = []
    for ours, theirs in (loaded.policy.models[index].input_map or {}).items():
        path = ("models", index, "input_map", ours)
        entries.append(
            MappedInput(
                tflite=ours,
                reference=theirs,
                tflite_location=loaded.location(path, key=True),
                reference_location=loaded.location(path),
            )
        )
    return entries


def _budgets(loaded: LoadedPolicy, index: int) -> dict[str, Any]:
    """Budget settings; a latency budget without `latency_runs` times the default count.

    Latency is measured only when asked for (a budget or a run count): timed invokes
    cost CI minutes, and a number nobody reads is noise.
    """
    threads = _pick(loaded, index, "limits", "num_threads", DEFAULT_NUM_THREADS)
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


def picked_variants(loaded: LoadedPolicy, index: int) -> tuple[list[VariantSpec], PathKey]:
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


def _pick_runtimes(
    loaded: LoadedPolicy, index: int
) -> tuple[Setting[list[str | RuntimeEntry]], PathKey | None]:
    """The model's own list replaces the defaults' list as a whole, like variants."""
    model = loaded.policy.models[index]
    for scope, settings in ((("models", index), model), (("defaults",), loaded.policy.defaults)):
        if settings.runtimes is not None:
            path = (*scope, "runtimes")
            return Setting(list(settings.runtimes), loaded.location(path)), path
    return Setting([DEFAULT_RUNTIME], None), None

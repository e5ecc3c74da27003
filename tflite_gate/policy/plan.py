"""The run plan: the policy resolved once, before any model work, into what each model runs.

The pipeline works from the plan and never reads the policy again. Each model's
source, representative data, variants and runtimes are typed here, with their paths
resolved inside the workspace and the place each was written, so the stages turn
plain values into worker requests (`pipeline.requests`) instead of interpreting
policy entries while models run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tflite_gate.findings import Location
from tflite_gate.policy.load import LoadedPolicy, resolve_inside
from tflite_gate.policy.resolve import ModelConfig, Setting, picked_variants, resolve_model
from tflite_gate.policy.schema import (
    DEFAULT_RUNTIME,
    GenerateSource,
    GenerateSpec,
    ModelSpec,
    PolicyFailOn,
    RuntimeEntry,
    VariantSpec,
    is_factory,
    looks_like_path,
    runtime_name,
)

DataKind = Literal["npz", "dir", "generator", "generate"]


@dataclass(frozen=True)
class SourcePlan:
    """A model as the policy names it: a file or directory in the workspace, or a factory."""

    written: str
    location: Location
    path: Path | None  # inside the workspace; None for a `package.module:function` factory


@dataclass(frozen=True)
class DataSourcePlan:
    """Representative data: a .npz file, a directory of arrays, a generator function, or
    numbers drawn from a seeded range (`generate`)."""

    kind: DataKind
    location: Location | None
    path: Path | None = None  # npz and dir: inside the workspace
    factory: str | None = None  # generator: `package.module:function`
    generate: GenerateSpec | None = None  # generate: seed, count, range


@dataclass(frozen=True)
class DataPlan:
    """The data a model is calibrated and evaluated on, and how many samples of it."""

    calibration: DataSourcePlan | None
    evaluation: DataSourcePlan | None
    samples: Setting[int]


@dataclass(frozen=True)
class VariantPlan:
    """A variant to convert, and the list entry it comes from (the model's or the defaults')."""

    spec: VariantSpec
    location: Location


@dataclass(frozen=True)
class RuntimePlan:
    """A runtime every variant runs on: the gate's own, or a requirement to install.

    Paths (a local wheel, `with` entries, custom-op libraries) are resolved inside the
    workspace, wherever the gate was started from.
    """

    location: Location | None  # None: the built-in default
    name: str  # as findings and the report name it
    requirement: str | None  # None: the runtime installed next to the gate
    module: str | None = None  # the module with its `Interpreter`, if not the known one
    extra: tuple[str, ...] = ()  # the entry's `with`
    custom_op_registerers: tuple[str, ...] = ()
    custom_op_libraries: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelPlan:
    """One model's run: its settings (what the checks judge by) and what it runs, typed."""

    config: ModelConfig
    source: SourcePlan
    reference: SourcePlan | None  # a .tflite source's reference model
    data: DataPlan
    variants: tuple[VariantPlan, ...]
    runtimes: tuple[RuntimePlan, ...]
    own_versions: frozenset[str]  # version keys the model's own entry writes

    @property
    def name(self) -> str:
        """The model's name, unique in the policy."""
        return self.config.name


@dataclass(frozen=True)
class RunPlan:
    """The whole policy resolved: every model's plan, in policy order."""

    policy: LoadedPolicy  # the document, for the suggestions that edit it
    models: tuple[ModelPlan, ...]
    fail_on: PolicyFailOn
    reads: tuple[Path, ...]  # files the policy names: sources, data, custom-op libraries

    @property
    def display_path(self) -> str:
        """The policy file as findings and the report name it."""
        return self.policy.display_path


def plan_run(loaded: LoadedPolicy, workspace: Path) -> RunPlan:
    """Resolve every model of `loaded` once, with its paths inside `workspace`."""
    return RunPlan(
        policy=loaded,
        models=tuple(
            plan_model(loaded, index, workspace) for index in range(len(loaded.policy.models))
        ),
        fail_on=loaded.policy.fail_on,
        reads=tuple(_files_read(loaded, workspace)),
    )


def plan_model(loaded: LoadedPolicy, index: int, workspace: Path) -> ModelPlan:
    """Model `index` with `defaults` applied, its sources, data and runtimes typed."""
    config = resolve_model(loaded, index)
    return ModelPlan(
        config=config,
        source=_source_plan(config.source, config.source_location, workspace),
        reference=_reference_plan(config.reference, workspace),
        data=DataPlan(
            calibration=_data_source_plan(config.calibration, workspace),
            evaluation=_data_source_plan(config.evaluation, workspace),
            samples=config.samples,
        ),
        variants=tuple(_variant_plans(loaded, index)),
        runtimes=tuple(
            runtime_plan(item, workspace, config.runtime_locations.get(runtime_name(item)))
            for item in config.runtimes.value
        ),
        own_versions=frozenset(loaded.policy.models[index].versions or {}),
    )


def _source_plan(written: str, location: Location, workspace: Path) -> SourcePlan:
    path = None if is_factory(written) else resolve_inside(written, workspace)
    return SourcePlan(written=written, location=location, path=path)


def _reference_plan(reference: Setting[str | None], workspace: Path) -> SourcePlan | None:
    if reference.value is None or reference.location is None:
        return None
    return _source_plan(reference.value, reference.location, workspace)


def _data_source_plan(
    setting: Setting[str | GenerateSource | None], workspace: Path
) -> DataSourcePlan | None:
    """A `calibration` or `evaluation` value as the kind of source it names."""
    value, location = setting.value, setting.location
    if value is None:
        return None
    if isinstance(value, GenerateSource):
        return DataSourcePlan(kind="generate", location=location, generate=value.generate)
    if is_factory(value):
        return DataSourcePlan(kind="generator", location=location, factory=value)
    path = resolve_inside(value, workspace) or Path(value)  # the loader refused any other
    kind: DataKind = "npz" if value.endswith(".npz") else "dir"
    return DataSourcePlan(kind=kind, location=location, path=path)


def _variant_plans(loaded: LoadedPolicy, index: int) -> list[VariantPlan]:
    """Each variant with the entry it comes from (the model's list, else the defaults')."""
    variants, path = picked_variants(loaded, index)
    return [
        VariantPlan(spec=spec, location=loaded.location((*path, position)))
        for position, spec in enumerate(variants)
    ]


def runtime_plan(
    item: str | RuntimeEntry, workspace: Path, location: Location | None = None
) -> RuntimePlan:
    """A `runtimes` entry as the runtime to prepare; `ai-edge-litert` is the gate's own.

    An entry for `ai-edge-litert` without `with` is the gate's own too (it may add a
    module or custom-op registerers, which need no environment of their own).
    """
    name = runtime_name(item)
    if not isinstance(item, RuntimeEntry):
        requirement = item.strip()
        own = requirement == DEFAULT_RUNTIME
        return RuntimePlan(
            name=name,
            requirement=None if own else _in_workspace(requirement, workspace),
            location=location,
        )
    requirement = _in_workspace(item.requirement, workspace)
    own = requirement == DEFAULT_RUNTIME and not item.with_
    return RuntimePlan(
        name=name,
        requirement=None if own else requirement,
        location=location,
        extra=tuple(_in_workspace(extra, workspace) for extra in item.with_),
        module=item.module,
        custom_op_registerers=tuple(item.custom_op_registerers),
        custom_op_libraries=tuple(
            str(resolve_inside(library, workspace) or library)
            for library in item.custom_op_libraries
        ),
    )


def _in_workspace(requirement: str, workspace: Path) -> str:
    """A requirement that is a local path, as the absolute path of the workspace's file."""
    if looks_like_path(requirement):
        return str(resolve_inside(requirement, workspace) or requirement)
    return requirement


def _files_read(loaded: LoadedPolicy, workspace: Path) -> list[Path]:
    """Files the run reads: sources, references, data, libraries the policy names."""
    named: list[str] = []
    for settings in [loaded.policy.defaults, *loaded.policy.models]:
        if isinstance(settings, ModelSpec):
            named += [settings.source, *([settings.reference] if settings.reference else [])]
        if settings.data is not None:
            data = (settings.data.calibration, settings.data.evaluation)
            named += [value for value in data if isinstance(value, str)]
        for item in settings.runtimes or []:
            named += item.custom_op_libraries if isinstance(item, RuntimeEntry) else []
    paths = [resolve_inside(raw, workspace) for raw in named if not is_factory(raw)]
    return [path for path in paths if path is not None]

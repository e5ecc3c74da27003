"""Divergence thresholds that pass on the measured data, with a margin, placed where
they take effect, and checked against the report before they are offered.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tflite_gate.judge.compare import violations
from tflite_gate.judge.suggest.defects import Defect, find_defects
from tflite_gate.judge.suggest.measure import (
    Broken,
    SuggestionError,
    broken_in,
    configured_models,
    loosened,
    worse,
)
from tflite_gate.judge.suggest.snippet import (
    PathKey,
    block_in,
    dotted,
    pasted_policy,
    variant_entry,
    yaml_text,
)
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import (
    ModelReport,
    Report,
    SuggestedThreshold,
    ThresholdSuggestion,
)
from tflite_gate.support.run_options import DEFAULT_MARGIN


def _outputs_of(model: ModelReport, variant: str) -> set[str]:
    runs = next(v for v in model.variants if v.name == variant).runs
    return {metrics.output for run in runs for metrics in run.metrics}


def _placements(
    loaded: LoadedPolicy, config: ModelConfig, model: ModelReport, variant: str
) -> Iterator[tuple[PathKey, Broken, str | None]]:
    """(block, what broke, output or None for the variant's own thresholds).

    Per output when the broken value was written per output (it would win over a
    variant-wide one) or when only some of the variant's outputs broke the key (a
    variant-wide value would loosen the others too); else once for the variant, at
    the worst value over its outputs.
    """
    broken = broken_in(model, variant)
    entry = (*variant_entry(loaded, config, variant), "max_divergence")
    plan = config.thresholds[variant]
    outputs = _outputs_of(model, variant)
    for key in dict.fromkeys(key for _, key in broken):
        items = [b for (_, k), b in broken.items() if k == key]
        per_output = {b.output for b in items} != outputs or any(
            key in plan.per_output.get(b.output, {}) for b in items
        )
        if per_output:
            for item in items:
                yield entry, item, item.output
            continue
        worst = items[0]
        for item in items[1:]:
            if worse(key, item.measured, worst.measured) != worst.measured:
                worst = item
        yield entry, worst, None


@dataclass(frozen=True)
class _Placed:
    """A broken threshold of one model's variant, and the block its new value goes in."""

    model: ModelReport
    config: ModelConfig
    variant: str
    entry: PathKey
    broken: Broken
    output: str | None  # None: the variant's own thresholds

    @property
    def spot(self) -> tuple[PathKey, str | None, str]:
        return (self.entry, self.output, self.broken.key)


def _placed(report: Report, loaded: LoadedPolicy, defects: Iterable[Defect]) -> Iterator[_Placed]:
    defective = {(defect.model, defect.variant) for defect in defects}
    for model, config in configured_models(report, loaded):
        for variant in model.variants:
            if variant.name not in config.thresholds or (model.name, variant.name) in defective:
                continue
            for entry, broken, output in _placements(loaded, config, model, variant.name):
                yield _Placed(model, config, variant.name, entry, broken, output)


def _suggested(placed: _Placed, value: float) -> SuggestedThreshold:
    broken = placed.broken
    setting = placed.config.thresholds[placed.variant].for_output(broken.output)[broken.key]
    per_output = f".per_output.{placed.output}" if placed.output is not None else ""
    return SuggestedThreshold(
        model=placed.model.name,
        variant=placed.variant,
        output=placed.output,
        key=broken.key,
        threshold=broken.threshold,
        measured=broken.measured,
        value=value,
        location=setting.location,
        placed_at=dotted(placed.entry) + per_output,
    )


def suggest_thresholds(
    report: Report, loaded: LoadedPolicy, margin: float = DEFAULT_MARGIN
) -> ThresholdSuggestion | None:
    """Values for every finitely broken divergence threshold in `report`; None if none is.

    A variant with a defect (`find_defects`) gets none: a threshold that passes it would
    switch the check off. Raises SuggestionError if the snippet, merged into the policy,
    would not make the others pass (a bug here; callers that only decorate a report drop
    the suggestion).
    """
    defects = find_defects(report, loaded, margin)
    placed = list(_placed(report, loaded, defects))
    if not placed:
        return None
    values: dict[tuple[PathKey, str | None, str], float] = {}
    for item in placed:  # a defaults' variant broken in several models takes the loosest
        value = loosened(item.broken.key, item.broken.measured, margin)
        known = values.get(item.spot)
        values[item.spot] = value if known is None else worse(item.broken.key, known, value)
    tree: dict[str, Any] = {}
    for (entry, output, key), value in values.items():
        block = block_in(tree, entry, loaded)
        if output is not None:
            block = block.setdefault("per_output", {}).setdefault(output, {})
        block[key] = value
    snippet = yaml_text(tree)
    verify(snippet, report, loaded, defects)
    suggested = [_suggested(item, values[item.spot]) for item in placed]
    return ThresholdSuggestion(margin=margin, thresholds=suggested, snippet=snippet)


def add_keep_float_snippets(report: Report, loaded: LoadedPolicy) -> None:
    """Each verified keep_float fix as YAML for the variant's own entry in the policy.

    Node names belong to one model: a variant the model inherits from `defaults` gets
    the defaults' list copied into the model, so other models keep theirs unchanged.
    """
    for model, config in configured_models(report, loaded):
        for variant in model.variants:
            diagnosis = variant.diagnosis
            if diagnosis is None or diagnosis.keep_float is None:
                continue
            diagnosis.snippet = _keep_float_snippet(
                loaded, config, variant.name, diagnosis.keep_float, diagnosis.keep_float_ops or []
            )


def _keep_float_snippet(
    loaded: LoadedPolicy, config: ModelConfig, variant: str, nodes: list[str], ops: list[str]
) -> str:
    """The fix's keep_float (its ops include the variant's own: they were part of it)."""
    entry = variant_entry(loaded, config, variant)
    fix = {key: list(names) for key, names in (("nodes", nodes), ("ops", ops)) if names}
    keep = {"keep_float": fix}
    if entry[0] != "defaults":
        tree: dict[str, Any] = {}
        block_in(tree, entry, loaded).update(keep)
        return yaml_text(tree)
    listed = [
        spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
        for spec in loaded.policy.defaults.variants or []
    ]
    for spec in listed:
        if spec["name"] == variant:  # its keep_float.ops, if any, are part of the verified fix
            spec.setdefault("keep_float", {}).update(fix)
    model = {"name": config.name, "variants": listed}
    return yaml_text({"models": [model]})


def suggestion_for(report: Report, loaded: LoadedPolicy) -> ThresholdSuggestion | None:
    """What a run's summary and comment offer, at the default margin.

    Advice must not break the run it decorates: a snippet that fails its own check is
    left out here (`tflite-gate suggest` reports that as the bug it is).
    """
    try:
        return suggest_thresholds(report, loaded)
    except SuggestionError:
        return None


def verify(
    snippet: str, report: Report, loaded: LoadedPolicy, defects: Iterable[Defect] = ()
) -> None:
    """Raise SuggestionError unless `snippet`, merged into the policy, leaves no finitely
    broken threshold in `report`'s runs but those of the variants with `defects`."""
    pasted = pasted_policy(snippet, loaded)
    defective = {(defect.model, defect.variant) for defect in defects}
    for model, config in configured_models(report, pasted):
        skipped = {variant for name, variant in defective if name == model.name}
        broken = still_broken(model, config, finite_only=True, skipped=skipped)
        if broken:
            raise SuggestionError(f"{broken[0]}, with the snippet")


def still_broken(
    model: ModelReport,
    config: ModelConfig,
    *,
    finite_only: bool,
    skipped: Collection[str] = (),
) -> list[str]:
    """The thresholds `config` sets that the model's recorded metrics break, as text.

    `finite_only` leaves out infinite errors (no threshold can pass them), and `skipped`
    names variants with a defect: what a suggestion is checked for. A starter policy
    must not break even those.
    """
    found = []
    for variant in model.variants:
        plan = config.thresholds.get(variant.name)
        if plan is None or variant.name in skipped:
            continue
        for run in variant.runs:
            for metrics in run.metrics:
                written = {k: s.value for k, s in plan.for_output(metrics.output).items()}
                found += [
                    f"{model.name}/{variant.name} output {v.output!r}: {v.threshold_key} "
                    f"{v.threshold} still breaks on {v.infinite if v.value is None else v.value}"
                    for v in violations(metrics, written)
                    if not (finite_only and v.value is None)
                ]
    return found

"""Thresholds that pass on the measured data, with a margin, as a snippet for the policy.

A divergence finding already names the tightest value that would have passed; a
threshold set to exactly that fails on the next machine, whose float kernels round
differently. This module loosens measured values by a stated margin and writes them
where they take effect: the variant's own entry (or the model's, for a `.tflite`
source's run), under `per_output` when only some outputs need it or the broken value
was written there. It serves `tflite-gate suggest`, the collapsed section of a failing
run's summary and comment (the pipeline stores the suggestion in the report), and
`tflite-gate init` (the thresholds of a first policy).

A variant no threshold should pass (`output_defect`) gets none: a value that would
also pass an unrelated output switches the check off. `tflite-gate suggest` also
writes the `ops.allow` additions and the `target_runtime` the variants need, each
marked as the loosening it is.

Every snippet is checked before it is offered: merged into the policy as a user would
paste it and resolved again, each threshold it writes must pass on the metrics of the
report it came from, and the ops and runtime checks must no longer fire for what it
allows.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import yaml

from tflite_gate.findings import Finding, Location
from tflite_gate.judge.checks import check_ops_allowed, check_runtime
from tflite_gate.judge.compare import (
    MAX_METRICS,
    MIN_METRICS,
    has_classes,
    round_down,
    round_up,
    violations,
)
from tflite_gate.model.data import sample_shape
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.policy.resolve import AS_IS_VARIANT, ModelConfig, resolve_model
from tflite_gate.policy.schema import Policy
from tflite_gate.report.model import (
    MetricName,
    ModelReport,
    OutputMetrics,
    Report,
    SuggestedThreshold,
    ThresholdKey,
    ThresholdSuggestion,
    ThresholdViolation,
    VariantReport,
)
from tflite_gate.support.run_options import DEFAULT_MARGIN, margin_text
from tflite_gate.tflite.runtime_versions import parse_runtime_version, runtime_version_less

DIGITS = 2
"""Significant digits of a suggested value (rounded in the passing direction)."""

PathKey = tuple[str | int, ...]


class SuggestionError(Exception):
    """The snippet would not make the thresholds pass: a bug, never shown as advice."""


def loosened(key: ThresholdKey, measured: float, margin: float) -> float:
    """The threshold that lets the error behind `measured` grow by `margin`.

    Error metrics grow with the error; cosine's distance from 1 grows with its square
    (1 - cos ≈ rel_rmse² / 2), the SNR drops by 20·log10(1 + margin) dB, and top-1
    disagreement grows like the error. Rounded to `DIGITS` significant digits, looser.
    """
    growth = 1.0 + margin
    if key in MAX_METRICS:
        return _looser_than(measured, measured * growth, round_up)
    if key == "min_cosine":
        gap = min((1.0 - measured) * growth**2, 2.0)
        return max(_one_minus(_looser_than(1.0 - measured, gap, round_up), measured), -1.0)
    if key == "min_snr_db":
        return math.floor((measured - 20 * math.log10(growth)) * 10) / 10
    if key == "min_top1":
        gap = min((1.0 - measured) * growth, 1.0)
        return max(_one_minus(_looser_than(1.0 - measured, gap, round_up), measured), 0.0)
    raise ValueError(f"unknown threshold {key!r}")


def _one_minus(gap: float, measured: float) -> float:
    """1 - `gap` as the decimal it stands for, never above `measured`.

    In binary 1 - 0.07 is 0.9299999999999999: a policy would carry that noise where
    0.93 was meant. When the decimal itself would not pass (a gap at the last bits of
    a float), the passing value is rounded down to 12 significant digits instead.
    """
    value = float(f"{1.0 - gap:.12g}")
    return value if value <= measured else round_down(min(1.0 - gap, measured), 12)


def _looser_than(measured: float, loose: float, rounded: Callable[[float, int], float]) -> float:
    """`loose` rounded to `DIGITS`, read as a decimal first: 0.001 * 4 is 0.0040000000000000036
    in binary and would round up to 0.0041. Never below `measured`."""
    tidy = rounded(float(f"{loose:.12g}"), DIGITS)
    return tidy if tidy >= measured else rounded(loose, DIGITS)


def _worse(key: str, a: float, b: float) -> float:
    return max(a, b) if key in MAX_METRICS else min(a, b)


def _metric_value(metrics: OutputMetrics, key: str) -> float | None:
    metric = key if key in MAX_METRICS else MIN_METRICS[key]
    return metrics.value(metric)  # type: ignore[arg-type]  # a key's metric is a MetricName


# --------------------------------------------------------------------------- what broke


@dataclass
class _Broken:
    """A threshold key broken for one output of one variant, over all its runtimes."""

    output: str
    key: ThresholdKey
    threshold: float
    measured: float
    violation: ThresholdViolation


def _broken_in(model: ModelReport, variant: str) -> dict[tuple[str, str], _Broken]:
    """(output, key) → the worst measured value over the variant's runs; finite ones only:
    no threshold passes an infinite error, so those stay findings, not suggestions."""
    broken: dict[tuple[str, str], _Broken] = {}
    for run in next(v for v in model.variants if v.name == variant).runs:
        by_output = {metrics.output: metrics for metrics in run.metrics}
        for violation in run.violations:
            metrics = by_output.get(violation.output)
            value = _metric_value(metrics, violation.threshold_key) if metrics else None
            if value is None or not math.isfinite(value):
                continue
            found = broken.get((violation.output, violation.threshold_key))
            if found is None:
                broken[(violation.output, violation.threshold_key)] = _Broken(
                    violation.output,
                    violation.threshold_key,
                    violation.threshold,
                    value,
                    violation,
                )
            else:
                found.measured = _worse(violation.threshold_key, found.measured, value)
    return broken


# --------------------------------------------------------------------------- defects


@dataclass(frozen=True)
class Defect:
    """A variant no threshold should pass: it is fixed in the conversion, never loosened."""

    model: str
    variant: str
    output: str
    why: str

    def text(self) -> str:
        return (
            f"{self.model}/{self.variant}: fix the variant, no threshold should pass it: "
            f"output {self.output!r} {self.why}"
        )


def output_defect(
    metrics: Sequence[OutputMetrics],
    margin: float,
    classes: int | None,
    keys: Collection[ThresholdKey] = ("min_cosine", "rel_rmse", "min_top1"),
) -> str | None:
    """Why no threshold should pass this output (its metrics on each runtime), or None.

    A collapsed output (one value for every sample while the source's vary) is a defect,
    and so is one whose passing threshold, with the error grown by the margin, would
    also pass an output unrelated to the source's: a `min_cosine` at or below 0 passes
    an orthogonal or inverted output, a `rel_rmse` at or above 1 (an SNR at or below
    0 dB) passes an output of zeros, a `min_top1` at or below chance (1/classes; 0 when
    the class count is unknown) passes a model that guesses. Such a threshold switches
    the check off: like a crash, the variant needs fixing, not a looser policy. `keys`
    limits the judgement to the thresholds the caller would write.
    """
    if any(m.collapsed for m in metrics):
        return "is the same for every sample while the source model's varies (collapsed)"
    for key, metric, passes in _UNRELATED:
        measured = _worst_finite(metrics, metric)
        if key not in keys or measured is None:
            continue
        value = loosened(key, measured, margin)
        line = _unrelated_line(key, classes)
        if value >= line if key in MAX_METRICS else value <= line:
            return (
                f"{metric} {measured_text(measured, value)}: a {key} that passes it with the "
                f"{margin_text(margin)} margin is {value!r}, {_past(key, line, classes)}, "
                f"where {passes} passes"
            )
    return None


_UNRELATED: tuple[tuple[ThresholdKey, MetricName, str], ...] = (
    ("min_cosine", "cosine", "an unrelated output"),
    ("rel_rmse", "rel_rmse", "an output of zeros"),
    ("min_top1", "top1", "a model that guesses"),
)
"""Per threshold: what a value past its line would let pass."""


def _unrelated_line(key: ThresholdKey, classes: int | None) -> float:
    """The value at which a threshold `key` passes what `_UNRELATED` names."""
    if key == "rel_rmse":
        return 1.0
    if key == "min_top1" and classes:
        return 1.0 / classes
    return 0.0


def _past(key: ThresholdKey, line: float, classes: int | None) -> str:
    if key == "min_top1":
        odds = f"with {classes} classes" if classes else "the class count is unknown"
        return f"at or below chance ({line:g}, {odds})"
    return f"at or {'above' if key in MAX_METRICS else 'below'} {line:g}"


def _worst_finite(metrics: Sequence[OutputMetrics], metric: MetricName) -> float | None:
    values = [v for m in metrics if (v := m.value(metric)) is not None and math.isfinite(v)]
    if not values:
        return None
    return max(values) if metric in MAX_METRICS else min(values)


def metrics_by_output(variant: VariantReport) -> dict[str, list[OutputMetrics]]:
    """Each output's metrics, one per runtime the variant ran on."""
    by_output: dict[str, list[OutputMetrics]] = {}
    for run in variant.runs:
        for metrics in run.metrics:
            by_output.setdefault(metrics.output, []).append(metrics)
    return by_output


def _classes(variant: VariantReport, output: str) -> int | None:
    """How many classes the converted model's `output` scores, if it is a classification."""
    tensors = variant.inspection.outputs if variant.inspection else []
    for tensor in tensors:
        shape = tuple(sample_shape(tensor.shape))
        if tensor.name == output and has_classes(shape):
            return shape[-1]
    return None


def find_defects(report: Report, loaded: LoadedPolicy, margin: float) -> list[Defect]:
    """The variants whose broken thresholds are defects, one line each (`output_defect`)."""
    found = []
    for model, config in _configured(report, loaded):
        for variant in model.variants:
            if variant.name not in config.thresholds:
                continue
            broken = dict.fromkeys(b.output for b in _broken_in(model, variant.name).values())
            measured = metrics_by_output(variant)
            for output in broken:
                why = output_defect(measured[output], margin, _classes(variant, output))
                if why is not None:
                    found.append(Defect(model.name, variant.name, output, why))
                    break
    return found


def _outputs_of(model: ModelReport, variant: str) -> set[str]:
    runs = next(v for v in model.variants if v.name == variant).runs
    return {metrics.output for run in runs for metrics in run.metrics}


# --------------------------------------------------------------------------- where it goes


def _variant_entry(loaded: LoadedPolicy, config: ModelConfig, variant: str) -> PathKey:
    """The policy block a variant's thresholds are written in.

    The variant's own list entry (the model's list, else the defaults' list, else the
    model's list the snippet creates); a `.tflite` source's run has no entry of its
    own: the model's block.
    """
    names = [spec.name for spec in config.variants]
    if variant == AS_IS_VARIANT and variant not in names:
        return ("models", config.index)
    position = names.index(variant)
    model = loaded.policy.models[config.index]
    if model.variants is None and loaded.policy.defaults.variants is not None:
        return ("defaults", "variants", position)
    return ("models", config.index, "variants", position)


def _placements(
    loaded: LoadedPolicy, config: ModelConfig, model: ModelReport, variant: str
) -> Iterator[tuple[PathKey, _Broken, str | None]]:
    """(block, what broke, output or None for the variant's own thresholds).

    Per output when the broken value was written per output (it would win over a
    variant-wide one) or when only some of the variant's outputs broke the key (a
    variant-wide value would loosen the others too); else once for the variant, at
    the worst value over its outputs.
    """
    broken = _broken_in(model, variant)
    entry = (*_variant_entry(loaded, config, variant), "max_divergence")
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
            if _worse(key, item.measured, worst.measured) != worst.measured:
                worst = item
        yield entry, worst, None


# --------------------------------------------------------------------------- the snippet


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The list entry called `name`, appended if missing: how a user merges by hand."""
    for item in items:
        if item.get("name") == name:
            return item
    items.append({"name": name})
    return items[-1]


def _block(tree: dict[str, Any], path: PathKey, loaded: LoadedPolicy) -> dict[str, Any]:
    """The mapping at policy `path` inside `tree`, list positions turned into names."""
    node = tree
    step = 0
    while step < len(path):
        key = str(path[step])
        if step + 1 < len(path) and isinstance(path[step + 1], int):
            node = _named(node.setdefault(key, []), _entry_name(loaded, path[: step + 2]))
            step += 2
        else:
            node = node.setdefault(key, {})
            step += 1
    return node


def _entry_name(loaded: LoadedPolicy, path: PathKey) -> str:
    """The name of the list entry `path` ends at (a model, or a variant of a list)."""
    position = int(path[-1])
    if path == ("models", position):
        return loaded.policy.models[position].name
    if path[0] == "defaults":
        return (loaded.policy.defaults.variants or [])[position].name
    return resolve_model(loaded, int(path[1])).variants[position].name


def _dotted(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class _IndentedDumper(yaml.SafeDumper):
    """Block lists indented under their key, as policies are usually written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _yaml(tree: dict[str, Any]) -> str:
    return yaml.dump(
        tree, Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False, allow_unicode=False
    )


def merge(policy: dict[str, Any], snippet: dict[str, Any]) -> dict[str, Any]:
    """`snippet` merged into a policy mapping: mappings key by key, named list entries by
    name (appended when new), anything else replaced. The policy is not changed."""
    merged = copy.deepcopy(policy)
    for key, value in snippet.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = merge(current, value)
        elif isinstance(value, list) and isinstance(current, list) and _all_named(value):
            merged[key] = _merge_named(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _all_named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def _merge_named(current: list[Any], entries: list[dict[str, Any]]) -> list[Any]:
    merged = copy.deepcopy(current)
    for entry in entries:
        for position, item in enumerate(merged):
            if isinstance(item, dict) and item.get("name") == entry["name"]:
                merged[position] = merge(item, entry)
                break
        else:
            merged.append(copy.deepcopy(entry))
    return merged


def policy_mapping(policy: Policy) -> dict[str, Any]:
    """The policy as written (unset keys left out), in the YAML spelling of its keys."""
    return policy.model_dump(mode="json", by_alias=True, exclude_unset=True)


# --------------------------------------------------------------------------- suggest


@dataclass(frozen=True)
class _Placed:
    """A broken threshold of one model's variant, and the block its new value goes in."""

    model: ModelReport
    config: ModelConfig
    variant: str
    entry: PathKey
    broken: _Broken
    output: str | None  # None: the variant's own thresholds

    @property
    def spot(self) -> tuple[PathKey, str | None, str]:
        return (self.entry, self.output, self.broken.key)


def _configured(report: Report, loaded: LoadedPolicy) -> Iterator[tuple[ModelReport, ModelConfig]]:
    """Each model of the report the policy has, with its resolved settings."""
    indices = {model.name: index for index, model in enumerate(loaded.policy.models)}
    for model in report.models:
        if model.name in indices:
            yield model, resolve_model(loaded, indices[model.name])


def _placed(report: Report, loaded: LoadedPolicy, defects: Iterable[Defect]) -> Iterator[_Placed]:
    defective = {(defect.model, defect.variant) for defect in defects}
    for model, config in _configured(report, loaded):
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
        placed_at=_dotted(placed.entry) + per_output,
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
        values[item.spot] = value if known is None else _worse(item.broken.key, known, value)
    tree: dict[str, Any] = {}
    for (entry, output, key), value in values.items():
        block = _block(tree, entry, loaded)
        if output is not None:
            block = block.setdefault("per_output", {}).setdefault(output, {})
        block[key] = value
    snippet = _yaml(tree)
    verify(snippet, report, loaded, defects)
    suggested = [_suggested(item, values[item.spot]) for item in placed]
    return ThresholdSuggestion(margin=margin, thresholds=suggested, snippet=snippet)


def add_keep_float_snippets(report: Report, loaded: LoadedPolicy) -> None:
    """Each verified keep_float fix as YAML for the variant's own entry in the policy.

    Node names belong to one model: a variant the model inherits from `defaults` gets
    the defaults' list copied into the model, so other models keep theirs unchanged.
    """
    for model, config in _configured(report, loaded):
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
    entry = _variant_entry(loaded, config, variant)
    fix = {key: list(names) for key, names in (("nodes", nodes), ("ops", ops)) if names}
    keep = {"keep_float": fix}
    if entry[0] != "defaults":
        tree: dict[str, Any] = {}
        _block(tree, entry, loaded).update(keep)
        return _yaml(tree)
    listed = [
        spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
        for spec in loaded.policy.defaults.variants or []
    ]
    for spec in listed:
        if spec["name"] == variant:  # its keep_float.ops, if any, are part of the verified fix
            spec.setdefault("keep_float", {}).update(fix)
    model = {"name": config.name, "variants": listed}
    return _yaml({"models": [model]})


# --------------------------------------------------------------------------- ops, runtime


@dataclass(frozen=True)
class Loosening:
    """A setting other than a threshold that the variants need loosened, said as such."""

    model: str
    entry: PathKey  # the model's block, where the snippet writes it
    rule: str  # the finding it removes
    ops: tuple[str, ...]  # op-not-allowed: the ops it allows
    block: dict[str, Any]  # what it writes in the model's block
    comment: str

    def fixes(self, finding: Finding) -> bool:
        """Whether `finding` goes away with this loosening."""
        if finding.model != self.model or finding.rule != self.rule:
            return False
        return not self.ops or finding.details.get("op") in self.ops


def policy_loosenings(report: Report, loaded: LoadedPolicy) -> list[Loosening]:
    """The `ops.allow` additions and the `target_runtime` the report's variants need.

    Written in the model's own block, so other models keep their limits. An op in
    `ops.deny` is never allowed: denying it was a decision, not a limit found too tight.
    """
    found = []
    for model, config in _configured(report, loaded):
        for loosening in (_allowing_more(model, config), _newer_runtime(model, config)):
            if loosening is not None:
                found.append(loosening)
    return found


def _allowing_more(model: ModelReport, config: ModelConfig) -> Loosening | None:
    allow, deny = config.allow_ops.value, config.deny_ops.value
    if allow is None:
        return None
    users: dict[str, list[str]] = {}
    for variant in model.variants:
        for op in variant.inspection.ops if variant.inspection else []:
            if op.kind == "builtin" and op.name not in allow and op.name not in deny:
                users.setdefault(op.name, []).append(variant.name)
    if not users:
        return None
    added = sorted(users)
    variants = ", ".join(dict.fromkeys(name for op in added for name in users[op]))
    return Loosening(
        model.name,
        ("models", config.index),
        "op-not-allowed",
        tuple(added),
        {"ops": {"allow": [*allow, *added]}},
        f"{model.name}: ops.allow + {', '.join(added)} (used by {variants}; "
        f"{_written_at(config.allow_ops.location)}): keep it only if the app's runtime has them",
    )


def _newer_runtime(model: ModelReport, config: ModelConfig) -> Loosening | None:
    target = config.target_runtime.value
    if target is None:
        return None
    needs: dict[str, list[str]] = {}  # runtime version → the variants that need it
    for variant in model.variants:
        inspection = variant.inspection
        known = (inspection.required_runtime, inspection.metadata_min_runtime) if inspection else ()
        for version in known:
            if version is not None and _newer_than(version, target):
                needs.setdefault(version, []).append(variant.name)
    if not needs:
        return None
    needed = max(needs, key=parse_runtime_version)
    variants = ", ".join(dict.fromkeys(name for names in needs.values() for name in names))
    return Loosening(
        model.name,
        ("models", config.index),
        "runtime-too-old",
        (),
        {"versions": {"target_runtime": needed}},
        f"{model.name}: target_runtime {target} -> {needed} (needed by {variants}; "
        f"{_written_at(config.target_runtime.location)}): keep it only if every device the "
        f"app ships to runs {needed} or newer",
    )


def _newer_than(version: str, target: str) -> bool:
    try:
        return runtime_version_less(target, version)
    except ValueError:  # metadata no version parser reads: check_runtime ignores it too
        return False


@dataclass(frozen=True)
class PolicySuggestion:
    """What `tflite-gate suggest` offers: thresholds, ops and a runtime, as one snippet."""

    thresholds: ThresholdSuggestion | None
    loosenings: list[Loosening]
    defects: list[Defect]
    snippet: str  # empty when nothing can be loosened

    def covers(self, finding: Finding) -> bool:
        """Whether the suggestion answers `finding`: a loosening removes it, or it is a
        finite divergence (a threshold loosened, or a variant listed in `defects`)."""
        if finding.rule == "divergence":
            return not finding.details.get("infinite")
        return any(loosening.fixes(finding) for loosening in self.loosenings)


def suggest_policy(
    report: Report, loaded: LoadedPolicy, margin: float = DEFAULT_MARGIN
) -> PolicySuggestion:
    """Every loosening the report's variants need, merged into one snippet and checked.

    Raises SuggestionError if the snippet, merged into the policy, leaves a threshold
    (`verify`) or a finding a loosening claims to remove: a bug, never shown as advice.
    """
    thresholds = suggest_thresholds(report, loaded, margin)
    loosenings = policy_loosenings(report, loaded)
    tree: dict[str, Any] = {}
    for loosening in loosenings:
        block = _block(tree, loosening.entry, loaded)
        block.update(merge(block, loosening.block))
    if thresholds is not None:
        tree = merge(tree, yaml.safe_load(thresholds.snippet))
    snippet = _yaml(tree) if tree else ""
    defects = find_defects(report, loaded, margin)
    if snippet:
        verify(snippet, report, loaded, defects)
        _verify_loosenings(_pasted(snippet, loaded), report, loosenings)
    return PolicySuggestion(thresholds, loosenings, defects, snippet)


def _verify_loosenings(pasted: LoadedPolicy, report: Report, loosenings: list[Loosening]) -> None:
    """Raise SuggestionError if the pasted policy still gives a finding a loosening fixes."""
    for model, config in _configured(report, pasted):
        for variant in model.variants:
            for finding in check_ops_allowed(config, variant) + check_runtime(config, variant):
                if any(loosening.fixes(finding) for loosening in loosenings):
                    raise SuggestionError(f"{finding.message}, with the snippet")


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
    pasted = _pasted(snippet, loaded)
    defective = {(defect.model, defect.variant) for defect in defects}
    for model, config in _configured(report, pasted):
        skipped = {variant for name, variant in defective if name == model.name}
        broken = still_broken(model, config, finite_only=True, skipped=skipped)
        if broken:
            raise SuggestionError(f"{broken[0]}, with the snippet")


def _pasted(snippet: str, loaded: LoadedPolicy) -> LoadedPolicy:
    """The policy with `snippet` merged in, as a user pastes it."""
    merged = merge(policy_mapping(loaded.policy), yaml.safe_load(snippet))
    try:
        return replace(loaded, policy=Policy.model_validate(merged))
    except ValueError as error:
        raise SuggestionError(f"the suggested snippet is not a valid policy: {error}") from error


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


_SAFE_COMMENT = re.compile(r"[^\x20-\x7e]")


def annotated_snippet(suggestion: PolicySuggestion, policy_path: str) -> str:
    """The snippet with a comment per loosening: what it loosens, where, what was measured."""
    header = f"# Merge into {policy_path} (list entries by name)."
    thresholds = suggestion.thresholds
    if thresholds is not None:
        header += (
            f" Margin {margin_text(thresholds.margin)}: the measured error may grow by that share."
        )
    lines = [header, *(f"# loosens {item.comment}" for item in suggestion.loosenings)]
    for item in thresholds.thresholds if thresholds else []:
        output = f" output {item.output!r}" if item.output else ""
        measured = measured_text(item.measured, item.threshold, item.value)
        lines.append(
            f"# loosens {item.model}/{item.variant}{output}: {item.key} {item.threshold!r} "
            f"({_written_at(item.location)}) measured {measured} -> {item.value!r}"
        )
    return "\n".join(_SAFE_COMMENT.sub("?", line) for line in lines) + "\n" + suggestion.snippet


def _written_at(location: Location | None) -> str:
    return f"{location.path}:{location.line}" if location and location.line else "default"


def measured_text(measured: float, *beside: float) -> str:
    """`measured` with 6 significant digits, or as many more as it takes to tell it apart
    from the thresholds `beside` it and from 1: a cosine of 0.99999995 printed as 1 would
    look better than what was measured."""
    for digits in range(6, 18):
        text = f"{measured:.{digits}g}"
        shown = float(text)
        if shown not in beside and (shown == 1.0) == (measured == 1.0):
            return text
    return repr(measured)

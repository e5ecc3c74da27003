"""`tflite-gate init --variants` on an existing policy: new variants, measured as `init` measures.

The entries are inserted into the file as text, so the user's comments and edits
stay; the edited text must load, change nothing but the model's variants, and pass
its thresholds on the probe's metrics before it replaces the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tflite_gate.app.init.probe import run_probe
from tflite_gate.app.init.request import (
    InitError,
    InitOutcome,
    InitRequest,
    internal_error,
    variant_entries,
)
from tflite_gate.app.init.starter import variant_entry, variant_thresholds
from tflite_gate.judge.suggest import (
    SuggestionError,
    merge,
    policy_loosenings,
    policy_mapping,
    still_broken,
    suggest_thresholds,
)
from tflite_gate.policy.edit import EditError, add_variants
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.resolve import ModelConfig, resolve_model
from tflite_gate.policy.schema import VariantSpec
from tflite_gate.report.model import Report
from tflite_gate.support.files import write_text_atomic
from tflite_gate.support.lifetime import owned_scratch
from tflite_gate.support.run_options import Progress


def add_variants_to_policy(request: InitRequest, progress: Progress) -> InitOutcome:
    """Add `--variants` to a model of the existing policy, measured as `init` measures.

    The model is checked with the policy's own settings (data, runtimes, limits,
    thresholds) minus `ops.allow` and `target_runtime`. The new entries are inserted
    into the file as text, so the user's comments and edits stay. What the new variants
    need beyond `ops.allow` and `target_runtime` is said, not written: those are the
    user's decisions, and `tflite-gate suggest` offers them marked as loosenings.
    """
    try:
        loaded = load_policy(request.policy, request.workspace)
    except PolicyError as error:
        return InitOutcome(2, [str(issue) for issue in error.issues])
    try:
        index = _model_to_extend(loaded, request)
        config = resolve_model(loaded, index)
        added = _new_variants(config, request.variants or [], loaded.display_path)
    except InitError as error:
        return InitOutcome(2, [str(error)])
    probe = _extension_probe(loaded, index, added)
    probed = run_probe(request, probe, progress, kept_thresholds=True)
    if isinstance(probed, InitOutcome):
        return probed
    try:
        text = _with_new_variants(request, loaded, index, added, probed)
    except EditError as error:
        return InitOutcome(2, [f"{error} in {loaded.display_path}, then run init again"])
    except (SuggestionError, PolicyError) as error:
        return internal_error(error)
    problem = _extension_problem(text, request, loaded, index, probed)
    if problem is not None:
        return problem
    try:
        write_text_atomic(request.policy, text)
    except OSError as error:
        return InitOutcome(4, [f"make {request.policy} writable: {error.strerror or error}"])
    return InitOutcome(
        0, written=request.policy, summary=_added_summary(loaded, config, added, probed)
    )


def _with_new_variants(
    request: InitRequest,
    loaded: LoadedPolicy,
    index: int,
    added: list[tuple[str, str]],
    probed: Report,
) -> str:
    """The policy text with the new variants' entries: starting thresholds, and a
    loosened value where they break one they inherit from the model or `defaults`
    (placed as `suggest` places it)."""
    by_name = {variant.name: variant for variant in probed.models[0].variants}
    entries = [
        variant_entry(name, mode, variant_thresholds(by_name[name], request.margin))
        for name, mode in added
    ]
    config = resolve_model(loaded, index)
    own = loaded.policy.models[index].variants is not None
    inherited = [] if own else [_as_written(spec) for spec in config.variants]
    original = request.policy.read_text(encoding="utf-8")
    text = add_variants(original, index, entries, inherited)
    suggestion = suggest_thresholds(probed, _load_text(text, request), request.margin)
    if suggestion is None:
        return text
    model = next(
        m for m in yaml.safe_load(suggestion.snippet)["models"] if m["name"] == config.name
    )
    placed = {entry["name"]: entry for entry in model["variants"]}
    entries = [merge(entry, placed.get(entry["name"], {})) for entry in entries]
    return add_variants(original, index, entries, inherited)


def _load_text(text: str, request: InitRequest) -> LoadedPolicy:
    """`text` loaded as the policy would be (PolicyError if it is not one)."""
    with owned_scratch("tflite-gate-init-") as scratch:
        candidate = Path(scratch) / request.policy.name
        candidate.write_text(text, encoding="utf-8")
        return load_policy(candidate, request.workspace)


def _model_to_extend(loaded: LoadedPolicy, request: InitRequest) -> int:
    """The model named by --name (or whose source is --source), or the only one."""
    names = [model.name for model in loaded.policy.models]
    if request.name is not None:
        if request.name not in names:
            raise InitError(
                f"pass --name with one of {', '.join(names)}: {loaded.display_path} has no "
                f"model {request.name!r}"
            )
        return names.index(request.name)
    sources = [model.source for model in loaded.policy.models]
    if request.source is not None and sources.count(request.source) == 1:
        return sources.index(request.source)
    if len(names) == 1:
        return 0
    raise InitError(f"pass --name with the model to add variants to, one of: {', '.join(names)}")


def _new_variants(config: ModelConfig, words: list[str], shown: str) -> list[tuple[str, str]]:
    if config.source.endswith(".tflite"):
        raise InitError(
            f"leave out --variants for {config.name}: a .tflite source is checked as it is"
        )
    have = [variant.name for variant in config.variants]
    added = [(name, mode) for name, mode in variant_entries(words) if name not in have]
    if not added:
        raise InitError(
            f"pass --variants with a variant {config.name} does not have yet: {shown} lists "
            f"{', '.join(have)}"
        )
    return added


def _extension_probe(loaded: LoadedPolicy, index: int, added: list[tuple[str, str]]) -> str:
    """The policy as the user wrote it, for this model and its new variants only, without
    the limits the new variants may need loosened (`ops.allow`, `target_runtime`). The
    thresholds they inherit stay: the runs record which ones they break."""
    mapping = policy_mapping(loaded.policy)
    model = mapping["models"][index]
    model["variants"] = [variant_entry(name, mode, {}) for name, mode in added]
    for block in (mapping.get("defaults") or {}, model):
        (block.get("ops") or {}).pop("allow", None)
        (block.get("versions") or {}).pop("target_runtime", None)
    mapping["models"] = [model]
    return yaml.safe_dump(mapping, sort_keys=False)


def _as_written(spec: VariantSpec) -> dict[str, Any]:
    written: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return written


def _extension_problem(
    text: str, request: InitRequest, loaded: LoadedPolicy, index: int, probed: Report
) -> InitOutcome | None:
    """The edited text must load, keep everything but the model's variants, and pass
    its thresholds on the probe's metrics."""
    try:
        edited = _load_text(text, request)
    except PolicyError as error:
        return internal_error(error)
    before, after = policy_mapping(loaded.policy), policy_mapping(edited.policy)
    for mapping in (before, after):
        mapping["models"][index].pop("variants", None)
    if before != after:
        return InitOutcome(3, ["internal error: adding variants changed other settings (a bug)"])
    broken = still_broken(probed.models[0], resolve_model(edited, index), finite_only=False)
    if broken:
        return InitOutcome(
            1,
            [
                "fix these first (or choose other --variants): the new variants break "
                f"thresholds no value passes: {broken[0]}"
            ],
        )
    return None


def _added_summary(
    loaded: LoadedPolicy, config: ModelConfig, added: list[tuple[str, str]], probed: Report
) -> str:
    names = ", ".join(name for name, _ in added)
    summary = (
        f"Added {names} to {loaded.display_path} for model {config.name}, with thresholds "
        "measured as init measures them; nothing else in the file changed"
    )
    if loaded.policy.models[config.index].variants is None:
        copied = ", ".join(variant.name for variant in config.variants)
        summary += f" (its inherited variants {copied} are now listed in the model)"
    needs = policy_loosenings(probed, loaded)
    if not needs:
        return f"{summary}: run `tflite-gate check`"
    listed = "\n".join(f"  {need.comment}" for need in needs)
    return (
        f"{summary}.\nRun `tflite-gate check`, then `tflite-gate suggest` for the snippet, "
        f"if the app can take what the new variants need and the policy does not allow "
        f"yet:\n{listed}"
    )

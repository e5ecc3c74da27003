"""Policy snippets: where a variant's thresholds are written, YAML as users write
it, and merging a snippet into the policy as a user pastes it.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import yaml

from tflite_gate.judge.suggest.measure import SuggestionError
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.policy.resolve import AS_IS_VARIANT, ModelConfig, resolve_model
from tflite_gate.policy.schema import Policy

PathKey = tuple[str | int, ...]


def variant_entry(loaded: LoadedPolicy, config: ModelConfig, variant: str) -> PathKey:
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


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The list entry called `name`, appended if missing: how a user merges by hand."""
    for item in items:
        if item.get("name") == name:
            return item
    items.append({"name": name})
    return items[-1]


def block_in(tree: dict[str, Any], path: PathKey, loaded: LoadedPolicy) -> dict[str, Any]:
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


def dotted(path: PathKey) -> str:
    """`models[1].variants[0].max_divergence`: a policy path as the user reads it."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class _IndentedDumper(yaml.SafeDumper):
    """Block lists indented under their key, as policies are usually written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def yaml_text(tree: dict[str, Any]) -> str:
    """A snippet in the layout a policy file is written in, in the order it was built."""
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


def pasted_policy(snippet: str, loaded: LoadedPolicy) -> LoadedPolicy:
    """The policy with `snippet` merged in, as a user pastes it."""
    merged = merge(policy_mapping(loaded.policy), yaml.safe_load(snippet))
    try:
        return replace(loaded, policy=Policy.model_validate(merged))
    except ValueError as error:
        raise SuggestionError(f"the suggested snippet is not a valid policy: {error}") from error

"""Variants added to a policy file as text: the new entries go in, every other byte stays.

A policy is a file people edit: comments, key order, quoting and blank lines are theirs.
Loading it and dumping it again would lose all of that, so `tflite-gate init --variants`
inserts the new list entries at the positions PyYAML's nodes give, in the style of the
list they join (block entries under a block list, `{...}` inside a `[...]`).
"""

from __future__ import annotations

from typing import Any

import yaml


class EditError(Exception):
    """The text cannot be edited in place; the message says what to write out first."""


def add_variants(
    text: str, model: int, added: list[dict[str, Any]], inherited: list[dict[str, Any]]
) -> str:
    """`text` with `added` appended to the variants of model number `model`.

    A model without its own `variants:` gets one listing `inherited` (the variants it
    had from `defaults`) and then `added`. Variants reached through an alias or a merge
    key are shared with other entries: refused, rather than changing those too.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        raise EditError("write `version: 1` and `models:` in the policy first")
    models = _value(root, "models", "the models")
    if not isinstance(models, yaml.SequenceNode) or not _inside(models, root):
        raise EditError("write the models out as a list in the file")
    entry = models.value[model]
    if not isinstance(entry, yaml.MappingNode) or not _inside(entry, models):
        raise EditError(f"write model {model} out instead of the alias")
    variants = _value(entry, "variants", f"model {model}'s variants")
    if variants is None:
        return _add_key(text, entry, "variants", [*inherited, *added])
    if not isinstance(variants, yaml.SequenceNode) or not _inside(variants, entry):
        raise EditError(f"write model {model}'s variants out instead of the alias")
    return _append(text, variants, added)


def _value(mapping: yaml.Node, key: str, what: str) -> yaml.Node | None:
    """The node of `key` written in `mapping` itself; None if it is not there."""
    if not isinstance(mapping, yaml.MappingNode):
        raise EditError(f"write {what} out as a mapping")
    for key_node, value in mapping.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise EditError(f"write {what} out instead of the merge key (<<)")
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found: yaml.Node = value
            return found
    return None


def _inside(node: yaml.Node, parent: yaml.Node) -> bool:
    """Written within `parent`, not an alias of a node written elsewhere."""
    start = parent.start_mark.index
    return start <= node.start_mark.index and node.end_mark.index <= parent.end_mark.index


def _append(text: str, sequence: yaml.SequenceNode, items: list[dict[str, Any]]) -> str:
    if sequence.flow_style:
        close = sequence.end_mark.index - 1  # the `]`
        flows = ", ".join(_flow(item) for item in items)
        return text[:close] + (", " if sequence.value else "") + flows + text[close:]
    return _insert_lines(text, _last_end(sequence), block_lines(items, sequence.start_mark.column))


def _add_key(text: str, mapping: yaml.MappingNode, key: str, items: list[dict[str, Any]]) -> str:
    if mapping.flow_style:
        close = mapping.end_mark.index - 1  # the `}`
        flows = ", ".join(_flow(item) for item in items)
        return text[:close] + f", {key}: [{flows}]" + text[close:]
    column = mapping.value[0][0].start_mark.column
    lines = [f"{' ' * column}{key}:", *block_lines(items, column + 2)]
    return _insert_lines(text, _last_end(mapping), lines)


def _last_end(node: yaml.Node) -> int:
    """Where the last value written inside a block collection ends (comments after it
    stay after the new lines)."""
    while isinstance(node, yaml.MappingNode | yaml.SequenceNode) and not node.flow_style:
        if not node.value:
            break
        last = node.value[-1]
        node = last[1] if isinstance(last, tuple) else last
    return int(node.end_mark.index)


def _insert_lines(text: str, end: int, lines: list[str]) -> str:
    """`lines` on their own lines after the line on which the text before `end` ends."""
    newline = text.find("\n", max(end - 1, 0))
    at = len(text) if newline == -1 else newline
    return text[:at] + "\n" + "\n".join(lines) + text[at:]


def block_lines(items: list[dict[str, Any]], column: int) -> list[str]:
    """Block list entries at `column`, their innermost mappings in flow style as `init`
    writes them: `max_divergence: {rel_rmse: 0.02}`."""
    dumped = yaml.safe_dump(items, default_flow_style=None, sort_keys=False, width=1 << 30)
    return [" " * column + line for line in dumped.splitlines()]


def _flow(item: dict[str, Any]) -> str:
    return yaml.safe_dump(item, default_flow_style=True, sort_keys=False, width=1 << 30).strip()

"""YAML → plain data plus the line and column of every node.

PyYAML's loaders throw positions away; a policy error that cannot say where it
is forces the user to hunt. We compose the node graph ourselves, keep each
node's mark, and refuse duplicate keys (PyYAML silently keeps the last one,
which would let a second `ops:` block quietly replace the first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceMap:
    """Positions of value nodes and of mapping keys, by data path."""

    values: dict[PathKey, Mark] = field(default_factory=dict)
    keys: dict[PathKey, Mark] = field(default_factory=dict)

    def nearest(self, path: PathKey, *, prefer_key: bool = False) -> Mark | None:
        """Position of `path`, or of its closest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if prefer_key and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return None


class YamlError(Exception):
    """Malformed YAML, with the position PyYAML reported."""

    def __init__(self, message: str, mark: Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


def _mark(node: yaml.Node) -> Mark:
    return Mark(line=node.start_mark.line + 1, column=node.start_mark.column + 1)


class _Builder:
    def __init__(self) -> None:
        self.constructor = SafeConstructor()
        self.source_map = SourceMap()
        self._merged: dict[int, int] = {}  # id(mapping node) → how many pairs came from `<<`

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.source_map.values[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)

    def _flatten(self, node: yaml.MappingNode) -> int:
        """Resolve `<<: *anchor` merge keys; return how many leading pairs were merged in.

        PyYAML puts merged pairs first and the mapping's own pairs after them, so a
        later pair overrides an earlier one: an own key may override a merged one.
        """
        if id(node) not in self._merged:  # an aliased node is built again, already flat
            merge_tag = "tag:yaml.org,2002:merge"
            own = sum(1 for key_node, _ in node.value if key_node.tag != merge_tag)
            self.constructor.flatten_mapping(node)
            self._merged[id(node)] = len(node.value) - own
        return self._merged[id(node)]

    def _forget(self, prefix: PathKey) -> None:
        """Drop the positions under `prefix` (a merged value that was overridden)."""
        for table in (self.source_map.values, self.source_map.keys):
            for stale in [p for p in table if p[: len(prefix)] == prefix]:
                del table[stale]

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        merged = self._flatten(node)
        result: dict[Any, Any] = {}
        own_keys: set[Any] = set()
        for position, (key_node, value_node) in enumerate(node.value):
            key = self.constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise YamlError("mapping keys must be plain scalars", _mark(key_node))
            if position >= merged:
                if key in own_keys:
                    raise YamlError(f"duplicate key {key!r}", _mark(key_node))
                own_keys.add(key)
            part = key if isinstance(key, str | int) else str(key)
            if key in result:  # overrides a merged-in pair
                self._forget((*path, part))
            self.source_map.keys[(*path, part)] = _mark(key_node)
            result[key] = self.build(value_node, (*path, part))
        return result


def load_yaml_with_marks(text: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document; return its data and where each value sits."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = exc.context_mark
        if context is not None and mark is not None and mark.index >= len(text):
            # "got '<stream end>'" points past the last line; the unclosed
            # bracket or quote is where the construct started.
            mark = context
        position = Mark(mark.line + 1, mark.column + 1) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and context is not None:
            problem += (
                f" ({exc.context} started at line {context.line + 1}, column {context.column + 1})"
            )
        raise YamlError(f"YAML syntax error: {problem}", position) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML error: {exc}", None) from None
    if node is None:
        return None, SourceMap()
    builder = _Builder()
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        position = Mark(mark.line + 1, mark.column + 1) if mark else None
        raise YamlError(f"YAML error: {exc.problem}", position) from None
    return data, builder.source_map

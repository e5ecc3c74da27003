"""YAML → plain data plus the line and column of every node.

PyYAML's loaders throw positions away; a policy error that cannot say where it
is forces the user to hunt. We compose the node graph ourselves, keep each
node's mark, and refuse duplicate keys (PyYAML silently keeps the last one,
which would let a second `ops:` block quietly replace the first).

The policy comes from untrusted pull requests, so composing is bounded: a few
hundred bytes of nested aliases ("billion laughs") would otherwise expand to
billions of nodes, and deep nesting would exhaust the stack.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from tflite_gate.findings import Location

PathKey = tuple[str | int, ...]


def dotted(path: PathKey) -> str:
    """`models[0].data.calibration`: a data path as messages name the key."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class Mark:
    """A place in the policy file, as editors and GitHub count it."""

    line: int  # 1-based
    column: int  # 1-based


def mark_to_location(display_path: str, mark: Mark | None) -> Location:
    """Where a finding about the policy points: its file, and the line when known."""
    return Location(
        path=display_path, line=mark.line if mark else None, column=mark.column if mark else None
    )


@dataclass
class SourceMap:
    """Positions of value nodes and of mapping keys, and scalars' text as written, by data path.

    The text is what a message quotes back: `2.10` as written, not the number 2.1
    YAML made of it.
    """

    values: dict[PathKey, Mark] = field(default_factory=dict)
    keys: dict[PathKey, Mark] = field(default_factory=dict)
    texts: dict[PathKey, str] = field(default_factory=dict)

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


class _Positions:
    """PyYAML's marks as editors and GitHub number lines: only a newline ends one.

    YAML also breaks lines at a lone CR, NEL, U+2028 and U+2029, so its own line
    numbers would put an annotation on the wrong line of a file holding one.
    """

    def __init__(self, text: str) -> None:
        self._starts = [0, *(found.end() for found in re.finditer("\n", text))]

    def __call__(self, mark: Any) -> Mark:
        line = bisect_right(self._starts, mark.index) - 1
        return Mark(line=line + 1, column=mark.index - self._starts[line] + 1)


# Far above what a policy needs (aliases share a few blocks between models), far
# below what takes noticeable time to build and validate.
MAX_ALIASED_NODES = 10_000
MAX_DEPTH = 64


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader's composer, counting what aliases expand to and how deep nodes nest.

    Each node's expanded size (itself plus everything below it, aliases expanded) is
    known once it is composed, so an alias costs its anchor's size; the total is
    refused at the alias that crosses the budget, before anything is expanded.
    """

    def __init__(self, stream: str, positions: _Positions) -> None:
        super().__init__(stream)
        self._position = positions
        self._sizes: dict[int, int] = {}  # id(composed node) → expanded size
        self._aliased = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            aliased = super().compose_node(parent, index)
            self._count_alias(event, aliased)
            return aliased
        if self._depth >= MAX_DEPTH:
            raise YamlError(
                f"flatten the structure: it nests more than {MAX_DEPTH} levels deep, and a "
                "policy needs a few",
                self._event_mark(event),
            )
        self._depth += 1
        node = super().compose_node(parent, index)
        self._depth -= 1
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        self._sizes[id(node)] = 1 + sum(self._sizes[id(child)] for child in children)
        return node

    def _event_mark(self, event: yaml.Event) -> Mark | None:
        return self._position(event.start_mark) if event.start_mark else None

    def _count_alias(self, event: yaml.Event, node: yaml.Node | None) -> None:
        name = getattr(event, "anchor", "")
        size = self._sizes.get(id(node))
        if size is None:  # the anchored node is still being composed
            raise YamlError(
                f"repeat the values instead of alias *{name} inside its own anchor "
                f"&{name}: a policy cannot be recursive",
                self._event_mark(event),
            )
        self._aliased += size
        if self._aliased > MAX_ALIASED_NODES:
            raise YamlError(
                f"alias *{name}: use fewer aliases or write the values out; aliases here "
                f"expand to more than {MAX_ALIASED_NODES} values, the limit that stops "
                "alias bombs",
                self._event_mark(event),
            )


# YAML 1.2, which editors and their schema checks read, takes 1e-3 and 1.0e3 as numbers;
# PyYAML's YAML 1.1 resolver takes them as text (it wants a dot and a signed exponent).
_EXPONENT_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+$")
_BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+.0123456789")
)


class _Builder:
    def __init__(self, positions: _Positions) -> None:
        self._position = positions
        self.constructor = SafeConstructor()
        self.source_map = SourceMap()
        self._merged: dict[int, int] = {}  # id(mapping node) → how many pairs came from `<<`

    def _mark(self, node: yaml.Node) -> Mark:
        return self._position(node.start_mark)

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.source_map.values[path] = self._mark(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        self.source_map.texts[path] = node.value
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

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        merged = self._flatten(node)
        keys: list[Any] = []
        own_keys: set[Any] = set()
        for position, (key_node, _) in enumerate(node.value):
            key = self.constructor.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise YamlError("mapping keys must be plain scalars", self._mark(key_node))
            if position >= merged:
                if key in own_keys:
                    raise YamlError(f"duplicate key {key!r}", self._mark(key_node))
                own_keys.add(key)
            keys.append(key)
        # A later pair overrides an earlier one (an own key a merged one): build only
        # the winner, so an overridden value leaves no positions and costs nothing.
        winner = {key: position for position, key in enumerate(keys)}
        result: dict[Any, Any] = dict.fromkeys(keys)
        for position, (key_node, value_node) in enumerate(node.value):
            key = keys[position]
            if winner[key] != position:
                continue
            part = key if isinstance(key, str | int) else str(key)
            self.source_map.keys[(*path, part)] = self._mark(key_node)
            result[key] = self.build(value_node, (*path, part))
        return result


def load_yaml_with_marks(text: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document; return its data and where each value sits."""
    positions = _Positions(text)
    try:
        loader = _BoundedLoader(text, positions)
        try:
            node = loader.get_single_node()
        except (ValueError, OverflowError):
            # PyYAML makes a double-quoted escape a character with chr(), which refuses a
            # code point past U+10FFFF ("\U90001C15") with a plain error, not a YAML one.
            raise YamlError(
                "YAML syntax error: write \\U escapes up to \\U0010FFFF; this one names no "
                "Unicode character",
                positions(loader.get_mark()),
            ) from None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = exc.context_mark
        if context is not None and mark is not None and mark.index >= len(text):
            # "got '<stream end>'" points past the last line; the unclosed
            # bracket or quote is where the construct started.
            mark = context
        position = positions(mark) if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and context is not None:
            started = positions(context)
            problem += f" ({exc.context} started at line {started.line}, column {started.column})"
        raise YamlError(f"YAML syntax error: {problem}", position) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML error: {exc}", None) from None
    if node is None:
        return None, SourceMap()
    builder = _Builder(positions)
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        position = positions(mark) if mark else None
        raise YamlError(f"YAML error: {exc.problem}", position) from None
    return data, builder.source_map

"""YAML composed with the line and column of every value and key, within bounds.

Lines and columns are counted by hand from the YAML in each test (1-based).
"""

from __future__ import annotations

import pytest

from tflite_gate.findings import Location
from tflite_gate.policy.positions import (
    MAX_ALIASED_NODES,
    MAX_DEPTH,
    Mark,
    SourceMap,
    YamlError,
    dotted,
    load_yaml_with_marks,
    mark_to_location,
)

TEXT = """\
version: 1
models:
  - name: a
    versions: {tensorflow: 2.10}
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (("models", 0, "data", "calibration"), "models[0].data.calibration"),
        (("defaults", "variants", 1, "name"), "defaults.variants[1].name"),
        (("version",), "version"),
        ((), ""),
    ],
)
def test_dotted_names_a_key_as_messages_write_it(
    path: tuple[str | int, ...], expected: str
) -> None:
    assert dotted(path) == expected


def test_a_mark_becomes_a_location_in_the_policy_file() -> None:
    assert mark_to_location("ci/gate.yml", Mark(line=3, column=7)) == Location(
        path="ci/gate.yml", line=3, column=7
    )
    assert mark_to_location("ci/gate.yml", None) == Location(path="ci/gate.yml")


def test_values_and_keys_keep_their_marks_and_scalars_their_text() -> None:
    data, source_map = load_yaml_with_marks(TEXT)
    assert data == {"version": 1, "models": [{"name": "a", "versions": {"tensorflow": 2.1}}]}
    assert source_map.values[("models", 0, "name")] == Mark(3, 11)
    assert source_map.keys[("models", 0, "name")] == Mark(3, 5)
    assert source_map.values[("models", 0)] == Mark(3, 5)
    # The number YAML made is 2.1; the text a message quotes back is the one written.
    assert source_map.texts[("models", 0, "versions", "tensorflow")] == "2.10"


def test_nearest_falls_back_to_the_closest_written_ancestor() -> None:
    _, source_map = load_yaml_with_marks(TEXT)
    assert source_map.nearest(("models", 0, "limits", "timeout_s")) == Mark(3, 5)
    assert source_map.nearest(("models", 0, "versions"), prefer_key=True) == Mark(4, 5)
    assert source_map.nearest(("models", 0, "versions")) == Mark(4, 15)
    assert SourceMap().nearest(("models",)) is None


def test_a_duplicate_key_is_refused_at_the_second_one() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml_with_marks("ops: {allow: [ADD]}\nops: {deny: [MUL]}\n")
    assert caught.value.message == "duplicate key 'ops'"
    assert caught.value.mark == Mark(2, 1)


def test_an_own_key_may_override_a_merged_one() -> None:
    text = "base: &b {timeout_s: 10, memory_mb: 512}\nlimits:\n  <<: *b\n  timeout_s: 20\n"
    data, source_map = load_yaml_with_marks(text)
    assert data["limits"] == {"timeout_s": 20, "memory_mb": 512}
    assert source_map.values[("limits", "timeout_s")] == Mark(4, 14)


def test_only_a_newline_ends_a_line_as_editors_count() -> None:
    _, source_map = load_yaml_with_marks('a: "x\u2028y"\nb: 1\n')
    assert source_map.values[("b",)] == Mark(2, 4)


def test_exponent_numbers_are_numbers_as_in_yaml_1_2() -> None:
    data, _ = load_yaml_with_marks("a: 1e-3\nb: 2E3\nc: 1.5e+2\n")
    assert data == {"a": 0.001, "b": 2000.0, "c": 150.0}


def test_aliases_that_expand_past_the_limit_are_refused() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for previous, name in zip("abcd", "bcde", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 10)}]")
    with pytest.raises(YamlError) as caught:
        load_yaml_with_marks("\n".join(lines) + "\n")
    assert f"more than {MAX_ALIASED_NODES} values" in caught.value.message
    assert caught.value.mark is not None and caught.value.mark.line == 4  # in `d`, past 10000


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"
    with pytest.raises(YamlError) as caught:
        load_yaml_with_marks(text)
    assert caught.value.message.startswith(f"flatten the structure: it nests more than {MAX_DEPTH}")


def test_an_empty_document_is_no_data() -> None:
    assert load_yaml_with_marks("# only a comment\n") == (None, SourceMap())


def test_a_syntax_error_points_where_the_unclosed_bracket_opens() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml_with_marks("version: 1\nmodels: [a\n")
    assert caught.value.message.endswith(
        "(while parsing a flow sequence started at line 2, column 9)"
    )
    assert caught.value.mark == Mark(2, 9)


@pytest.mark.parametrize("escape", ["\\U00110000", "\\U90001C15"])
def test_an_escape_past_the_last_unicode_character_is_a_located_yaml_error(escape: str) -> None:
    """PyYAML raises a plain ValueError or OverflowError for these; found by hypothesis."""
    with pytest.raises(YamlError) as caught:
        load_yaml_with_marks(f'version: 1\nname: "ab{escape}"\n')
    assert caught.value.message.startswith("YAML syntax error: write \\U escapes up to")
    assert caught.value.mark is not None and caught.value.mark.line == 2

"""Adding variants to a policy as text: the new entries go in, every other byte stays."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import yaml

from tflite_gate.policy.edit import EditError, add_variants

INT8 = {"name": "int8", "quantization": "int8", "max_divergence": {"rel_rmse": 0.02}}


def _added(before: str, after: str) -> list[str]:
    """The lines `after` has that `before` lacks; fails unless `before`'s lines are all kept."""
    old, new = before.splitlines(), after.splitlines()
    kept = iter(new)
    assert all(line in kept for line in old), f"a line of the policy changed:\n{after}"
    extra = list(new)
    for line in old:
        extra.remove(line)
    return extra


def _variants(text: str, model: int = 0) -> Any:
    return yaml.safe_load(text)["models"][model]["variants"]


def test_a_block_list_gets_the_entry_after_its_last_item_and_keeps_the_comments() -> None:
    before = textwrap.dedent(
        """\
        # written by init, edited by hand
        version: 1
        models:
          - name: tiny   # the app's classifier
            source: tiny.keras
            variants:
              - name: float
                max_divergence: {rel_rmse: 2.0e-05, min_cosine: 0.9999996}
              # - name: dynamic   (tried, too slow)
            ops:
              allow: [FULLY_CONNECTED, SOFTMAX]
        """
    )
    after = add_variants(before, 0, [INT8], inherited=[])
    assert _added(before, after) == [
        "      - name: int8",
        "        quantization: int8",
        "        max_divergence: {rel_rmse: 0.02}",
    ]
    assert _variants(after) == [
        {"name": "float", "max_divergence": {"rel_rmse": 2e-05, "min_cosine": 0.9999996}},
        INT8,
    ]
    assert yaml.safe_load(after)["models"][0]["ops"] == {"allow": ["FULLY_CONNECTED", "SOFTMAX"]}


def test_a_flow_list_gets_the_entry_before_its_bracket() -> None:
    before = "version: 1\nmodels:\n  - {name: a, source: a.keras, variants: [{name: float}]}\n"
    after = add_variants(before, 0, [INT8], inherited=[])
    assert after == (
        "version: 1\nmodels:\n  - {name: a, source: a.keras, variants: [{name: float}, "
        "{name: int8, quantization: int8, max_divergence: {rel_rmse: 0.02}}]}\n"
    )


def test_a_model_without_variants_gets_its_inherited_ones_and_the_new() -> None:
    before = textwrap.dedent(
        """\
        version: 1
        defaults:
          variants: [{name: float}, {name: f16, quantization: float16}]
        models:
          - name: a
            source: a.keras
          - name: b
            source: b.keras"""  # no newline at the end of the file
    )
    inherited = [{"name": "float"}, {"name": "f16", "quantization": "float16"}]
    after = add_variants(before, 0, [INT8], inherited=inherited)
    assert _variants(after, 0) == [*inherited, INT8]
    assert "variants" not in yaml.safe_load(after)["models"][1]  # b keeps the defaults
    assert _added(before, after)[0] == "    variants:"
    flow = "version: 1\nmodels:\n  - {name: a, source: a.keras}\n"
    assert _variants(add_variants(flow, 0, [INT8], inherited=[{"name": "float"}])) == [
        {"name": "float"},
        INT8,
    ]


def test_the_second_model_is_edited_where_it_is_written() -> None:
    before = textwrap.dedent(
        """\
        version: 1
        models:
          - name: a
            source: a.keras
            variants:
            - name: float
          - name: b
            source: b.keras
            variants:
            - name: float
        """
    )
    after = add_variants(before, 1, [INT8], inherited=[])
    assert _variants(after, 0) == [{"name": "float"}]
    assert _variants(after, 1) == [{"name": "float"}, INT8]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "version: 1\nx: &v [{name: float}]\nmodels:\n  - {name: a, source: a.keras, "
            "variants: *v}\n",
            "write model 0's variants out instead of the alias",
        ),
        (
            "version: 1\nx: &m {source: a.keras, variants: [{name: float}]}\nmodels:\n"
            "  - {<<: *m, name: a}\n",
            "write model 0's variants out instead of the merge key",
        ),
    ],
)
def test_variants_shared_through_an_anchor_are_not_edited(text: str, says: str) -> None:
    with pytest.raises(EditError, match=says):
        add_variants(text, 0, [INT8], inherited=[])

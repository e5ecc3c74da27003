"""Policy snippets: the block a variant's thresholds are written in, YAML laid out as
policies are written, and merging a snippet into the policy the way a user pastes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.check_facts import loaded_policy
from tests.support.suggest_reports import TWO_VARIANTS
from tflite_gate.judge.suggest import (
    SuggestionError,
    block_in,
    dotted,
    merge,
    pasted_policy,
    policy_mapping,
    variant_entry,
    yaml_text,
)
from tflite_gate.policy.resolve import AS_IS_VARIANT, resolve_model

DEFAULTS = """\
    version: 1
    defaults:
      variants: [{name: float}, {name: int8, quantization: int8}]
    models:
      - {name: a, source: a.keras}
      - {name: q, source: q.tflite, reference: q.keras}
      - name: own
        source: own.keras
        variants: [{name: fp16, quantization: float16}]
    """


def test_a_variant_is_written_in_the_list_it_comes_from(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, DEFAULTS)
    a, q, own = (resolve_model(loaded, index) for index in range(3))
    assert variant_entry(loaded, a, "int8") == ("defaults", "variants", 1)
    assert variant_entry(loaded, own, "fp16") == ("models", 2, "variants", 0)
    assert variant_entry(loaded, q, AS_IS_VARIANT) == ("models", 1)  # a .tflite's own run


def test_a_model_without_any_variant_list_gets_one_in_its_own_block(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, "version: 1\nmodels:\n  - {name: m, source: m.keras}\n")
    config = resolve_model(loaded, 0)
    assert variant_entry(loaded, config, "float") == ("models", 0, "variants", 0)


def test_a_block_is_found_by_names_and_created_once(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    tree: dict[str, object] = {}
    block = block_in(tree, ("models", 0, "variants", 1, "max_divergence"), loaded)
    block["min_cosine"] = 0.99
    again = block_in(tree, ("models", 0, "variants", 1, "max_divergence"), loaded)
    again["max_abs"] = 0.5
    block_in(tree, ("models", 0, "variants", 0), loaded)
    assert tree == {
        "models": [
            {
                "name": "det",
                "variants": [
                    {"name": "int8", "max_divergence": {"min_cosine": 0.99, "max_abs": 0.5}},
                    {"name": "float"},
                ],
            }
        ]
    }


def test_a_defaults_block_is_named_after_the_defaults_variant(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, DEFAULTS)
    tree: dict[str, object] = {}
    block_in(tree, ("defaults", "variants", 1), loaded)["keep_float"] = {"ops": ["SOFTMAX"]}
    assert tree == {
        "defaults": {"variants": [{"name": "int8", "keep_float": {"ops": ["SOFTMAX"]}}]}
    }


def test_a_path_reads_as_the_user_writes_it() -> None:
    assert dotted(("models", 1, "variants", 0, "max_divergence")) == (
        "models[1].variants[0].max_divergence"
    )
    assert dotted(("defaults", "variants", 2)) == "defaults.variants[2]"
    assert dotted(()) == ""


def test_yaml_is_laid_out_as_policies_are_written() -> None:
    tree = {"models": [{"name": "det", "variants": [{"name": "int8", "io": "int8"}]}]}
    assert yaml_text(tree) == (
        "models:\n  - name: det\n    variants:\n      - name: int8\n        io: int8\n"
    )


def test_merging_goes_by_key_and_by_name_and_leaves_the_policy_alone() -> None:
    policy = {
        "version": 1,
        "models": [{"name": "a", "ops": {"allow": ["ADD"]}}, {"name": "b"}],
        "defaults": {"runtimes": ["x", "y"]},
    }
    snippet = {
        "models": [{"name": "b", "budgets": {"max_size_bytes": 10}}, {"name": "c"}],
        "defaults": {"runtimes": ["z"]},  # a list of plain values is replaced
    }
    merged = merge(policy, snippet)
    assert merged == {
        "version": 1,
        "models": [
            {"name": "a", "ops": {"allow": ["ADD"]}},
            {"name": "b", "budgets": {"max_size_bytes": 10}},
            {"name": "c"},
        ],
        "defaults": {"runtimes": ["z"]},
    }
    assert policy["models"] == [{"name": "a", "ops": {"allow": ["ADD"]}}, {"name": "b"}]
    snippet["models"][1]["name"] = "changed"  # type: ignore[index]
    assert merged["models"][2] == {"name": "c"}  # nothing shared with the snippet either


def test_the_policy_mapping_holds_what_was_written_in_the_yaml_spelling(tmp_path: Path) -> None:
    loaded = loaded_policy(
        tmp_path,
        """\
        version: 1
        models:
          - name: m
            source: m.keras
            runtimes: [{requirement: "tflite-runtime==2.14.0", with: ["numpy<2"]}]
        """,
    )
    assert policy_mapping(loaded.policy) == {
        "version": 1,
        "models": [
            {
                "name": "m",
                "source": "m.keras",
                "runtimes": [{"requirement": "tflite-runtime==2.14.0", "with": ["numpy<2"]}],
            }
        ],
    }


def test_a_pasted_snippet_gives_the_policy_a_user_would_have(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    snippet = yaml_text({"models": [{"name": "det", "variants": [{"name": "int8", "io": "int8"}]}]})
    pasted = pasted_policy(snippet, loaded)
    int8 = resolve_model(pasted, 0).variants[1]
    assert (int8.name, int8.quantization, int8.io) == ("int8", "int8", "int8")
    assert resolve_model(loaded, 0).variants[1].io == "float32"  # the loaded one is unchanged
    assert pasted.display_path == loaded.display_path


def test_a_snippet_that_makes_the_policy_invalid_is_refused(tmp_path: Path) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    broken = yaml.safe_dump({"models": [{"name": "det", "variants": [{"name": "int8", "x": 1}]}]})
    with pytest.raises(SuggestionError, match="the suggested snippet is not a valid policy"):
        pasted_policy(broken, loaded)

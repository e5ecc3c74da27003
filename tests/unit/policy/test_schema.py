"""The policy's models: the schema an editor checks with refuses and accepts what the
loader does; and what a source or a runtime entry names."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tflite_gate.app.schema import policy_schema, shipped_file
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.schema import (
    DEFAULT_RUNTIME,
    RuntimeEntry,
    is_factory,
    looks_like_path,
    runtime_name,
)


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("version: 1\nmodels: [{name: m, source: m.keras, quantize: int8}]\n", "quantize"),
        ("version: 2\nmodels: [{name: m, source: m.keras}]\n", "2"),
        ("version: 1\nmodels: [{name: m, source: m.keras, variants: [{name: v, "
         "quantization: int4}]}]\n", "int4"),
        ("version: 1\nmodels: []\n", "[]"),
        ("version: 1\nmodels: [{name: m, source: m.keras, limits: {memory_mb: 10}}]\n", "10"),
        ("version: 1\nmodels: [{name: m, source: m.tflite, input_map: {a: ''}}]\n", "''"),
    ],
)  # fmt: skip
def test_an_editor_flags_what_the_gate_refuses(tmp_path: Path, text: str, wrong: str) -> None:
    with pytest.raises(jsonschema.ValidationError, match=re.escape(wrong)):
        jsonschema.validate(yaml.safe_load(text), policy_schema())
    (tmp_path / "tflite-gate.yml").write_text(text)
    with pytest.raises(PolicyError) as refused:
        load_policy(tmp_path / "tflite-gate.yml", tmp_path)
    assert refused.value.issues


# --------------------------------------------------------------------------- loader = schema

SHIPPED_POLICY_SCHEMA = jsonschema.Draft202012Validator(
    json.loads(shipped_file("policy").read_text())
)
# Settings whose validity is their type and range alone (no cross-key rule, no path on
# disk), each as where it sits in a policy with one model named m.
TYPED_SETTINGS: list[tuple[str | int, ...]] = [
    ("fail_on",),
    ("version",),
    ("models", 0, "max_divergence", "min_cosine"),
    ("models", 0, "max_divergence", "max_abs"),
    ("models", 0, "max_divergence", "min_snr_db"),
    ("models", 0, "max_divergence", "min_top1"),
    ("models", 0, "max_divergence", "per_output", "out", "rmse"),
    ("models", 0, "variants", 0, "max_divergence", "rel_rmse"),
    ("models", 0, "variants", 0, "quantization"),
    ("models", 0, "variants"),
    ("models", 0, "runtimes"),
    ("models", 0, "limits"),
    ("models", 0, "limits", "timeout_s"),
    ("models", 0, "limits", "memory_mb"),
    ("models", 0, "limits", "num_threads"),
    ("defaults", "limits", "interpreter_timeout_s"),
    ("defaults", "budgets", "max_size_bytes"),
    ("defaults", "budgets", "max_latency_ms"),
    ("defaults", "budgets", "latency_runs"),
    ("defaults", "budgets", "latency_severity"),
    ("defaults", "data", "samples"),
    ("defaults", "data", "evaluation", "generate", "count"),
    ("defaults", "data", "evaluation", "generate", "seed"),
    ("defaults", "ops"),
    ("defaults", "ops", "select_tf_ops"),
    ("defaults", "ops", "allow"),
    ("defaults", "regression", "max_size_increase"),
    ("defaults", "regression", "allow_new_ops"),
    ("models", 0, "safe_mode"),
    ("models", 0, "signature"),
    ("models", 0, "classification"),
    ("models", 0, "input_shapes", "x"),
]
# Values JSON can carry (no NaN, no infinity), of every type a YAML scalar can take,
# with the edges of the ranges the policy sets; lists without repeats (a repeated name
# is refused by a rule no schema type states).
typed_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from([0, 1, 2, 255, 256, 10_000, 10_001, 100_000, 100_001, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-3, 300).map(float),
    st.sampled_from([0.5, 1.0, 1.5, -1.0, -1.5, 0.9999]),
    st.sampled_from(
        ["0.9999", "1", "256", "true", "10%", "5.5%", "1e2%", ".5%", " 5 %", "-5%", "inf%"]
    ),
    st.sampled_from(["error", "warning", "notice", "int8", "none", "", "serving_default"]),
    st.lists(st.sampled_from([1, 2, "float", {"name": "v"}, None]), max_size=2, unique_by=repr),
    st.sampled_from([{}, {"name": "v"}, {"timeout_s": 5}, {"allow": ["ADD"]}]),
)


def _policy_with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A valid policy with `value` placed at `path` (lists and mappings made on the way)."""
    policy: dict[str, Any] = {"version": 1, "models": [{"name": "m", "source": "m.keras"}]}
    if path[:2] == ("models", 0) and len(path) > 3 and path[2] == "variants":
        policy["models"][0]["variants"] = [{"name": "v"}]
    node: Any = policy
    for part, following in itertools.pairwise(path):
        empty: Any = [] if isinstance(following, int) else {}
        node = node[part] if isinstance(node, list) else node.setdefault(part, empty)
    node[path[-1]] = value
    return policy


# 60 examples keep this in the fast tier (about 0.2 s); each run draws other ones.
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(TYPED_SETTINGS), typed_values)
def test_the_gate_and_the_shipped_schema_accept_the_same_values(
    tmp_path: Path, path: tuple[str | int, ...], value: Any
) -> None:
    """What an editor (the shipped schema) accepts, the gate accepts, and the reverse."""
    text = yaml.safe_dump(_policy_with(path, value), sort_keys=False)
    schema_accepts = SHIPPED_POLICY_SCHEMA.is_valid(yaml.safe_load(text))
    (tmp_path / "tflite-gate.yml").write_text(text)
    try:
        load_policy(tmp_path / "tflite-gate.yml", tmp_path)
        gate_accepts = True
    except PolicyError:
        gate_accepts = False
    assert gate_accepts == schema_accepts, text


# --------------------------------------------------------------------------- what entries name


@pytest.mark.parametrize(
    ("source", "factory"),
    [
        ("pkg.models:build", True),
        ("build_model:make", True),
        ("models/a.keras", False),
        ("pkg.models:build:extra", False),
        ("C:/models/a.keras", False),
    ],
)
def test_a_factory_is_a_module_and_a_function(source: str, factory: bool) -> None:
    assert is_factory(source) is factory


@pytest.mark.parametrize(
    ("requirement", "path"),
    [
        ("tflite-runtime==2.14.0", False),
        ("wheels/tflite_runtime.whl", True),
        ("./vendored/runtime", True),
        ("runtime-2.14-py3-none-any.whl", True),  # an archive, even without a directory
        ("https://example.org/runtime.whl", False),  # a URL is pip's to fetch, not a path
        ("file:wheels/runtime.whl", False),  # refused by the loader as a file: URL
    ],
)
def test_a_requirement_is_a_path_as_pip_reads_it(requirement: str, path: bool) -> None:
    assert looks_like_path(requirement) is path


def test_a_runtime_is_named_by_its_requirement_and_its_registerers() -> None:
    assert runtime_name(" tflite-runtime==2.14.0 ") == "tflite-runtime==2.14.0"
    assert runtime_name(RuntimeEntry(requirement=DEFAULT_RUNTIME)) == DEFAULT_RUNTIME
    entry = RuntimeEntry(requirement=DEFAULT_RUNTIME, custom_op_registerers=["A", "pkg.ops:b"])
    assert runtime_name(entry) == "ai-edge-litert + A + pkg.ops:b"

"""The policy's JSON Schema: shipped, generated from the models, and right about real policies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import REPO

from tflite_gate.cli import main
from tflite_gate.json_schemas import policy_schema, schema_text, shipped_file
from tflite_gate.policy import PolicyError, load_policy

EXAMPLES = sorted((REPO / "examples").glob("*.yml"))


@pytest.mark.parametrize("name", ["policy", "report"])
def test_shipped_schemas_are_generated_from_the_models(name: str) -> None:
    assert shipped_file(name).read_text() == schema_text(name), (  # type: ignore[arg-type]
        "run: python -m tflite_gate.json_schemas"
    )


def test_schema_policy_prints_the_policy_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "policy"]) == 0
    assert json.loads(capsys.readouterr().out) == policy_schema()


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_policy_fits_the_schema(example: Path) -> None:
    assert EXAMPLES, "examples/*.yml"
    jsonschema.validate(yaml.safe_load(example.read_text()), policy_schema())


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

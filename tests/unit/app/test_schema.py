"""The JSON Schemas the package ships: generated from the models, printed by `tflite-gate
schema`, and (the policy's) refusing an empty key as the loader does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.support.harness import REPO
from tflite_gate.app import schema as schemas
from tflite_gate.app.schema import (
    GENERATORS,
    SCHEMA_DIR,
    policy_schema,
    schema_text,
    shipped_file,
)
from tflite_gate.cli import main
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import load_policy
from tflite_gate.report.json_report import report_schema

EXAMPLES = sorted((REPO / "examples").glob("*.yml"))


@pytest.mark.parametrize("name", ["policy", "report"])
def test_shipped_schemas_are_generated_from_the_models(name: str) -> None:
    assert shipped_file(name).read_text() == schema_text(name), (  # type: ignore[arg-type]
        "run: python -m tflite_gate.app.schema"
    )


def test_schema_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == report_schema()


def test_schema_policy_prints_the_policy_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "policy"]) == 0
    assert json.loads(capsys.readouterr().out) == policy_schema()


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_policy_fits_the_schema(example: Path) -> None:
    assert EXAMPLES, "examples/*.yml"
    jsonschema.validate(yaml.safe_load(example.read_text()), policy_schema())


def test_the_shipped_files_are_the_packages_own() -> None:
    assert SCHEMA_DIR == REPO / "tflite_gate" / "schemas"
    assert set(GENERATORS) == {"policy", "report"}
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json")) == [
        "policy.schema.json",
        "report.schema.json",
    ]


def test_the_policy_schema_says_what_it_is_for_an_editor() -> None:
    schema = policy_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/schemas/policy.schema.json")
    assert schema["title"] == "tflite-gate policy (tflite-gate.yml)"


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _nodes(child)


def test_null_is_never_a_policy_value_nor_a_default() -> None:
    """The loader refuses an empty key, so an editor must never suggest or accept one."""
    nodes = list(_nodes(policy_schema()))
    assert [node for node in nodes if node.get("type") == "null"] == []
    assert [node for node in nodes if "default" in node and node["default"] is None] == []
    assert any(node.get("type") == "null" for node in _nodes(report_schema()))  # reports have null


@pytest.mark.parametrize("key", ["variants", "runtimes", "input_shapes"])
def test_an_empty_key_is_flagged_by_the_editor_and_refused_by_the_gate(
    tmp_path: Path, key: str
) -> None:
    text = f"version: 1\nmodels:\n  - name: m\n    source: m.keras\n    {key}:\n"
    with pytest.raises(jsonschema.ValidationError, match="None is not of type"):
        jsonschema.validate(yaml.safe_load(text), policy_schema())
    (tmp_path / "tflite-gate.yml").write_text(text)
    with pytest.raises(PolicyError):
        load_policy(tmp_path / "tflite-gate.yml", tmp_path)


def test_regenerating_writes_every_schema_as_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schemas, "SCHEMA_DIR", tmp_path / "schemas")  # not the package's files
    schemas.main()
    written = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert written == ["policy.schema.json", "report.schema.json"]
    for name in GENERATORS:
        assert (tmp_path / "schemas" / f"{name}.schema.json").read_text() == schema_text(name)
        assert schema_text(name).endswith("}\n")

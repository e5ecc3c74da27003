"""The JSON Schemas the package ships: the policy's (for editors) and the report's (for scripts).

Both are generated from the pydantic models; the files in `tflite_gate/schemas/` must
equal what the models generate (a test checks), so regenerate them after a model
change with `python -m tflite_gate.app.schema`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from tflite_gate.policy.schema import Policy
from tflite_gate.report.json_report import report_schema

SchemaName = Literal["policy", "report"]
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
SCHEMA_URL = "https://github.com/tflite-gate/tflite-gate/schemas/{name}.schema.json"


class _WithoutNull(GenerateJsonSchema):
    """A policy key is absent (its default) or has a value: null is never one.

    The loader refuses an empty key (`variants:` is null to YAML), so the schema an
    editor checks with must refuse it too, and suggest no null default.
    """

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if "default" in json_schema and json_schema["default"] is None:
            del json_schema["default"]
        return json_schema


def policy_schema() -> dict[str, Any]:
    """The policy file's schema, as an editor's YAML language server reads it."""
    schema = Policy.model_json_schema(mode="validation", schema_generator=_WithoutNull)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_URL.format(name="policy")
    schema["title"] = "tflite-gate policy (tflite-gate.yml)"
    return schema


GENERATORS: dict[SchemaName, Callable[[], dict[str, Any]]] = {
    "policy": policy_schema,
    "report": report_schema,
}


def schema_text(name: SchemaName) -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(GENERATORS[name](), indent=2) + "\n"


def shipped_file(name: SchemaName) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


def main() -> None:
    """Regenerate every shipped schema."""
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name in GENERATORS:
        shipped_file(name).write_text(schema_text(name), encoding="utf-8")


if __name__ == "__main__":
    main()

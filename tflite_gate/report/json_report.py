"""The JSON report: the machine-readable truth, validated by the shipped schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tflite_gate.files import write_text_atomic
from tflite_gate.report.model import Report

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "report.schema.json"


def report_schema() -> dict[str, Any]:
    """JSON Schema generated from the pydantic model (the shipped file must equal it)."""
    schema = Report.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/tflite-gate/tflite-gate/schemas/report.schema.json"
    return schema


def write_json_report(report: Report, path: Path) -> None:
    """Write atomically: a reader (or a cancelled job) never sees half a report."""
    write_text_atomic(path, report.model_dump_json(indent=2) + "\n")

"""The JSON report: the machine-readable truth, validated by the shipped schema."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

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
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = report.model_dump_json(indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(payload)
        Path(temporary).chmod(0o644)  # mkstemp makes 0600; later steps may run as another user
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main() -> None:
    """Regenerate the shipped schema: `python -m tflite_gate.report.json_report`."""
    SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_FILE.write_text(json.dumps(report_schema(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

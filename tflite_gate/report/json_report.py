"""The JSON report: the machine-readable truth, validated by the shipped schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tflite_gate.report.model import Report
from tflite_gate.support.files import write_text_atomic

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schemas" / "report.schema.json"


def report_schema() -> dict[str, Any]:
    """JSON Schema generated from the pydantic model (the shipped file must equal it)."""
    schema = Report.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/tflite-gate/tflite-gate/schemas/report.schema.json"
    return schema


def json_text(report: Report) -> str:
    """The report as the JSON that the file, stdout (`--report -`) and `--format json` carry."""
    return report.model_dump_json(indent=2) + "\n"


def write_json_report(report: Report, path: Path) -> None:
    """Write atomically: a reader (or a cancelled job) never sees half a report."""
    write_text_atomic(path, json_text(report))


class ReportFileError(Exception):
    """A file given as a report that is not one, or cannot be read (a usage error)."""


def read_json_report(path: Path) -> Report:
    """A tflite-gate JSON report; anything else is an ReportFileError naming the file."""
    if path.exists() and not path.is_file():  # a FIFO or a device would never end
        raise ReportFileError(f"pass report files only: {path} is not a regular file")
    try:
        return Report.model_validate_json(path.read_bytes())
    except OSError as error:
        raise ReportFileError(f"make {path} readable: {error.strerror or error}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise ReportFileError(
            f"pass tflite-gate JSON reports only: {path} is not one ({where}: {first['msg']})"
        ) from None

"""The JSON report: the schema it ships, the text it writes, and what it refuses to read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from tests.support.harness import REPO
from tests.support.rich_reports import rich_report
from tflite_gate.report.json_report import (
    SCHEMA_FILE,
    ReportFileError,
    json_text,
    read_json_report,
    report_schema,
    write_json_report,
)
from tflite_gate.report.model import REPORT_SCHEMA_VERSION, Report
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding


def test_shipped_schema_is_generated_from_the_model() -> None:
    shipped = json.loads(SCHEMA_FILE.read_text())
    assert shipped == report_schema(), "run: python -m tflite_gate.app.schema"


def test_shipped_report_schema_matches_the_report_model() -> None:
    """The schema in the package is what scripts validate against: it must not drift."""
    shipped = REPO / "tflite_gate" / "schemas" / "report.schema.json"
    assert shipped == SCHEMA_FILE
    assert json.loads(shipped.read_text()) == report_schema(), (
        "regenerate it: tflite-gate schema > tflite_gate/schemas/report.schema.json"
    )


def test_the_schema_says_its_draft_and_where_it_lives() -> None:
    schema = report_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/schemas/report.schema.json")
    assert set(schema["properties"]) == set(Report.model_fields)
    assert schema["properties"]["schema_version"]["default"] == REPORT_SCHEMA_VERSION


def test_written_report_validates_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    report = new_report()
    report.add([make_finding("flex-op", "m/v: uses FlexFoo", model="m", variant="v")])
    report.finalize("error")
    target = tmp_path / "out" / "report.json"
    write_json_report(report, target)
    jsonschema.validate(json.loads(target.read_text()), json.loads(SCHEMA_FILE.read_text()))
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_the_json_text_is_indented_ends_in_a_newline_and_reads_back_equal() -> None:
    report = rich_report()
    text = json_text(report)
    assert text.endswith("}\n") and text.count("\n") > 10
    assert text.startswith('{\n  "schema_version": ')
    assert json.loads(text) == report.model_dump(mode="json")


def test_a_written_report_reads_back_as_the_same_report(tmp_path: Path) -> None:
    report = rich_report()
    path = tmp_path / "tflite-gate-report.json"
    write_json_report(report, path)
    assert read_json_report(path) == report


def test_writing_again_replaces_the_whole_report(tmp_path: Path) -> None:
    path = tmp_path / "tflite-gate-report.json"
    write_json_report(rich_report(), path)
    smaller = new_report()
    write_json_report(smaller, path)
    assert path.read_text() == json_text(smaller)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "shard.json"
    os.mkfifo(fifo)
    with pytest.raises(ReportFileError, match="is not a regular file"):
        read_json_report(fifo)


def test_a_directory_is_refused_as_no_regular_file(tmp_path: Path) -> None:
    with pytest.raises(ReportFileError) as refused:
        read_json_report(tmp_path)
    assert str(refused.value) == f"pass report files only: {tmp_path} is not a regular file"


def test_a_missing_file_is_named_with_why_it_could_not_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "gone.json"
    with pytest.raises(ReportFileError) as refused:
        read_json_report(missing)
    assert str(refused.value) == f"make {missing} readable: No such file or directory"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("not json at all", "the top level: Invalid JSON"),
        ('{"hello": 1}', "tool: Field required"),
        (json_text(new_report()).replace('"fail_on": "error"', '"fail_on": "often"'), "fail_on"),
    ],
)
def test_a_file_that_is_no_report_says_where_it_differs(
    tmp_path: Path, content: str, where: str
) -> None:
    path = tmp_path / "notes.json"
    path.write_text(content)
    with pytest.raises(ReportFileError) as refused:
        read_json_report(path)
    message = str(refused.value)
    assert message.startswith(f"pass tflite-gate JSON reports only: {path} is not one (")
    assert where in message

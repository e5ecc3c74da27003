"""Every part of the report refuses fields it does not have: a typo is an error, never a
value silently lost (in a report file read back by `--baseline` or `merge` too)."""

from __future__ import annotations

import inspect
import json

import pydantic
import pytest

from tflite_gate.report import model as report_model
from tflite_gate.report.json_report import json_text
from tflite_gate.report.model import Report, StrictModel
from tflite_gate.report.model.stamp import new_report


class Part(StrictModel):
    name: str


def test_a_field_the_model_does_not_have_is_refused_by_name() -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        Part.model_validate({"name": "x", "nmae": "y"})
    [error] = refused.value.errors()
    assert (error["type"], error["loc"]) == ("extra_forbidden", ("nmae",))


def test_every_model_of_the_report_is_strict() -> None:
    models = [
        value
        for _, value in inspect.getmembers(report_model, inspect.isclass)
        if issubclass(value, pydantic.BaseModel)
    ]
    assert Report in models and len(models) > 20
    loose = [model.__name__ for model in models if not issubclass(model, StrictModel)]
    assert loose == []


def test_a_misspelt_key_deep_in_a_report_file_is_refused() -> None:
    data = json.loads(json_text(new_report()))
    data["tool"]["verison"] = "9"
    with pytest.raises(pydantic.ValidationError, match=r"tool\.verison"):
        Report.model_validate(data)

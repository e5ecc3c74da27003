"""The scratch files both sides of a conversion agree on: results are told from the rest."""

from __future__ import annotations

import pytest

from tflite_gate.convert.scratch import (
    DEPENDENCIES_FILE,
    DIAGNOSIS_FILE,
    EVALUATION_FILE,
    EVALUATION_INPUTS_FILE,
    EVALUATION_STARTED,
    LOAD_FILE,
    REFERENCE_OUTPUTS_FILE,
    RESULT_FILE,
    variant_file,
)


@pytest.mark.parametrize(
    "name",
    [
        LOAD_FILE,
        EVALUATION_FILE,
        EVALUATION_INPUTS_FILE,
        REFERENCE_OUTPUTS_FILE,
        variant_file("int8", "json"),
        variant_file("int8", "tflite"),
        variant_file("float.v2", "tflite"),
    ],
)
def test_results_are_what_a_cache_keeps_and_parts_join(name: str) -> None:
    assert RESULT_FILE.match(name)


@pytest.mark.parametrize(
    "name",
    [
        variant_file("int8", "log"),
        variant_file("int8", "started"),
        EVALUATION_STARTED,
        DEPENDENCIES_FILE,  # joined from every part, not moved from one
        DIAGNOSIS_FILE,
        "request-0.json",
        "worker-0.log",
        "load.log",
        "saved_model",
        "sub/load.json",
    ],
)
def test_logs_requests_and_marks_are_not_results(name: str) -> None:
    assert not RESULT_FILE.match(name)


def test_a_variant_file_is_named_by_the_variant() -> None:
    assert variant_file("int16x8", "json") == "variant-int16x8.json"

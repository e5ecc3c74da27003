"""Which run of a variant the layer diagnosis explains: a quantized one that diverged.

The diagnosis itself converts and runs models (`tests/test_diagnose_e2e.py`); what
decides whether it runs is read from the report alone.
"""

from __future__ import annotations

import pytest

from tflite_gate.judge.diagnose import DIAGNOSED, needs_diagnosis
from tflite_gate.report.model import RuntimeRun, VariantReport


def _variant(quantization: str, *statuses: str) -> VariantReport:
    return VariantReport(
        name="v",
        quantization=quantization,
        io="float32",
        status="converted",
        runs=[RuntimeRun(runtime=f"rt{i}", status=s) for i, s in enumerate(statuses)],  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("quantization", sorted(DIAGNOSED))
def test_the_first_diverged_run_of_a_quantized_variant_is_diagnosed(quantization: str) -> None:
    variant = _variant(quantization, "passed", "diverged", "diverged")
    found = needs_diagnosis(variant)
    assert found is not None and found.runtime == "rt1"


@pytest.mark.parametrize("quantization", ["none", "float16"])
def test_a_variant_the_converter_cannot_keep_partly_float_is_not(quantization: str) -> None:
    assert needs_diagnosis(_variant(quantization, "diverged")) is None


@pytest.mark.parametrize("status", ["passed", "non-finite", "crash", "error", "mismatch"])
def test_only_a_broken_threshold_is_diagnosed(status: str) -> None:
    assert needs_diagnosis(_variant("int8", status)) is None

"""Where a quantized variant loses accuracy, measured inside the worker (TensorFlow: slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.conversion_request import conversion_request, prepared_model
from tests.support.harness import save_tiny_keras
from tflite_gate.convert.diagnosis import diagnose
from tflite_gate.convert.variants import convert_variant
from tflite_gate.model.loader import PreparedModel
from tflite_gate.run.arrays import save_npz
from tflite_gate.run.protocol import (
    ConversionRequest,
    DiagnosisRequest,
    DiagnosisResult,
    VariantRequest,
)

pytestmark = pytest.mark.slow  # TensorFlow's converter and quantizer in this process


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[ConversionRequest, PreparedModel]:
    workspace = tmp_path_factory.mktemp("tiny")
    save_tiny_keras(workspace / "tiny.keras")
    request = conversion_request(workspace, samples=8)
    prepared = prepared_model(request)
    inputs = np.random.default_rng(0).uniform(-1, 1, (8, 1, 8)).astype("float32")
    save_npz(workspace / "inputs.npz", {"x": inputs})
    return request, prepared


def _diagnosed(
    tiny: tuple[ConversionRequest, PreparedModel], quantization: str, tmp_path: Path
) -> DiagnosisResult:
    request, prepared = tiny
    variant = VariantRequest(name=quantization, quantization=quantization)
    converted = convert_variant(
        request,
        prepared.saved_model_dir,
        prepared.signature_key,
        variant,
        prepared.inputs,
        tmp_path,
        prepared.layer_sites,
    )
    assert converted.ok, converted.errors
    order = DiagnosisRequest(
        variant=variant,
        model=str(tmp_path / (converted.tflite_path or "")),
        inputs=str(Path(request.workspace) / "inputs.npz"),
        top=3,
        candidates=[1, 2],
    )
    return diagnose(request.model_copy(update={"diagnose": order}), prepared, tmp_path)


def test_an_int8_variant_gets_its_worst_layers_and_keep_float_models(
    tiny: tuple[ConversionRequest, PreparedModel], tmp_path: Path
) -> None:
    found = _diagnosed(tiny, "int8", tmp_path)
    assert found.ok and 0 < len(found.layers) <= 3
    assert [layer.share >= 0 for layer in found.layers] == [True] * len(found.layers)
    # The output activation kept in float first, then one candidate per entry of
    # `candidates`, each keeping more of the worst layers in float.
    assert len(found.candidates) == 3
    assert found.candidates[0].ops == ["SOFTMAX"]
    kept = [len(c.nodes) for c in found.candidates]
    assert kept == sorted(set(kept))
    for candidate in found.candidates:
        assert candidate.nodes or candidate.ops
        assert (tmp_path / candidate.tflite_path).read_bytes()[4:8] == b"TFL3"


def test_a_dynamic_range_variant_gets_its_layers_but_nothing_to_keep_float(
    tiny: tuple[ConversionRequest, PreparedModel], tmp_path: Path
) -> None:
    found = _diagnosed(tiny, "dynamic", tmp_path)
    assert found.ok and found.layers
    assert found.candidates == []

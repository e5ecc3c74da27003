"""One variant converted inside the worker: the converter's settings, words and failures.

`refuse_unknown` reads a flatbuffer only (fast); the conversions run TensorFlow's
converter in this process on a tiny Keras model (slow).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.conversion_request import FLEX_FACTORY, conversion_request, prepared_model
from tests.support.harness import save_tiny_keras
from tests.support.tflite_builder import build_model, builtin
from tflite_gate.convert.variants import UnknownKeepFloat, convert_variant, refuse_unknown
from tflite_gate.model.loader import PreparedModel
from tflite_gate.run.protocol import ConversionRequest, KeepFloat, VariantRequest, VariantResult

CHAIN = build_model([builtin("RELU"), builtin("TANH")])


def test_keep_float_names_of_the_model_pass() -> None:
    refuse_unknown(CHAIN, KeepFloat(nodes=["t1"], ops=["TANH"]))


def test_an_unknown_tensor_is_refused_with_the_closest_names() -> None:
    with pytest.raises(UnknownKeepFloat, match=r"'t11' is not a tensor .*\(closest: t1\)"):
        refuse_unknown(CHAIN, KeepFloat(nodes=["t11"]))


def test_an_unknown_op_is_refused_with_the_models_ops() -> None:
    with pytest.raises(UnknownKeepFloat, match=r"'SOFTMAX' is not an op .*it has RELU, TANH$"):
        refuse_unknown(CHAIN, KeepFloat(ops=["SOFTMAX"]))


def _convert(
    request: ConversionRequest, prepared: PreparedModel, variant: VariantRequest
) -> VariantResult:
    return convert_variant(
        request,
        prepared.saved_model_dir,
        prepared.signature_key,
        variant,
        prepared.inputs,
        Path(request.scratch),
        prepared.layer_sites,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[ConversionRequest, PreparedModel]:
    workspace = tmp_path_factory.mktemp("tiny")
    save_tiny_keras(workspace / "tiny.keras")
    request = conversion_request(workspace, samples=4)
    return request, prepared_model(request)


@pytest.mark.slow  # TensorFlow's converter
def test_a_variant_is_written_beside_its_log(tiny: tuple[ConversionRequest, PreparedModel]) -> None:
    request, prepared = tiny
    result = _convert(request, prepared, VariantRequest(name="float", quantization="none"))
    assert result.ok and result.errors == []
    assert result.tflite_path == "variant-float.tflite"
    scratch = Path(request.scratch)
    assert (scratch / "variant-float.tflite").read_bytes()[4:8] == b"TFL3"
    assert (scratch / "variant-float.log").exists()


@pytest.mark.slow  # TensorFlow's converter and quantizer
def test_keep_float_leaves_the_named_op_in_float(
    tiny: tuple[ConversionRequest, PreparedModel],
) -> None:
    from tflite_gate.tflite.facts import tensor_and_op_names

    request, prepared = tiny
    kept = VariantRequest(name="kept", quantization="int8", keep_float=KeepFloat(ops=["SOFTMAX"]))
    result = _convert(request, prepared, kept)
    assert result.ok, result.errors
    _, ops = tensor_and_op_names((Path(request.scratch) / "variant-kept.tflite").read_bytes())
    assert {"SOFTMAX", "QUANTIZE", "DEQUANTIZE"} <= ops


@pytest.mark.slow  # TensorFlow's converter
def test_an_unknown_keep_float_name_is_a_conversion_error(
    tiny: tuple[ConversionRequest, PreparedModel],
) -> None:
    request, prepared = tiny
    typo = VariantRequest(name="typo", quantization="int8", keep_float=KeepFloat(nodes=["probz"]))
    result = _convert(request, prepared, typo)
    assert not result.ok
    [error] = result.errors
    assert error.message.startswith("keep_float.nodes: 'probz' is not a tensor")


@pytest.mark.slow  # TensorFlow's converter
def test_an_op_without_a_builtin_fails_at_the_line_that_made_it(tmp_path: Path) -> None:
    (tmp_path / "gram.py").write_text(FLEX_FACTORY)
    request = conversion_request(tmp_path, "gram:build")
    result = _convert(
        request, prepared_model(request), VariantRequest(name="f", quantization="none")
    )
    assert not result.ok
    error = result.errors[0]
    assert error.code == "ERROR_NEEDS_FLEX_OPS"
    assert error.location is not None
    assert (error.location.path, error.location.line) == ("gram.py", 5)

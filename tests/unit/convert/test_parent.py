"""The gate's side of a conversion: work shared among workers, results read back.

The fast tests hand-write what a worker leaves in its scratch; the slow ones run
real conversion workers (one process each, and a pool) on a tiny Keras model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.conversion_request import conversion_request
from tests.support.harness import save_tiny_keras
from tflite_gate.convert.parent import (
    conversion_pool,
    convert_model,
    finished_results,
    run_diagnosis,
    worker_shares,
)
from tflite_gate.convert.scratch import DEPENDENCIES_FILE, LOAD_FILE, variant_file
from tflite_gate.run.protocol import (
    ConversionRequest,
    DiagnosisRequest,
    LoadResult,
    VariantResult,
    write_message,
)


def _request(workspace: Path, *names: str, reference: bool = True) -> ConversionRequest:
    return conversion_request(workspace, "tiny.keras", *names, reference=reference)


def test_one_job_is_the_request_itself(tmp_path: Path) -> None:
    request = _request(tmp_path, "float", "int8")
    assert worker_shares(request, 1) == [request]


def test_calibrated_variants_weigh_double_and_the_reference_is_a_share(tmp_path: Path) -> None:
    shares = worker_shares(_request(tmp_path, "float", "dynamic", "int8", "int16x8"), 2)
    # int8 and int16x8 (2 each) go first, one to each worker; then float and dynamic
    # (1 each); the reference (0.5) to the first of two equal loads. Each share keeps
    # the request's order.
    assert [[v.name for v in share.variants] for share in shares] == [
        ["float", "int8"],
        ["dynamic", "int16x8"],
    ]
    assert [share.reference for share in shares] == [True, False]
    assert [Path(share.scratch).name for share in shares] == ["part-0", "part-1"]


def test_no_more_workers_than_variants(tmp_path: Path) -> None:
    shares = worker_shares(_request(tmp_path, "float", "int8", reference=False), 8)
    assert [[v.name for v in share.variants] for share in shares] == [["int8"], ["float"]]


def test_a_worker_that_left_nothing_failed_while_loading(tmp_path: Path) -> None:
    request = _request(tmp_path, "float")
    Path(request.scratch).mkdir()
    result = finished_results(request, 1.5)
    assert not result.load.ok
    assert result.load.error == "the conversion worker left no result while loading the model"
    assert result.variants == {} and result.duration_s == 1.5


def test_a_variant_without_its_result_was_not_converted(tmp_path: Path) -> None:
    request = _request(tmp_path, "float", "int8")
    scratch = Path(request.scratch)
    scratch.mkdir()
    write_message(scratch / LOAD_FILE, LoadResult(ok=True))
    done = VariantResult(name="float", ok=True, tflite_path=variant_file("float", "tflite"))
    write_message(scratch / variant_file("float", "json"), done)
    result = finished_results(request, 0.0)
    assert result.variants["float"].tflite_path == str(scratch / "variant-float.tflite")
    assert result.variants["int8"].crash == "not converted: the conversion worker left no result"
    assert result.evaluation is None


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = tmp_path_factory.mktemp("tiny")
    save_tiny_keras(workspace / "tiny.keras")
    return workspace


@pytest.mark.slow  # conversion workers: TensorFlow processes
def test_workers_sharing_the_variants_leave_one_workers_results(tiny: Path) -> None:
    request = _request(tiny, "float", "int8")
    result = convert_model(request, timeout_s=300, memory_mb=None, jobs=2)
    assert result.complete and result.load.ok
    assert [spec.name for spec in result.load.inputs] == ["x"]
    assert {name: variant.ok for name, variant in result.variants.items()} == {
        "float": True,
        "int8": True,
    }
    assert all(
        Path(v.tflite_path or "").parent == tiny / "scratch" for v in result.variants.values()
    )
    assert result.evaluation is not None and result.evaluation.ok
    assert result.evaluation.outputs == ["probs"]
    assert (tiny / "scratch" / DEPENDENCIES_FILE).exists()


@pytest.mark.slow  # a pooled conversion worker: a TensorFlow process
def test_a_pooled_worker_converts_and_diagnoses(tiny: Path, tmp_path: Path) -> None:
    pool = conversion_pool(tiny, 1, tmp_path)
    try:
        request = _request(tiny, "int8").model_copy(update={"scratch": str(tmp_path / "convert")})
        converted = convert_model(request, timeout_s=300, memory_mb=None, pool=pool)
        int8 = converted.variants["int8"]
        assert int8.ok and int8.tflite_path and converted.evaluation is not None
        order = DiagnosisRequest(
            variant=request.variants[0],
            model=int8.tflite_path,
            inputs=converted.evaluation.inputs_path or "",
            top=2,
            candidates=[1],
        )
        diagnosis = run_diagnosis(
            request.model_copy(
                update={
                    "scratch": str(tmp_path / "diagnose"),
                    "diagnose": order,
                    "variants": [],
                    "reference": False,
                }
            ),
            timeout_s=300,
            memory_mb=None,
            pool=pool,
        )
    finally:
        pool.close()
    assert diagnosis.ok, diagnosis.error
    assert 0 < len(diagnosis.layers) <= 2
    # The output activation kept in float, then the one candidate asked for.
    assert [c.ops for c in diagnosis.candidates] == [["SOFTMAX"], []]
    assert (tmp_path / "diagnose" / diagnosis.candidates[0].tflite_path).is_file()

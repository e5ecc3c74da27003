"""The conversion worker as the gate starts it: `python -m tflite_gate.convert.worker`.

Each test runs the worker process on a request file and reads what it left in its
scratch (TensorFlow in the worker: slow).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.conversion_request import conversion_request
from tflite_gate.convert.scratch import (
    DEPENDENCIES_FILE,
    EVALUATION_FILE,
    LOAD_FILE,
    variant_file,
)
from tflite_gate.run.protocol import (
    Dependencies,
    EvaluationResult,
    LoadResult,
    VariantResult,
    read_message,
    write_message,
)

pytestmark = pytest.mark.slow  # a TensorFlow process per test

FACTORY = """\
import json
from pathlib import Path

import tensorflow as tf

SCALE = json.loads(Path("scale.json").read_text())["scale"]


@tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
def scaled(x):
    return SCALE * x


def build():
    return scaled
"""


def _run_worker(workspace: Path, source: str) -> Path:
    scratch = workspace / "scratch"
    scratch.mkdir()
    request = conversion_request(workspace, source, "float", samples=3)
    write_message(scratch / "request.json", request)
    finished = subprocess.run(
        [sys.executable, "-m", "tflite_gate.convert.worker", str(scratch / "request.json")],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    return scratch


def test_the_worker_leaves_each_result_and_what_it_read(tmp_path: Path) -> None:
    (tmp_path / "scaled.py").write_text(FACTORY)
    (tmp_path / "scale.json").write_text('{"scale": 3.0}')
    scratch = _run_worker(tmp_path, "scaled:build")

    load = read_message(scratch / LOAD_FILE, LoadResult)
    assert load is not None and load.ok
    assert [(spec.name, spec.shape) for spec in load.inputs] == [("x", [1, 4])]
    variant = read_message(scratch / variant_file("float", "json"), VariantResult)
    assert variant is not None and variant.ok and variant.tflite_path == "variant-float.tflite"
    assert (scratch / variant_file("float", "started")).exists()
    evaluation = read_message(scratch / EVALUATION_FILE, EvaluationResult)
    assert evaluation is not None and evaluation.ok
    assert (evaluation.samples, evaluation.outputs) == (3, ["output_0"])
    used = read_message(scratch / DEPENDENCIES_FILE, Dependencies)
    assert used is not None
    assert used.files == ["scale.json", "scaled.py"]
    assert "tensorflow" in used.packages


def test_a_model_that_does_not_load_is_a_result_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        textwrap.dedent(
            """\
            def build():
                raise RuntimeError("no weights here")
            """
        )
    )
    scratch = _run_worker(tmp_path, "broken:build")
    load = read_message(scratch / LOAD_FILE, LoadResult)
    assert load is not None and not load.ok
    assert load.error == "the factory broken:build raised RuntimeError: no weights here"
    assert load.location == ("broken.py", 2)
    assert not (scratch / variant_file("float", "json")).exists()

"""Models and variants checked in parallel (`--jobs`) report exactly what one at a time does.

Real conversions, real interpreter runs: a run with `--jobs 1` and one with `--jobs 2`
must give the same report but for times, and a model alone splits its variants over
both workers (each converts its share, one computes the reference) and still keeps
one whole conversion in the cache.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import GateRun, comparable, run_gate

pytestmark = pytest.mark.slow

DENSE = """\
import keras


def build() -> keras.Model:
    keras.utils.set_random_seed(5)
    x = keras.Input((16,), name="x")
    h = keras.layers.Dense(16, activation="relu")(x)
    return keras.Model(x, keras.layers.Dense(4, activation="softmax", name="y")(h))
"""
VARIANTS = """\
    variants:
      - {name: float, quantization: none}
      - {name: dynamic, quantization: dynamic}
      - {name: int8, quantization: int8}
"""
POLICY = f"""\
version: 1
defaults:
  ops:
    allow: [FULLY_CONNECTED, SOFTMAX, QUANTIZE, DEQUANTIZE, RELU]
  max_divergence: {{min_cosine: 0.9}}
models:
  - name: first
    source: nets.dense:build
{VARIANTS}  - name: second
    source: nets.dense:build
    variants: [{{name: float, quantization: none}}]
  - name: third
    source: nets.dense:build
    variants: [{{name: half, quantization: float16}}]
"""
PROGRESS = re.compile(r"^(\[[^\]]+\] |tflite-gate: )")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parallel")
    (root / "nets").mkdir()
    (root / "nets" / "__init__.py").write_text("")
    (root / "nets" / "dense.py").write_text(DENSE)
    (root / "tflite-gate.yml").write_text(POLICY)
    (root / "alone.yml").write_text(POLICY.split("  - name: second")[0])
    return root


def _comparable(run: GateRun) -> tuple[int, dict[str, Any]]:
    return run.returncode, comparable(run.report)


def test_two_jobs_report_what_one_job_reports(workspace: Path) -> None:
    one = run_gate(workspace, "--no-cache", "--jobs", "1")
    two = run_gate(workspace, "--no-cache", "--jobs", "2")
    assert one.returncode == 0, one.stderr
    assert _comparable(two) == _comparable(one)
    assert two.report is not None and two.report["environment"]["jobs"] == 2
    assert [m["name"] for m in two.report["models"]] == ["first", "second", "third"]
    for line in two.stderr.splitlines():  # whole lines, each saying whose it is
        assert PROGRESS.match(line), line


def test_a_model_alone_splits_its_variants_and_is_cached_whole(
    workspace: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    args = ["--policy", str(workspace / "alone.yml"), "--cache-dir", str(cache), "--jobs", "2"]
    split = run_gate(workspace, *args, report=tmp_path / "split.json")
    assert split.returncode == 0, split.stderr
    assert split.report is not None and split.report["models"][0]["cache"]["status"] == "stored"
    [model] = split.report["models"]
    assert [v["status"] for v in model["variants"]] == ["converted"] * 3
    assert all(v["runs"][0]["status"] == "passed" for v in model["variants"])
    [entry] = list((cache / "conversions").glob("*/*"))
    kept = sorted(p.name for p in entry.iterdir())
    assert [name for name in kept if name.endswith(".tflite")] == [
        "variant-dynamic.tflite",
        "variant-float.tflite",
        "variant-int8.tflite",
    ]
    assert "reference-outputs.npz" in kept and "dependencies.json" in kept
    one = run_gate(
        workspace,
        "--policy",
        str(workspace / "alone.yml"),
        "--no-cache",
        "--jobs",
        "1",
        report=tmp_path / "one.json",
    )
    assert _comparable(one) == _comparable(split)
    reused = run_gate(workspace, *args, report=tmp_path / "reused.json")
    assert reused.report is not None and reused.report["models"][0]["cache"]["status"] == "reused"
    assert _comparable(reused) == _comparable(split)


RECORDING = """\
import os
import keras


def _note(name: str) -> None:
    with open(os.path.join(os.path.dirname(__file__), "pids.txt"), "a") as pids:
        pids.write(f"{name} {os.getpid()}\\n")


def build(name: str, crash: bool = False) -> keras.Model:
    _note(name)
    if crash:
        os.abort()
    keras.utils.set_random_seed(7)
    x = keras.Input((8,), name="x")
    return keras.Model(x, keras.layers.Dense(2, name="y")(x))


def one() -> keras.Model:
    return build("one")


def two() -> keras.Model:
    return build("two", crash=True)


def three() -> keras.Model:
    return build("three")
"""
SHARED_POLICY = """\
version: 1
models:
  - {name: one, source: "rec:one"}
  - {name: two, source: "rec:two"}
  - {name: three, source: "rec:three"}
"""


def test_models_share_one_tensorflow_process_until_one_crashes(tmp_path: Path) -> None:
    (tmp_path / "rec.py").write_text(RECORDING)
    (tmp_path / "tflite-gate.yml").write_text(SHARED_POLICY)
    run = run_gate(tmp_path, "--no-cache", "--jobs", "1")
    assert run.returncode == 1, run.stderr
    pids = dict(line.split() for line in (tmp_path / "pids.txt").read_text().splitlines())
    assert pids["one"] == pids["two"]  # one worker, TensorFlow imported once
    assert pids["three"] != pids["two"]  # the crash cost that worker; a fresh one carried on
    statuses = {m["name"]: m["loaded"] for m in run.report["models"]}  # type: ignore[index]
    assert statuses == {"one": True, "two": False, "three": True}
    [crash] = run.findings(model="two")
    assert crash["rule"] == "model-load-failed" and "SIGABRT" in crash["message"]

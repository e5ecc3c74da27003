"""A .tflite without `reference:` on several runtimes: the first runtime is the reference.

Real runtimes, real gate runs: the installed ai-edge-litert, `tflite-runtime==2.14.0`
installed by the gate into a cached environment (does the old runtime give the same
numbers?), and a local runtime package whose interpreter adds 0.01 to every float
output (a runtime that does not). Runs are compared as a reference comparison is:
thresholds from `max_divergence`, findings at their policy line, and every compared
run and divergence finding names the runtime it was compared with.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import GateRun, run_gate
from tests.support.runtime_package import write_runtime_package

pytestmark = pytest.mark.slow

OLD = "tflite-runtime==2.14.0"

NOISY_RUNTIME = """\
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter as _Base


    class Interpreter(_Base):
        def get_tensor(self, tensor_index, subgraph_index=0):
            value = super().get_tensor(tensor_index, subgraph_index)
            return value + np.float32(0.01) if value.dtype == np.float32 else value
    """

POLICY = textwrap.dedent(
    f"""\
    version: 1
    models:
      - name: old-runtime
        source: models/float.tflite
        max_divergence: {{max_abs: 1.0e-5}}
        runtimes:
          - ai-edge-litert
          - {{requirement: "{OLD}", with: ["numpy<2"]}}
      - name: noisy-runtime
        source: models/float.tflite
        max_divergence: {{max_abs: 1.0e-3}}
        runtimes:
          - ai-edge-litert
          - {{requirement: ./noisyrt, module: noisyrt.interpreter}}
      - name: first-fails
        source: models/float.tflite
        max_divergence: {{max_abs: 1.0e-3}}
        runtimes:
          - {{requirement: ./no-such-runtime, module: nort.interpreter}}
          - ai-edge-litert
    """
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras
    import tensorflow as tf

    ws = tmp_path_factory.mktemp("runtime-comparison")
    keras.utils.set_random_seed(0)
    x = keras.Input((8,), name="x")
    model = keras.Model(x, keras.layers.Dense(4)(keras.layers.Dense(16, activation="relu")(x)))
    (ws / "models").mkdir()
    (ws / "models" / "float.tflite").write_bytes(
        tf.lite.TFLiteConverter.from_keras_model(model).convert()
    )
    write_runtime_package(ws, "noisyrt", NOISY_RUNTIME)
    (ws / "tflite-gate.yml").write_text(POLICY)
    return ws


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "runtime-cache"


@pytest.fixture(scope="module")
def gate(workspace: Path, cache: Path) -> GateRun:
    return run_gate(workspace, "--cache-dir", str(cache))


def _runs(gate: GateRun, model: str) -> dict[str, dict[str, Any]]:
    (variant,) = gate.model(model)["variants"]
    return {run["runtime"]: run for run in variant["runs"]}


def _line(model: str, needle: str) -> int:
    lines = POLICY.splitlines()
    start = lines.index(f"  - name: {model}")
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def test_the_old_runtime_is_compared_with_the_first(gate: GateRun) -> None:
    runs = _runs(gate, "old-runtime")
    first = runs["ai-edge-litert"]
    assert (first["status"], first["compared_with"]) == ("ran", None)
    old = runs[OLD]
    assert old["runtime_version"] == "2.14.0"
    assert old["status"] == "passed", old
    assert old["compared_with"] == f"ai-edge-litert {first['runtime_version']}"
    (metrics,) = old["metrics"]
    assert metrics["samples"] == 16 and metrics["max_abs"] <= 1.0e-5
    assert gate.findings(model="old-runtime") == []


def test_the_terminal_says_which_runtime_was_the_reference(gate: GateRun) -> None:
    litert = _runs(gate, "old-runtime")["ai-edge-litert"]["runtime_version"]
    assert f"tflite on {OLD}: passed vs ai-edge-litert {litert} · 16 samples" in gate.stdout


def test_a_runtime_that_diverges_fails_naming_both(gate: GateRun) -> None:
    runs = _runs(gate, "noisy-runtime")
    litert = runs["ai-edge-litert"]["runtime_version"]
    noisy = runs["./noisyrt"]
    assert (noisy["status"], noisy["compared_with"]) == ("diverged", f"ai-edge-litert {litert}")
    (finding,) = gate.findings(model="noisy-runtime")
    assert finding["rule"] == "divergence" and finding["runtime"] == "./noisyrt"
    assert finding["message"].startswith(
        f"noisy-runtime/tflite on ./noisyrt vs ai-edge-litert {litert}: output 'output_0' "
        "max_abs 0.01 is above max_abs 0.001"
    )
    assert finding["details"]["compared_with"] == f"ai-edge-litert {litert}"
    assert finding["location"]["line"] == _line("noisy-runtime", "max_abs")
    assert gate.returncode == 1


def test_without_the_first_runtime_nothing_is_compared_and_it_says_so(gate: GateRun) -> None:
    runs = _runs(gate, "first-fails")
    assert runs["./no-such-runtime"]["status"] == "unavailable"
    assert (runs["ai-edge-litert"]["status"], runs["ai-edge-litert"]["metrics"]) == ("ran", [])
    (notice,) = gate.findings(model="first-fails", rule="threshold-not-applied")
    assert notice["message"] == (
        "first-fails: make the first runtime, ./no-such-runtime, run (its outputs are the "
        "reference of the other runtimes), or add `reference:`: no other runtime's outputs "
        "were compared, so no threshold was checked"
    )
    assert notice["location"]["line"] == _line("first-fails", "max_abs")


def test_a_shard_without_the_first_runtime_still_compares_with_it(
    workspace: Path, cache: Path, gate: GateRun
) -> None:
    shard = run_gate(
        workspace,
        "--cache-dir",
        str(cache),
        "--only",
        "old-runtime",
        "--runtime",
        OLD,
        report=workspace / "shard.json",
    )
    assert shard.returncode == 0, shard.stdout + shard.stderr
    (run,) = _runs(shard, "old-runtime").values()
    whole = _runs(gate, "old-runtime")[OLD]
    keep = ("runtime", "status", "compared_with", "metrics", "samples")
    assert {key: run[key] for key in keep} == {key: whole[key] for key in keep}

"""Issue-3 behaviour through the real CLI: run, compare, crash, hang, Flex, old runtime.

One workspace, one gate run (plus one re-run with a loosened threshold). Runtimes
are real: the installed ai-edge-litert, tflite-runtime 2.14.0 installed by the gate
into a cached virtual environment, and a local runtime package whose interpreter
segfaults on negative inputs and hangs on huge ones.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import GateRun, run_gate

pytestmark = pytest.mark.slow

MODELS = textwrap.dedent(
    """\
    import keras
    import tensorflow as tf


    def classifier():
        keras.utils.set_random_seed(0)
        features = keras.Input((64,), name="features")
        hidden = keras.layers.Dense(64, activation="relu")(features)
        return keras.Model(features, keras.layers.Dense(10, activation="softmax", name="probs")(hidden))


    class Determinant(keras.layers.Layer):
        def call(self, x):
            return tf.linalg.det(tf.reshape(x, [-1, 4, 4]))[:, tf.newaxis]


    def gram():
        signal = keras.Input((16,), name="signal")
        return keras.Model(signal, Determinant()(keras.layers.Dense(16)(signal)))
    """
)

FAKE_RUNTIME = textwrap.dedent(
    """\
    import os
    import signal
    import time

    import numpy as np
    from ai_edge_litert.interpreter import Interpreter as _Base


    class Interpreter(_Base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._low, self._high = 0.0, 0.0

        def set_tensor(self, index, value):
            self._low = min(self._low, float(np.min(value)))
            self._high = max(self._high, float(np.max(value)))
            super().set_tensor(index, value)

        def invoke(self):
            if self._low < 0:
                os.kill(os.getpid(), signal.SIGSEGV)
            if self._high > 100:
                time.sleep(600)
            super().invoke()
    """
)

FAKE_PYPROJECT = textwrap.dedent(
    """\
    [build-system]
    requires = ["setuptools>=68"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "fakert"
    version = "0.1.0"
    dependencies = ["ai-edge-litert", "numpy"]

    [tool.setuptools]
    packages = ["fakert"]
    """
)

POLICY = textwrap.dedent(
    """\
    version: 1
    defaults:
      max_divergence: {min_cosine: 0.99999}
    models:
      - name: strict
        source: models:classifier
        data:
          calibration: {generate: {seed: 1, low: 0.0, high: 1.0}}
          evaluation: {generate: {seed: 2, low: 0.0, high: 1.0}}
        variants:
          - {name: float, quantization: none}
          - {name: int8, quantization: int8, io: int8}
      - name: dynamic
        source: models:classifier
        variants: [{name: dynamic, quantization: dynamic}]
        max_divergence: {rel_rmse: 0.05, min_cosine: 0.999}
        runtimes:
          - ai-edge-litert
          - {requirement: "tflite-runtime==2.14.0", with: ["numpy<2"]}
      - name: crash
        source: models:classifier
        data: {evaluation: {generate: {low: -1.0, high: -0.5}}}
        runtimes: [{requirement: ./fakert, module: fakert.interpreter}]
      - name: hang
        source: models:classifier
        data: {evaluation: {generate: {low: 200.0, high: 300.0}}}
        limits: {interpreter_timeout_s: 5}
        runtimes: [{requirement: ./fakert, module: fakert.interpreter}]
      - name: flex
        source: models:gram
        ops: {select_tf_ops: true}
      - name: missing-runtime
        source: models:classifier
        variants:
          - {name: float, quantization: none}
          - {name: f16, quantization: float16}
        runtimes: [{requirement: ./no-such-runtime, module: nort.interpreter}]
    """
)


def _line(needle: str, start: str | None = None) -> int:
    lines = POLICY.splitlines()
    first = lines.index(f"  - name: {start}") if start else 0
    return next(i for i in range(first, len(lines)) if needle in lines[i]) + 1


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("execution")
    (ws / "models.py").write_text(MODELS)
    (ws / "fakert" / "fakert").mkdir(parents=True)
    (ws / "fakert" / "pyproject.toml").write_text(FAKE_PYPROJECT)
    (ws / "fakert" / "fakert" / "__init__.py").write_text("")
    (ws / "fakert" / "fakert" / "interpreter.py").write_text(FAKE_RUNTIME)
    (ws / "tflite-gate.yml").write_text(POLICY)
    return ws


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "runtime-cache"


@pytest.fixture(scope="module")
def run(workspace: Path, cache: Path) -> GateRun:
    return run_gate(workspace, "--cache-dir", str(cache))


def _runs(run: GateRun, model: str, variant: str) -> dict[str, dict[str, Any]]:
    found = next(v for v in run.model(model)["variants"] if v["name"] == variant)
    return {r["runtime"]: r for r in found["runs"]}


def test_gate_fails_and_survives(run: GateRun) -> None:
    assert run.returncode == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr


def test_float_variant_passes_tight_thresholds(run: GateRun) -> None:
    runs = _runs(run, "strict", "float")
    assert runs["ai-edge-litert"]["status"] == "passed"
    [metrics] = runs["ai-edge-litert"]["metrics"]
    assert metrics["output"] == "probs"
    assert metrics["samples"] == 16
    assert metrics["cosine"] > 0.99999
    assert metrics["max_abs"] < 1e-5


def test_int8_io_is_compared_in_real_values(run: GateRun) -> None:
    [metrics] = _runs(run, "strict", "int8")["ai-edge-litert"]["metrics"]
    # softmax probabilities: dequantized int8 outputs land within a few percent
    assert 0.99 < metrics["cosine"] < 0.99999
    assert metrics["max_abs"] < 0.05
    assert metrics["top1"] >= 0.9


def test_int8_divergence_is_located_at_the_threshold(run: GateRun) -> None:
    [finding] = run.findings(rule="divergence", model="strict")
    assert finding["variant"] == "int8"
    assert finding["location"] == {
        "path": "tflite-gate.yml",
        "line": _line("min_cosine"),
        "column": 32,
    }
    details = finding["details"]
    assert (finding["metric"], details["threshold"], finding["output"]) == (
        "cosine",
        0.99999,
        "probs",
    )
    assert details["value"] < 0.99999
    assert isinstance(details["worst_sample"], int)
    assert (
        "output 'probs' cosine" in finding["message"]
        and "below min_cosine 0.99999" in finding["message"]
    )


def test_loosening_to_the_reported_minimum_passes(
    run: GateRun, workspace: Path, cache: Path
) -> None:
    tightest = _runs(run, "strict", "int8")["ai-edge-litert"]["tightest"]["probs"]["min_cosine"]
    loosened = workspace / "loosened.yml"
    loosened.write_text(POLICY.replace("min_cosine: 0.99999}", f"min_cosine: {tightest!r}}}", 1))
    again = run_gate(
        workspace, "--only", "strict", "--policy", str(loosened), "--cache-dir", str(cache)
    )
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.findings() == []


def test_dynamic_range_fails_on_the_old_runtime_and_passes_on_the_new(run: GateRun) -> None:
    runs = _runs(run, "dynamic", "dynamic")
    assert runs["ai-edge-litert"]["status"] == "passed"
    old = runs["tflite-runtime==2.14.0"]
    assert (old["status"], old["runtime_version"], old["phase"]) == ("error", "2.14.0", "load")
    [finding] = run.findings(rule="interpreter-error", model="dynamic")
    assert "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'" in finding["message"]
    assert "the static check agrees: FULLY_CONNECTED v12 needs runtime 2.17.0" in finding["message"]
    assert finding["runtime"] == "tflite-runtime==2.14.0"
    assert finding["location"]["line"] == _line("tflite-runtime==2.14.0")


def test_crash_names_phase_sample_signal_and_saves_a_reproducer(
    run: GateRun, workspace: Path
) -> None:
    [finding] = run.findings(rule="interpreter-crash", model="crash")
    assert "crashed with SIGSEGV in invoke (sample 0)" in finding["message"]
    details = finding["details"]
    assert (details["phase"], details["sample"], details["signal"]) == ("invoke", 0, "SIGSEGV")
    reproducer = workspace / details["reproducer"]
    assert sorted(p.name for p in reproducer.iterdir()) == [
        "float.tflite",
        "inputs.npz",
        "reproduce.py",
    ]
    assert finding["location"]["line"] == _line("./fakert", "crash")


def test_hang_is_an_interpreter_timeout_at_the_limit_line(run: GateRun) -> None:
    [finding] = run.findings(rule="interpreter-timeout", model="hang")
    assert "no result within 5 s in invoke (sample 0)" in finding["message"]
    assert finding["location"]["line"] == _line("interpreter_timeout_s")


def test_flex_model_is_unverifiable_not_a_crash(run: GateRun) -> None:
    runs = _runs(run, "flex", "float")
    assert runs["ai-edge-litert"]["status"] == "unverifiable"
    rules = {(f["rule"], f["severity"]) for f in run.findings(model="flex")}
    assert rules == {("flex-op", "notice")}
    assert not run.findings(rule="interpreter-crash", model="flex")


def test_unavailable_runtime_is_reported_once_per_model(run: GateRun) -> None:
    [finding] = run.findings(rule="runtime-unavailable", model="missing-runtime")
    assert "runtime ./no-such-runtime is unavailable" in finding["message"]
    assert "no such file or directory" in finding["message"]
    assert finding["location"]["line"] == _line("./no-such-runtime")
    statuses = [
        _runs(run, "missing-runtime", variant)["./no-such-runtime"]["status"]
        for variant in ("float", "f16")
    ]
    assert statuses == ["unavailable", "unavailable"]

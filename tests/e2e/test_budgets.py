"""Budgets: size and latency per variant, at the policy line that set them."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.support.harness import run_gate
from tests.support.tflite_builder import SIGNATURE_INPUT_NAME, build_model, builtin
from tflite_gate.run.interpreter import run_interpreter

pytestmark = pytest.mark.slow  # every test here starts processes


def _workspace(tmp_path: Path, budgets: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU", count=3)]))
    (tmp_path / "tflite-gate.yml").write_text(
        textwrap.dedent(
            """\
            version: 1
            defaults:
              budgets: {budgets}
            models:
              - name: relu
                source: relu.tflite
            """
        ).format(budgets=budgets)
    )
    return tmp_path


def test_a_model_over_its_size_budget_fails_at_that_line(tmp_path: Path) -> None:
    run = run_gate(_workspace(tmp_path, "{max_size_bytes: 100}"))
    assert run.returncode == 1, run.stdout + run.stderr
    [finding] = run.findings(rule="size-budget")
    size = run.model("relu")["variants"][0]["inspection"]["size_bytes"]
    assert finding["severity"] == "error"
    assert finding["location"] == {"path": "tflite-gate.yml", "line": 3, "column": 29}
    assert finding["details"] == {"size_bytes": size, "max_size_bytes": 100}
    assert finding["message"].startswith("relu/tflite: quantize or shrink the model")
    assert f"{size} bytes is {size - 100} bytes" in finding["message"]


def test_a_model_inside_its_budgets_passes_and_reports_its_latency(tmp_path: Path) -> None:
    run = run_gate(
        _workspace(tmp_path, "{max_size_bytes: 100000, max_latency_ms: 1000, latency_runs: 7}")
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.findings() == []
    [runtime_run] = run.model("relu")["variants"][0]["runs"]
    assert 0 < runtime_run["latency_ms"] < 1000
    assert (runtime_run["latency_runs"], runtime_run["latency_threads"]) == (7, 2)
    assert "ms/invoke (median of 7, 2 thread(s))" in run.stdout


def test_a_slow_model_is_a_warning_unless_the_policy_says_error(tmp_path: Path) -> None:
    slow = run_gate(_workspace(tmp_path / "a", "{max_latency_ms: 0.000001, num_threads: 1}"))
    assert slow.returncode == 0, slow.stdout + slow.stderr
    [finding] = slow.findings(rule="latency-budget")
    assert finding["severity"] == "warning"
    assert finding["runtime"] == "ai-edge-litert"
    assert finding["location"] == {"path": "tflite-gate.yml", "line": 3, "column": 29}
    assert finding["details"]["latency_runs"] == 20  # the default count
    assert finding["details"]["num_threads"] == 1

    failing = run_gate(
        _workspace(tmp_path / "b", "{max_latency_ms: 0.000001, latency_severity: error}")
    )
    assert failing.returncode == 1
    [finding] = failing.findings(rule="latency-budget")
    assert finding["severity"] == "error"


def test_latency_is_not_measured_unless_asked_for(tmp_path: Path) -> None:
    run = run_gate(_workspace(tmp_path, "{max_size_bytes: 100000}"))
    [runtime_run] = run.model("relu")["variants"][0]["runs"]
    assert runtime_run["latency_ms"] is None and runtime_run["latency_runs"] is None


@pytest.mark.parametrize("threads", [0, 1])
def test_the_worker_times_the_first_sample(tmp_path: Path, threads: int) -> None:
    model = tmp_path / "relu.tflite"
    model.write_bytes(build_model([builtin("RELU")], dynamic_batch=True))
    x = np.ones((3, 1, 4), np.float32)
    result = run_interpreter(
        model,
        {SIGNATURE_INPUT_NAME: x},
        python=sys.executable,
        module="ai_edge_litert.interpreter",
        scratch=tmp_path / "scratch",
        reproducer_dir=tmp_path / "repro",
        timeout_s=60,
        memory_mb=None,
        latency_runs=5,
        latency_threads=threads,
    )
    assert result.ok, result.message
    assert result.batched  # the timing comes after the batched outputs, on one sample
    assert result.latency_ms is not None and 0 < result.latency_ms < 1000
    status = (tmp_path / "scratch" / "status.jsonl").read_text()
    assert '{"phase": "latency"}' in status

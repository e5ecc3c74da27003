"""Nothing from the workspace can hold the gate process itself: real gate runs under a
wall-clock bound, with real FIFOs (which block `open()` forever when nobody writes)
named as the policy, a .tflite source, a .tflite reference and a data file, and a
data generator that never ends for a .tflite source.

A hang fails the test through `subprocess.run(timeout=...)`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.tflite_builder import SHAPE, build_model, builtin

pytestmark = pytest.mark.slow  # every test here starts processes

ENDLESS = textwrap.dedent(
    """\
    import time

    import numpy as np

    SHAPE = BUILDER_SHAPE


    def samples():
        while True:
            time.sleep(0.05)
        yield {}


    def broken():
        raise ValueError("no data today")
        yield {}


    def finite():
        for i in range(6):
            yield {"x": np.full(SHAPE, i, dtype=np.float32)}
    """.replace("BUILDER_SHAPE", repr(SHAPE))
)

GENERATOR_POLICY = textwrap.dedent(
    """\
    version: 1
    defaults:
      limits: {timeout_s: 5}
    models:
      - name: endless-generator
        source: models/relu.tflite
        data:
          evaluation: gen:samples
      - name: after-it
        source: models/relu.tflite
        data:
          evaluation: data/missing.npz
      - name: own-limit
        source: models/relu.tflite
        data:
          evaluation: gen:broken
        limits: {timeout_s: 5}
    """
)

FIFO_POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: fifo-source
        source: models/fifo.tflite
      - name: fifo-reference
        source: models/relu.tflite
        reference: models/fifo.tflite
      - name: fifo-data
        source: models/relu.tflite
        data:
          evaluation: data/fifo.npz
    """
)


def _gate(workspace: Path, policy: Path, timeout_s: float) -> tuple[int, dict[str, Any] | None]:
    report = workspace.parent / "report.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tflite_gate",
            "check",
            "--workspace",
            str(workspace),
            "--policy",
            str(policy),
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return completed.returncode, data


def _findings(report: dict[str, Any], model: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["model"] == model]


def test_fifo_policy_is_a_policy_error_not_a_hang(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    os.mkfifo(workspace / "tflite-gate.yml")
    code, report = _gate(workspace, workspace / "tflite-gate.yml", timeout_s=20)
    assert code == 2
    assert report is not None
    (finding,) = report["findings"]
    assert finding["rule"] == "policy-invalid"
    assert "tflite-gate.yml is a named pipe (FIFO)" in finding["message"]


def _workspace(tmp_path: Path, policy: str) -> Path:
    workspace = tmp_path / "ws"
    (workspace / "models").mkdir(parents=True)
    (workspace / "data").mkdir()
    (workspace / "models" / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (workspace / "gen.py").write_text(ENDLESS)
    os.mkfifo(workspace / "models" / "fifo.tflite")
    os.mkfifo(workspace / "data" / "fifo.npz")
    (workspace / "tflite-gate.yml").write_text(policy)
    return workspace


def test_fifo_source_reference_and_data_are_refused_by_type(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, FIFO_POLICY)
    code, report = _gate(workspace, workspace / "tflite-gate.yml", timeout_s=20)
    assert code == 1
    assert report is not None

    (source,) = _findings(report, "fifo-source")
    assert source["rule"] == "model-load-failed"
    assert source["location"]["line"] == 4  # source
    assert "fifo.tflite is a named pipe (FIFO)" in source["message"]

    reference = _findings(report, "fifo-reference")
    assert [f["rule"] for f in reference] == ["model-load-failed"]
    assert "fifo.tflite is a named pipe (FIFO)" in reference[0]["message"]

    (data,) = _findings(report, "fifo-data")
    assert data["rule"] == "data-invalid"
    assert data["location"]["line"] == 11  # data.evaluation
    assert "fifo.npz is a named pipe (FIFO)" in data["message"]


def test_endless_generator_for_a_tflite_source_stops_at_timeout(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, GENERATOR_POLICY)
    started = time.monotonic()
    code, report = _gate(workspace, workspace / "tflite-gate.yml", timeout_s=30)
    assert time.monotonic() - started < 30
    assert code == 1
    assert report is not None

    (endless,) = _findings(report, "endless-generator")
    assert endless["rule"] == "data-invalid"
    assert endless["location"]["line"] == 8  # data.evaluation
    assert "gen:samples did not finish within the time limit (5 s)" in endless["message"]
    assert "limits.timeout_s" in endless["message"]

    # the gate went on to the next model
    (after,) = _findings(report, "after-it")
    assert after["rule"] == "data-invalid"
    assert "missing.npz: file not found" in after["message"]

    # timeout_s bounds a generator's worker, so it applies to a .tflite source
    (own,) = _findings(report, "own-limit")
    assert own["rule"] == "data-invalid"
    assert own["location"] == {"path": "gen.py", "line": 15, "column": None}
    assert "ValueError: no data today" in own["message"]


def test_generator_for_a_tflite_source_feeds_the_interpreter(tmp_path: Path) -> None:
    policy = textwrap.dedent(
        """\
        version: 1
        models:
          - name: generated
            source: models/relu.tflite
            data:
              evaluation: gen:finite
              samples: 3
        """
    )
    workspace = _workspace(tmp_path, policy)
    code, report = _gate(workspace, workspace / "tflite-gate.yml", timeout_s=60)
    assert report is not None
    assert _findings(report, "generated") == []
    assert code == 0
    (model,) = report["models"]
    (variant,) = model["variants"]
    (run,) = variant["runs"]
    assert run["status"] == "ran"
    assert run["samples"] == 3  # one source for both roles: every other sample evaluates


def test_tflite_over_the_flatbuffer_limit_is_refused_unread(tmp_path: Path) -> None:
    policy = "version: 1\nmodels:\n  - name: huge\n    source: models/huge.tflite\n"
    workspace = _workspace(tmp_path, policy)
    with (workspace / "models" / "huge.tflite").open("wb") as sparse:
        sparse.truncate(2 * 1024**3 + 1)  # a hole: no disk used, nothing worth reading
    code, report = _gate(workspace, workspace / "tflite-gate.yml", timeout_s=20)
    assert code == 1
    assert report is not None
    (finding,) = _findings(report, "huge")
    assert finding["rule"] == "model-load-failed"
    assert finding["location"]["line"] == 4
    assert "more than 2147483648 (2 GiB, the most a .tflite" in finding["message"]

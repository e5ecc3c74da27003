"""The machine fails, not the model: full and read-only disks, and a bug in one model's check.

Disks are small tmpfs mounts made by the test (root, or a private mount namespace
where the machine allows it), so "No space left on device" is the kernel's own.
What must hold: the result of everything that could be checked stays in the report,
no 0-byte or half-written artifact is left behind, and the exit code says what
happened (1 for an environment error, 3 only for a real bug).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from tests.support.harness import REPO, mount_tmpfs, run_gate
from tests.support.tflite_builder import build_model, builtin
from tflite_gate.app.check import run_gate as run_gate_in_process
from tflite_gate.app.outcome import EXIT_INTERNAL
from tflite_gate.pipeline import run as pipeline
from tflite_gate.support.output_paths import report_outputs
from tflite_gate.support.run_options import CheckOptions

pytestmark = pytest.mark.slow  # every test here starts processes

SCHEMA = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())

FACTORY = """\
import keras

def build():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16,), batch_size=1, name="x")
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4, name="y")(hidden))
"""

POLICY = """\
version: 1
models:
  - name: dense
    source: zoo:build
    variants:
      - {name: float}
      - {name: dynamic, quantization: dynamic}
      - {name: half, quantization: float16}
  - name: relu
    source: relu.tflite
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "zoo.py").write_text(FACTORY)
    (root / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (root / "tflite-gate.yml").write_text(POLICY)
    return root


@pytest.mark.slow
def test_full_artifacts_disk_keeps_every_result_and_leaves_no_stub(
    workspace: Path, small_disk: Path
) -> None:
    run = run_gate(workspace, "--quiet", "--artifacts", str(small_disk))
    assert "Traceback" not in run.stdout + run.stderr
    assert run.returncode == 1, run.stderr
    assert run.report is not None
    jsonschema.validate(run.report, SCHEMA)
    assert run.report["internal_error"] is None
    failed = run.findings(rule="environment-error")
    assert failed, run.report["findings"]
    for finding in failed:
        assert finding["message"].startswith(
            "free disk space, or give --artifacts a directory with room: dense/"
        )
        assert "No space left on device" in finding["message"]
    dense = run.model("dense")
    saved = [v for v in dense["variants"] if v["artifact"] is not None]
    unsaved = [v for v in dense["variants"] if v["artifact"] is None]
    assert saved and unsaved, dense["variants"]
    for variant in dense["variants"]:  # saved or not, every variant was run and compared
        assert [r["status"] for r in variant["runs"]] == ["passed"], variant["name"]
    for variant in saved:
        assert (workspace.parent / "ws" / variant["artifact"]).resolve().stat().st_size > 0
    files = [p for p in small_disk.rglob("*") if p.is_file()]
    assert all(p.stat().st_size > 0 for p in files), files
    assert not [p for p in files if p.name.startswith(".")], "a partial temporary file was left"
    assert [r["status"] for r in run.model("relu")["variants"][0]["runs"]] == ["ran"]


def test_read_only_cache_is_the_runtime_unavailable_not_a_bug(
    workspace: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    if not mount_tmpfs(cache, "size=64k,ro"):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        (workspace / "tflite-gate.yml").write_text(
            "version: 1\nmodels:\n  - name: relu\n    source: relu.tflite\n"
            "    runtimes: [ai-edge-litert, tflite-runtime==2.14.0]\n"
        )
        run = run_gate(workspace, "--quiet", "--cache-dir", str(cache))
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=False)
    assert run.returncode == 1, run.stderr
    [finding] = run.findings(rule="runtime-unavailable")
    assert (
        "give --cache-dir (or TFLITE_GATE_CACHE) a writable directory with room"
        in (finding["message"])
    )
    assert "Read-only file system" in finding["message"]
    [variant] = run.model("relu")["variants"]
    assert [r["status"] for r in variant["runs"]] == ["ran", "unavailable"]


def test_full_temporary_disk_is_named_as_the_place_to_free(workspace: Path, tmp_path: Path) -> None:
    """The conversion worker saves the model into TMPDIR first: there it runs out of room."""
    scratch = tmp_path / "tmp"
    if not mount_tmpfs(scratch, "size=48k"):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        completed = subprocess.run(
            [
                *(sys.executable, "-m", "tflite_gate", "check", "--quiet", "--no-cache"),
                *("--workspace", str(workspace), "--only", "dense"),
                *("--report", str(workspace / "tflite-gate-report.json")),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "TMPDIR": str(scratch)},
        )
        leftovers = list(scratch.iterdir())
    finally:
        subprocess.run(["umount", "-l", str(scratch)], check=False)
    assert "Traceback" not in completed.stdout + completed.stderr
    assert completed.returncode == 1, completed.stderr
    report = json.loads((workspace / "tflite-gate-report.json").read_text())
    [finding] = [f for f in report["findings"] if f["rule"] == "environment-error"]
    assert finding["message"].startswith(
        "free disk space, or set TMPDIR to a directory with room: dense: a temporary file in "
    )
    assert leftovers == []  # the scratch directory is removed even so


def test_a_bug_in_one_models_check_spares_the_others(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: one model's stage raises as a bug would; the rest are checked.

    The real `_run_model` runs for the other models; the bug is a TypeError raised
    where that model's check starts.
    """
    (workspace / "tflite-gate.yml").write_text(
        textwrap.dedent(
            """\
            version: 1
            models:
              - {name: first, source: relu.tflite}
              - {name: broken, source: relu.tflite}
              - {name: last, source: relu.tflite}
            """
        )
    )
    real = pipeline.run_model

    def buggy(plan: pipeline.ModelPlan, *rest: object) -> None:
        if plan.name == "broken":
            raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")
        real(plan, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "run_model", buggy)
    report_path = workspace / "r.json"
    outputs = report_outputs(
        json_path=report_path, sarif_path=None, junit_path=None, names={"json": "--report"}
    )
    options = CheckOptions(
        policy=workspace / "tflite-gate.yml", workspace=workspace, outputs=outputs
    )
    outcome = run_gate_in_process(options, lambda _: None)
    assert outcome.exit_code == EXIT_INTERNAL
    assert outcome.messages == [
        "internal error: broken: TypeError: unsupported operand type(s) for +: 'int' and 'str' "
        "(a bug; the traceback is in the report's internal_error)"
    ]
    report = outcome.report
    assert report is not None
    assert report.verdict == "error"
    assert report.internal_error is not None and "TypeError" in report.internal_error
    [bug] = [f for f in report.findings if f.rule == "internal-error"]
    assert bug.model == "broken"
    runs = {m.name: [r.status for v in m.variants for r in v.runs] for m in report.models}
    assert runs == {"first": ["ran"], "broken": [], "last": ["ran"]}
    assert all("total" in m.timings for m in report.models)

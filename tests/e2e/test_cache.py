"""The conversion cache through the real gate: real conversions, real reuse.

Two models share one workspace and one cache: `file` (an .h5 with .npy evaluation
data) and `factory` (a `module:function` in the workspace). Each test changes one
thing and checks that exactly the models it can affect are converted again, and that
a reused run says so and reports what a fresh run reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.harness import GateRun, comparable, run_gate

pytestmark = pytest.mark.slow

FACTORY = """\
import keras


def build() -> keras.Model:
    keras.utils.set_random_seed(3)  # seed 3
    x = keras.Input((6,), name="x")
    y = keras.layers.Dense(4, activation="softmax", name="y")(x)
    return keras.Model(x, y)
"""
MARK = 1.2345678  # one weight of model.h5, so that one byte of it can be changed
POLICY = """\
version: 1
defaults:
  max_divergence: {max_abs: 0.05}
models:
  - name: file
    source: model.h5
    variants:
      - {name: float, quantization: none}
      - {name: half, quantization: float16}
    data:
      evaluation: data/eval
      samples: 8
  - name: factory
    source: nets.tiny:build
    data:
      samples: 8
"""


def _save_model(workspace: Path) -> None:
    """model.h5 from the factory, with one weight set to MARK (found again by its bytes)."""
    script = (
        "import sys; sys.path.insert(0, '.'); import numpy as np\n"
        "from nets.tiny import build\n"
        "model = build(); kernel, bias = model.layers[-1].get_weights()\n"
        f"kernel[0, 0] = {MARK}; model.layers[-1].set_weights([kernel, bias])\n"
        "model.save('model.h5')\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=workspace, check=True, timeout=300)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cache-template")
    (root / "nets").mkdir()
    (root / "nets" / "__init__.py").write_text("")
    (root / "nets" / "tiny.py").write_text(FACTORY)
    (root / "data" / "eval").mkdir(parents=True)
    values = np.random.default_rng(0).uniform(0, 1, (8, 6)).astype(np.float32)
    np.save(root / "data" / "eval" / "x.npy", values)
    (root / "tflite-gate.yml").write_text(POLICY)
    _save_model(root)
    return root


@pytest.fixture
def workspace(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(template, root)
    return root


def _gate(workspace: Path, *args: str, env: dict[str, str] | None = None) -> GateRun:
    return run_gate(workspace, "--cache-dir", str(workspace.parent / "cache"), *args, env=env)


def _cache(run: GateRun) -> dict[str, str]:
    assert run.report is not None, run.stderr
    return {m["name"]: m["cache"]["status"] for m in run.report["models"]}


def _verdict(run: GateRun, also: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    """What a reused run must report exactly as a fresh one did: everything but times."""
    return run.returncode, comparable(run.report, also=also)


def _change_one_byte(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1, f"{old!r} is not unique in {path.name}"
    position = data.index(old)
    changed = bytes(a if a == b else b for a, b in zip(old, new, strict=True))
    assert sum(a != b for a, b in zip(old, changed, strict=True)) == 1
    path.write_bytes(data[:position] + changed + data[position + len(old) :])


@pytest.fixture
def warm(workspace: Path) -> GateRun:
    """A first run that converts both models and keeps them."""
    first = _gate(workspace)
    assert first.returncode == 0, first.stderr
    assert _cache(first) == {"file": "stored", "factory": "stored"}
    return first


def test_nothing_changed_reuses_everything_and_reports_the_same(
    workspace: Path, warm: GateRun
) -> None:
    again = _gate(workspace)
    assert _cache(again) == {"file": "reused", "factory": "reused"}
    assert _verdict(again) == _verdict(warm)
    assert "converting" not in again.stderr
    assert "reused from the cache: converted" in again.stderr
    assert "--no-cache converts again" in again.stderr
    assert "reused from the cache" in again.stdout  # the summary says so too
    model = again.model("file")
    assert model["cache"]["original_s"] > 0 and model["cache"]["converted_at"]
    assert "convert" not in model["variants"][0]["timings"]  # not converted in this run
    artifact = workspace / model["variants"][0]["artifact"]
    assert artifact.read_bytes()[4:8] == b"TFL3"


def test_one_byte_of_the_model_converts_it_again(workspace: Path, warm: GateRun) -> None:
    mark = np.float32(MARK).tobytes()
    _change_one_byte(workspace / "model.h5", mark, mark[:-1] + bytes([mark[-1] ^ 1]))
    again = _gate(workspace)
    # The factory too: it might read model.h5 through h5py, which the gate cannot see.
    assert _cache(again) == {"file": "stored", "factory": "stored"}
    assert again.returncode == 0, again.stderr


def test_one_byte_of_the_factory_source_converts_it_again(workspace: Path, warm: GateRun) -> None:
    _change_one_byte(workspace / "nets" / "tiny.py", b"# seed 3", b"# seed 4")
    again = _gate(workspace)
    assert _cache(again)["factory"] == "stored"
    assert again.returncode == 0, again.stderr


def test_one_byte_of_the_data_converts_it_again(workspace: Path, warm: GateRun) -> None:
    data = workspace / "data" / "eval" / "x.npy"
    raw = data.read_bytes()
    last = raw[-4:]
    _change_one_byte(data, raw[-64:], raw[-64:-4] + last[:3] + bytes([last[3] ^ 1]))
    again = _gate(workspace)
    assert _cache(again) == {"file": "stored", "factory": "stored"}  # .npy: as model.h5


def test_one_option_converts_again_and_a_threshold_does_not(workspace: Path, warm: GateRun) -> None:
    policy = workspace / "tflite-gate.yml"
    policy.write_text(POLICY.replace("max_abs: 0.05", "max_abs: 0.000000001"))
    stricter = _gate(workspace)
    assert _cache(stricter) == {"file": "reused", "factory": "reused"}  # thresholds: no
    assert stricter.returncode == 1  # and judged by the new threshold
    policy.write_text(
        POLICY.replace("samples: 8\n  - name: factory", "samples: 7\n  - name: factory")
    )
    option = _gate(workspace)
    assert _cache(option) == {"file": "stored", "factory": "reused"}


def test_another_tensorflow_version_converts_everything_again(
    workspace: Path, warm: GateRun, tmp_path: Path
) -> None:
    """What the environment says TensorFlow's version is, as a distribution's metadata."""
    fake = tmp_path / "metadata"
    info = fake / "tensorflow-9.9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tensorflow\nVersion: 9.9.9\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]),
    }
    again = _gate(workspace, env=env)
    assert again.report is not None, again.stderr
    assert again.report["environment"]["packages"]["tensorflow"] == "9.9.9"
    assert _cache(again) == {"file": "stored", "factory": "stored"}


def test_a_truncated_entry_is_converted_again_without_an_error(
    workspace: Path, warm: GateRun
) -> None:
    entries = list((workspace.parent / "cache" / "conversions").glob("*/*/variant-*.tflite"))
    assert len(entries) == 3
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:100])
    again = _gate(workspace)
    assert _cache(again) == {"file": "stored", "factory": "stored"}
    assert _verdict(again) == _verdict(warm)
    assert "Traceback" not in again.stderr


def test_no_cache_converts_and_keeps_nothing(workspace: Path) -> None:
    run = _gate(workspace, "--no-cache")
    assert _cache(run) == {"file": "disabled", "factory": "disabled"}
    assert not (workspace.parent / "cache" / "conversions").exists()


def test_two_gates_at_once_are_both_correct(workspace: Path, tmp_path: Path) -> None:
    """Same workspace, same cache, started together: both convert, store, and agree."""
    cache = workspace.parent / "cache"
    processes = []
    for i in range(2):
        command = [sys.executable, "-m", "tflite_gate", "check", "--workspace", str(workspace)]
        command += ["--report", str(tmp_path / f"report-{i}.json"), "--cache-dir", str(cache)]
        command += ["--artifacts", str(tmp_path / f"artifacts-{i}")]
        processes.append(
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    runs = []
    for i, process in enumerate(processes):
        out, err = process.communicate(timeout=600)
        report = json.loads((tmp_path / f"report-{i}.json").read_text())
        runs.append(GateRun(process.returncode, out, err, report))
    assert [run.returncode for run in runs] == [0, 0], [run.stderr for run in runs]
    statuses = {status for run in runs for status in _cache(run).values()}
    assert statuses <= {"stored", "reused"}
    first, second = (_verdict(run, also=("artifact",)) for run in runs)  # each kept its own
    assert first == second
    assert len(list((cache / "conversions").glob("*/*/manifest.json"))) == 2
    third = _gate(workspace)
    assert _cache(third) == {"file": "reused", "factory": "reused"}


def test_a_cache_inside_the_workspace_is_not_an_input(workspace: Path) -> None:
    """Its .tflite and .npz files are the gate's own: keying a factory on them would miss."""
    inside = ["--cache-dir", str(workspace / "cache"), "--artifacts", str(workspace / "out")]
    first = run_gate(workspace, *inside)
    again = run_gate(workspace, *inside)
    assert _cache(first) == {"file": "stored", "factory": "stored"}
    assert _cache(again) == {"file": "reused", "factory": "reused"}

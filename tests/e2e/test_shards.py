"""matrix → one `check --only` per entry → merge, against one unsharded run (real CLI).

The merged report must be what the unsharded run reported: the same verdict, the
same findings in the same order (a policy-wide finding once), the same models; a
missing shard is an error at its model's line, never a pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import comparable, run_gate

pytestmark = pytest.mark.slow

DENSE = """\
import keras


def build() -> keras.Model:
    keras.utils.set_random_seed(1)
    x = keras.Input((8,), name="x")
    return keras.Model(x, keras.layers.Dense(3, activation="softmax", name="y")(x))
"""
POOLED = """\
import keras


def build() -> keras.Model:
    keras.utils.set_random_seed(2)
    x = keras.Input((4, 4, 2), name="x")
    return keras.Model(x, keras.layers.GlobalAveragePooling2D(name="y")(x))
"""
POLICY = """\
version: 1
defaults:
  ops:
    allow: [FULLY_CONNECTED, SOFTMAX]
  versions:
    keras: "<1"            # every shard reports it: merged, it is there once
models:
  - name: dense
    source: nets.dense:build
  - name: pooled           # MEAN is not allowed
    source: nets.pooled:build
  - name: pinned
    source: nets.dense:build
    versions:
      tensorflow: "<2"     # this model's own finding
"""


def _cli(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tflite_gate", *args, "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    (root / "nets").mkdir()
    (root / "nets" / "__init__.py").write_text("")
    (root / "nets" / "dense.py").write_text(DENSE)
    (root / "nets" / "pooled.py").write_text(POOLED)
    (root / "tflite-gate.yml").write_text(POLICY)
    return root


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """Everything but times, cache use, and where each job kept its artifacts."""
    return comparable(report, also=("artifact",))


@pytest.fixture(scope="module")
def unsharded(workspace: Path) -> dict[str, Any]:
    run = run_gate(workspace, "--cache-dir", str(workspace / "cache"))
    assert run.returncode == 1 and run.report is not None, run.stderr
    return run.report


def _shards(workspace: Path, by: str, tmp: Path) -> list[Path]:
    planned = _cli(workspace, "matrix", "--by", by)
    assert planned.returncode == 0, planned.stderr
    entries = json.loads(planned.stdout)["include"]
    reports = []
    for index, entry in enumerate(entries):
        report = tmp / f"shard-{index}.json"
        extra = ["--runtime", entry["runtime"]] if "runtime" in entry else []
        run = run_gate(
            workspace,
            "--only",
            entry["model"],
            *extra,
            "--cache-dir",
            str(workspace / "cache"),
            "--artifacts",
            str(tmp / f"artifacts-{index}"),
            report=report,
        )
        assert run.returncode in {0, 1}, run.stderr
        assert run.report is not None and run.report["shard"]["models"] == [entry["model"]]
        reports.append(report)
    return reports


def _merge(workspace: Path, shards: list[Path], out: Path, *extra: str) -> Any:
    merged = _cli(workspace, "merge", *map(str, shards), "--report", str(out), *extra)
    return merged, json.loads(out.read_text()) if out.exists() else None


@pytest.mark.parametrize("by", ["model", "runtime"])
def test_merged_shards_report_what_one_run_reports(
    workspace: Path, unsharded: dict[str, Any], tmp_path: Path, by: str
) -> None:
    shards = _shards(workspace, by, tmp_path)
    assert len(shards) == 3
    merged, report = _merge(workspace, list(reversed(shards)), tmp_path / "merged.json")
    assert merged.returncode == 1, merged.stderr
    assert _comparable(report) == _comparable(unsharded)
    assert [f["rule"] for f in report["findings"]] == [
        "version-mismatch",
        "op-not-allowed",
        "version-mismatch",
    ]
    assert report["shard"] is None
    assert "Verdict: FAIL" in merged.stdout


def test_a_missing_shard_fails_at_its_model(
    workspace: Path, model_shards: list[Path], tmp_path: Path
) -> None:
    merged, report = _merge(workspace, [model_shards[0], model_shards[2]], tmp_path / "m.json")
    assert merged.returncode == 1
    missing = [f for f in report["findings"] if f["rule"] == "shard-missing"]
    assert [(f["model"], f["location"]["line"]) for f in missing] == [("pooled", 11)]
    assert [m["name"] for m in report["models"]] == ["dense", "pinned"]


def test_passing_shards_merge_to_a_pass_with_github_output(workspace: Path, tmp_path: Path) -> None:
    policy = workspace / "only-dense.yml"
    policy.write_text(POLICY.split("  - name: pooled")[0].replace('keras: "<1"', 'keras: ">=1"'))
    again = tmp_path / "dense.json"
    run = run_gate(
        workspace,
        "--policy",
        str(policy),
        "--cache-dir",
        str(workspace / "cache"),
        "--only",
        "dense",
        report=again,
    )
    assert run.returncode == 0, run.stderr
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    merged = subprocess.run(
        [
            *(sys.executable, "-m", "tflite_gate", "merge", str(again)),
            *("--workspace", str(workspace), "--policy", str(policy)),
            *("--report", str(tmp_path / "m.json"), "--format", "github"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**_env(), "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)},
    )
    assert merged.returncode == 0, merged.stderr
    assert "\npass\n" in outputs.read_text()  # verdict<<DELIMITER, pass, DELIMITER
    assert "dense" in summary.read_text()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}


@pytest.fixture(scope="module")
def model_shards(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _shards(workspace, "model", tmp_path_factory.mktemp("model-shards"))


@pytest.mark.parametrize(
    ("problem", "words"),
    [
        ("not a report", "pass tflite-gate JSON reports only"),
        ("missing file", "make "),
        ("twice", "merge each shard once"),
        ("another policy", "their policy differs"),
    ],
)
def test_shards_that_cannot_be_merged_are_usage_errors(
    workspace: Path, model_shards: list[Path], tmp_path: Path, problem: str, words: str
) -> None:
    first = model_shards[0]
    shards = [first]
    if problem == "not a report":
        bad = tmp_path / "bad.json"
        bad.write_text('{"findings": []}')
        shards.append(bad)
    elif problem == "missing file":
        shards.append(tmp_path / "nowhere.json")
    elif problem == "twice":
        shards.append(first)
    else:
        other = tmp_path / "other.json"
        data = json.loads(first.read_text())
        data["policy"] = "elsewhere.yml"
        other.write_text(json.dumps(data))
        shards.append(other)
    merged, report = _merge(workspace, shards, tmp_path / "merged.json")
    assert merged.returncode == 2, merged.stderr
    assert words in merged.stderr
    assert "Traceback" not in merged.stderr
    assert report is not None and report["verdict"] == "error"

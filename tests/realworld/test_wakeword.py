"""openWakeWord's melspectrogram .tflite, whose input is [-1, -1] (batch, audio samples).

A .tflite source must honour `input_shapes` (the model is resized to [1, 1760] before
it runs and then passes) and, without it, raise the dynamic-dimension `policy-invalid`
that README promises at the model's source line, not feed a (1, 1) tensor that fails
in XNNPACK. A key that cannot apply to an already-converted model (a quantizing
variant) is a `policy-invalid` error at its line, never silently ignored.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.harness import GateRun, run_gate

from .conftest import Extract, policy_line
from .packages import OPENWAKEWORD

pytestmark = [pytest.mark.realworld, pytest.mark.slow]

MEMBER = "openwakeword/resources/models/melspectrogram.tflite"

SHAPED = textwrap.dedent(
    """\
    version: 1
    models:
      - name: melspectrogram
        source: models/melspectrogram.tflite
        input_shapes: {input: [1, 1760]}
    """
)
UNSHAPED = textwrap.dedent(
    """\
    version: 1
    models:
      - name: melspectrogram
        source: models/melspectrogram.tflite
    """
)
QUANTIZING = textwrap.dedent(
    """\
    version: 1
    models:
      - name: melspectrogram
        source: models/melspectrogram.tflite
        input_shapes: {input: [1, 1760]}
        variants:
          - {name: int8, quantization: int8}
    """
)


def _workspace(
    factory: pytest.TempPathFactory, extract: Extract, name: str, policy: str
) -> GateRun:
    ws: Path = factory.mktemp(name)
    extract(OPENWAKEWORD, {MEMBER: "models/melspectrogram.tflite"}, ws)
    (ws / "tflite-gate.yml").write_text(policy)
    return run_gate(ws)


@pytest.fixture(scope="module")
def shaped(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    return _workspace(tmp_path_factory, wheel_members, "wakeword-shaped", SHAPED)


@pytest.fixture(scope="module")
def unshaped(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    return _workspace(tmp_path_factory, wheel_members, "wakeword-unshaped", UNSHAPED)


@pytest.fixture(scope="module")
def quantizing(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    return _workspace(tmp_path_factory, wheel_members, "wakeword-quantizing", QUANTIZING)


def test_input_shapes_resize_a_tflite_source_and_it_passes(shaped: GateRun) -> None:
    assert shaped.returncode == 0, shaped.stdout + shaped.stderr
    assert shaped.report is not None
    assert shaped.report["verdict"] == "pass"
    assert [f for f in shaped.findings() if f["severity"] != "notice"] == []
    assert shaped.findings(rule="interpreter-error") == []
    [variant] = shaped.model("melspectrogram")["variants"]
    [runtime_run] = variant["runs"]
    assert (
        runtime_run["status"] == "ran"
    )  # executed; a .tflite without reference has nothing to compare
    assert runtime_run["samples"] == 16


def test_dynamic_tflite_input_without_input_shapes_is_policy_invalid(unshaped: GateRun) -> None:
    assert unshaped.returncode == 1, unshaped.stdout + unshaped.stderr
    assert unshaped.report is not None
    assert unshaped.report["verdict"] == "fail"
    findings = unshaped.findings(model="melspectrogram")
    assert [f["rule"] for f in findings] == ["policy-invalid"], findings
    [finding] = findings
    assert "input_shapes" in finding["message"]
    assert "'input'" in finding["message"]
    assert finding["location"] == {
        "path": "tflite-gate.yml",
        "line": policy_line(UNSHAPED, "melspectrogram"),
        "column": finding["location"]["column"],
    }


def test_dynamic_tflite_input_is_not_run_with_a_guessed_shape(unshaped: GateRun) -> None:
    assert unshaped.findings(rule="interpreter-error") == []
    [variant] = unshaped.model("melspectrogram")["variants"]
    assert variant["runs"] == []


def test_quantizing_variant_on_a_tflite_source_is_policy_invalid(quantizing: GateRun) -> None:
    assert quantizing.returncode in {1, 2}, quantizing.stdout + quantizing.stderr
    assert quantizing.report is not None
    assert quantizing.report["verdict"] != "pass"
    invalid = quantizing.findings(rule="policy-invalid")
    assert len(invalid) == 1, quantizing.report["findings"]
    [finding] = invalid
    assert finding["location"]["path"] == "tflite-gate.yml"
    variants = policy_line(QUANTIZING, "melspectrogram", "variants")
    assert finding["location"]["line"] in {variants, variants + 1}

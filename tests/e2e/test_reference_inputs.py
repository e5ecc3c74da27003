"""A .tflite and a reference whose inputs are named differently, through real gate runs.

A re-export renames inputs (`input_1` for `input`): a single-input model pairs with
its reference by position; several inputs pair by name or by the policy's
`input_map`, whose names are checked against both models at their policy line.
The models are tiny Keras models built here and converted with the installed
TensorFlow; each renamed copy shares its original's layers, so both compute the same.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import GateRun, run_gate

pytestmark = pytest.mark.slow

RENAMED = textwrap.dedent(
    """\
    version: 1
    models:
      - name: renamed-vs-tflite
        source: models/renamed.tflite
        reference: models/single.tflite
        max_divergence: {max_abs: 1.0e-5}
      - name: renamed-vs-keras
        source: models/renamed.tflite
        reference: models/single.keras
        max_divergence: {max_abs: 1.0e-5}
      - name: unmapped-vs-tflite
        source: models/two.tflite
        reference: models/two_renamed.tflite
      - name: unmapped-vs-keras
        source: models/two.tflite
        reference: models/two_renamed.keras
    """
)

MAPPED = textwrap.dedent(
    """\
    version: 1
    models:
      - name: mapped-vs-tflite
        source: models/two.tflite
        reference: models/two_renamed.tflite
        input_map: {a: left, b: right}
        max_divergence: {max_abs: 1.0e-5}
      - name: mapped-vs-keras
        source: models/two.tflite
        reference: models/two_renamed.keras
        input_map: {a: left, b: right}
        max_divergence: {max_abs: 1.0e-5}
      - name: swapped
        source: models/two.tflite
        reference: models/two_renamed.keras
        input_map: {a: right, b: left}
        max_divergence: {max_abs: 1.0e-5}
      - name: unknown-key
        source: models/two.tflite
        reference: models/two_renamed.tflite
        input_map: {a: left, c: right}
      - name: unknown-value-tflite
        source: models/two.tflite
        reference: models/two_renamed.tflite
        input_map: {a: left, b: rihgt}
      - name: unknown-value-keras
        source: models/two.tflite
        reference: models/two_renamed.keras
        input_map: {a: left, b: rihgt}
      - name: map-on-converted
        source: models/single.keras
        input_map: {x: x}
      - name: map-without-reference
        source: models/two.tflite
        input_map: {a: left}
    """
)


def _write_models(models: Path) -> None:
    import keras
    import tensorflow as tf

    models.mkdir()
    keras.utils.set_random_seed(0)

    def save(model: Any, name: str) -> None:
        model.save(models / f"{name}.keras")
        converted = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        (models / f"{name}.tflite").write_bytes(converted)

    dense = keras.layers.Dense(3)
    for name, input_name in (("single", "x"), ("renamed", "input_1")):
        x = keras.Input((4,), name=input_name)
        save(keras.Model(x, dense(x)), name)
    joined = keras.layers.Dense(3)
    for name, (first, second) in (("two", ("a", "b")), ("two_renamed", ("left", "right"))):
        a, b = keras.Input((4,), name=first), keras.Input((4,), name=second)
        save(keras.Model([a, b], joined(keras.layers.Concatenate()([a, b]))), name)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("reference-inputs")
    _write_models(ws / "models")
    (ws / "renamed.yml").write_text(RENAMED)
    (ws / "mapped.yml").write_text(MAPPED)
    return ws


@pytest.fixture(scope="module")
def renamed(workspace: Path) -> GateRun:
    return run_gate(workspace, "--policy", str(workspace / "renamed.yml"), "--no-cache")


@pytest.fixture(scope="module")
def mapped(workspace: Path) -> GateRun:
    return run_gate(workspace, "--policy", str(workspace / "mapped.yml"), "--no-cache")


def _position(policy: str, model: str, text: str) -> tuple[int, int]:
    """Line and column (1-based) of `text` in `model`'s entry."""
    lines = policy.splitlines()
    start = lines.index(f"  - name: {model}")
    line = next(i for i in range(start, len(lines)) if text in lines[i])
    return line + 1, lines[line].index(text) + 1


def _where(finding: dict[str, Any]) -> tuple[int, int]:
    return finding["location"]["line"], finding["location"]["column"]


def _run(gate: GateRun, model: str) -> dict[str, Any]:
    (variant,) = gate.model(model)["variants"]
    (run,) = variant["runs"]
    return dict(run)


@pytest.mark.parametrize("model", ["renamed-vs-tflite", "renamed-vs-keras"])
def test_a_renamed_single_input_is_compared_by_position(renamed: GateRun, model: str) -> None:
    assert renamed.findings(model=model) == []
    run = _run(renamed, model)
    assert run["status"] == "passed", run
    assert run["metrics"][0]["max_abs"] <= 1.0e-5


@pytest.mark.parametrize("model", ["unmapped-vs-tflite", "unmapped-vs-keras"])
def test_several_renamed_inputs_ask_for_input_map(renamed: GateRun, model: str) -> None:
    (finding,) = renamed.findings(model=model)
    assert finding["rule"] == "policy-invalid"
    assert finding["message"] == (
        f"{model}: pair the inputs in input_map (the .tflite's input: the reference's), e.g. "
        "input_map: {a: left, b: right} (check the order): the reference's inputs (left, "
        "right) are not the .tflite's (a, b) by name; outputs not compared"
    )
    assert _where(finding) == _position(RENAMED, model, "models/two_renamed")


@pytest.mark.parametrize("model", ["mapped-vs-tflite", "mapped-vs-keras"])
def test_input_map_pairs_several_inputs(mapped: GateRun, model: str) -> None:
    assert mapped.findings(model=model) == []
    assert _run(mapped, model)["status"] == "passed"


def test_input_map_is_what_pairs_them(mapped: GateRun) -> None:
    """Swapped in the map, the same models diverge: the map, not the order, decides."""
    assert _run(mapped, "swapped")["status"] == "diverged"
    assert [f["rule"] for f in mapped.findings(model="swapped")] == ["divergence"]


def test_an_unknown_tflite_input_in_the_map_points_at_its_key(mapped: GateRun) -> None:
    (finding,) = mapped.findings(model="unknown-key")
    assert finding["rule"] == "policy-invalid"
    assert finding["message"] == (
        "unknown-key: input_map: write one of the .tflite's inputs (a, b) instead of 'c'; "
        "outputs not compared"
    )
    assert _where(finding) == _position(MAPPED, "unknown-key", "c: right")


@pytest.mark.parametrize("model", ["unknown-value-tflite", "unknown-value-keras"])
def test_an_unknown_reference_input_in_the_map_points_at_its_value(
    mapped: GateRun, model: str
) -> None:
    (finding,) = mapped.findings(model=model)
    assert finding["rule"] == "policy-invalid"
    assert finding["message"] == (
        f"{model}: input_map.b: write one of the reference's inputs (left, right) instead of "
        "'rihgt'; outputs not compared"
    )
    assert _where(finding) == _position(MAPPED, model, "rihgt")


def test_input_map_where_it_cannot_apply_is_refused(mapped: GateRun) -> None:
    (converted,) = mapped.findings(model="map-on-converted")
    assert converted["rule"] == "policy-invalid"
    assert converted["message"].startswith("map-on-converted: input_map: remove `input_map`")
    assert _where(converted) == _position(MAPPED, "map-on-converted", "{x: x}")
    (alone,) = mapped.findings(model="map-without-reference")
    assert alone["message"].startswith("map-without-reference: input_map: add `reference:`")
    assert _where(alone) == _position(MAPPED, "map-without-reference", "{a: left}")

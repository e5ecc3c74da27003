"""Statuses and metrics that never look better than what was measured, through the real CLI.

One workspace, one gate run. A local runtime package stands in for a broken runtime
build: its interpreter is LiteRT's, but it returns NaN (or zeros) for every output,
as a miscompiled kernel or an uninitialised buffer does. And `min_top1` from the
defaults must gate classifications only, never a regression head of the same shape.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.support.harness import REPO, GateRun, run_gate

pytestmark = pytest.mark.slow

MODELS = textwrap.dedent(
    """\
    import keras


    def classifier():
        keras.utils.set_random_seed(0)
        features = keras.Input((16,), name="features")
        hidden = keras.layers.Dense(32, activation="relu")(features)
        return keras.Model(features, keras.layers.Dense(10, activation="softmax", name="probs")(hidden))


    def landmarks():
        keras.utils.set_random_seed(1)
        features = keras.Input((16,), name="features")
        hidden = keras.layers.Dense(32, activation="relu")(features)
        return keras.Model(features, keras.layers.Dense(10, name="coords")(hidden))
    """
)

BROKEN_RUNTIME = textwrap.dedent(
    """\
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter as _Base


    class _Broken(_Base):
        fill = np.nan

        def get_tensor(self, index, *args):
            value = super().get_tensor(index, *args)
            outputs = {int(d["index"]) for d in self.get_output_details()}
            return np.full_like(value, self.fill) if index in outputs else value
    """
)

PYPROJECT = textwrap.dedent(
    """\
    [build-system]
    requires = ["setuptools>=68"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "brokenrt"
    version = "0.1.0"
    dependencies = ["ai-edge-litert", "numpy"]

    [tool.setuptools]
    packages = ["brokenrt"]
    """
)

POLICY = textwrap.dedent(
    """\
    version: 1
    defaults:
      max_divergence: {min_top1: 0.99, min_cosine: 0.9}
    models:
      - name: nan
        source: models:classifier
        runtimes: [{requirement: ./brokenrt, module: brokenrt.nan}]
      - name: zeros
        source: models:classifier
        runtimes: [{requirement: ./brokenrt, module: brokenrt.zeros}]
      - name: classifier
        source: models:classifier
      - name: landmarks
        source: models:landmarks
        variants:
          - {name: float, quantization: none}
          - {name: dynamic, quantization: dynamic}
      - name: landmarks-declared
        source: models:landmarks
        classification: [coords]
      - name: landmarks-typo
        source: models:landmarks
        classification: [coord]
    """
)


def _line(needle: str, start: str) -> int:
    lines = POLICY.splitlines()
    first = lines.index(f"  - name: {start}")
    return next(i for i in range(first, len(lines)) if needle in lines[i]) + 1


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("verdicts")
    (ws / "models.py").write_text(MODELS)
    package = ws / "brokenrt" / "brokenrt"
    package.mkdir(parents=True)
    (ws / "brokenrt" / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text(BROKEN_RUNTIME)
    (package / "nan.py").write_text("from brokenrt import _Broken as Interpreter\n")
    (package / "zeros.py").write_text(
        "from brokenrt import _Broken\n\n\nclass Interpreter(_Broken):\n    fill = 0.0\n"
    )
    (ws / "tflite-gate.yml").write_text(POLICY)
    return ws


@pytest.fixture(scope="module")
def run(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    cache = tmp_path_factory.mktemp("runtime-cache")
    return run_gate(
        workspace,
        "--cache-dir",
        str(cache),
        "--sarif",
        str(workspace / "gate.sarif"),
        "--junit",
        str(workspace / "gate.xml"),
        "--format",
        "github",
    )


def _only_run(run: GateRun, model: str, variant: str = "float") -> dict[str, object]:
    [found] = next(v for v in run.model(model)["variants"] if v["name"] == variant)["runs"]
    return found  # type: ignore[no-any-return]


def test_a_run_with_nan_outputs_fails_and_claims_no_metrics(run: GateRun) -> None:
    nan_run = _only_run(run, "nan")
    assert nan_run["status"] == "non-finite"
    [metrics] = nan_run["metrics"]  # type: ignore[misc]
    assert metrics["compared"] == 0
    assert metrics["non_finite"] == 16 * 10
    for metric in ("max_abs", "mean_abs", "rmse", "rel_rmse", "cosine", "snr_db", "top1"):
        assert metrics[metric] is None, metric
    assert nan_run["violations"] == []
    [finding] = run.findings(rule="non-finite", model="nan")
    assert "nothing else was compared" in finding["message"]
    assert run.returncode == 1


def test_no_report_carries_a_stand_in_number(run: GateRun, workspace: Path) -> None:
    """Not in the JSON, the SARIF, the JUnit XML, nor the summary and annotations."""
    texts = {
        "json": (workspace / "tflite-gate-report.json").read_text(),
        "sarif": (workspace / "gate.sarif").read_text(),
        "junit": (workspace / "gate.xml").read_text(),
        "stdout": run.stdout,
    }
    for name, text in texts.items():
        assert "1e+300" not in text and "1e300" not in text, name
    assert "nan: cosine n/a" not in texts["stdout"]  # the metric line reads as not measured
    assert "probs: max_abs n/a" in texts["stdout"]


def test_a_collapsed_output_is_named_as_such(run: GateRun) -> None:
    zeros = _only_run(run, "zeros")
    assert zeros["status"] == "diverged"
    [metrics] = zeros["metrics"]  # type: ignore[misc]
    assert (metrics["collapsed"], metrics["collapsed_to"]) == (True, 0.0)
    cosine = [f for f in run.findings(rule="divergence", model="zeros") if "cosine" in f["message"]]
    assert cosine and "same for every sample (0 everywhere)" in cosine[0]["message"]


def test_model_wide_min_top1_gates_softmax_outputs(run: GateRun) -> None:
    classifier = _only_run(run, "classifier")
    assert classifier["status"] == "passed"
    [metrics] = classifier["metrics"]  # type: ignore[misc]
    assert metrics["top1"] == 1.0


def test_model_wide_min_top1_skips_a_regression_head_and_says_so_once(run: GateRun) -> None:
    for variant in ("float", "dynamic"):
        landmarks = _only_run(run, "landmarks", variant)
        assert landmarks["status"] == "passed", landmarks
        [metrics] = landmarks["metrics"]  # type: ignore[misc]
        assert metrics["top1"] is None
    [notice] = run.findings(rule="threshold-not-applied", model="landmarks")
    assert notice["severity"] == "notice"
    assert notice["model"] == "landmarks"
    assert "'coords'" in notice["message"] and "classification:" in notice["message"]
    assert notice["location"]["line"] == 3  # the min_top1 in defaults


def test_a_declared_classification_is_gated(run: GateRun) -> None:
    declared = _only_run(run, "landmarks-declared")
    [metrics] = declared["metrics"]  # type: ignore[misc]
    assert metrics["top1"] == 1.0
    assert not run.findings(model="landmarks-declared")


def test_a_classification_typo_is_a_policy_error_at_its_line(run: GateRun) -> None:
    [typo] = run.findings(rule="policy-invalid", model="landmarks-typo")
    assert "'coord'" in typo["message"] and "coords" in typo["message"]
    assert typo["location"]["line"] == _line("classification", "landmarks-typo")


def test_the_report_validates_against_its_schema(workspace: Path) -> None:
    import jsonschema

    schema_path = REPO / "tflite_gate" / "schemas"
    schema = json.loads((schema_path / "report.schema.json").read_text())
    jsonschema.validate(json.loads((workspace / "tflite-gate-report.json").read_text()), schema)

"""Properties over inputs nobody wrote by hand: any policy text, any mutated model.

- Any YAML text is either a policy or a policy error located inside the file, within
  a time bound; never another exception, never a hang.
- Any mutation of a real converted `.tflite` is either inspected and checked or
  refused as an invalid model; never another exception. A sample of mutants also
  goes through the real gate (interpreter worker included): an exit code from the
  table, a valid report, no traceback.

(The third family, any string through every workflow-command path, lives in
tests/test_injection.py next to the runner's parser it is checked against.)
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support.harness import REPO, run_gate
from tflite_gate.judge import checks
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.report.model import VariantReport
from tflite_gate.tflite.facts import InvalidModelError, inspect_model

POLICY = "tflite-gate.yml"
SCHEMA = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())
BOUND_S = 1.0  # a policy is answered well under a second, whatever it holds

# --------------------------------------------------------------------------- policy text

KEYS = [
    "version", "models", "defaults", "fail_on", "name", "source", "variants", "quantization",
    "io", "ops", "allow", "deny", "custom", "select_tf_ops", "versions", "target_runtime",
    "max_divergence", "max_abs", "min_cosine", "min_snr_db", "min_top1", "per_output",
    "data", "calibration", "evaluation", "generate", "low", "high", "seed", "count",
    "limits", "timeout_s", "memory_mb", "runtimes", "requirement", "with", "module",
    "input_shapes", "reference", "classification", "samples", "<<",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["m.tflite", "../x", "/etc/passwd", "int8", "none", "a:b", "1e999"]),
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
yaml_punctuation = st.text(
    alphabet=string.printable + "&*!|>%@`{}[]:,-#'\"\u00e9\u2028", max_size=200
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a plausible value (nine times in ten), sometimes anything at all."""
    return st.integers(0, 9).flatmap(lambda pick: scalars if pick == 0 else value)


thresholds = st.dictionaries(
    st.sampled_from(["max_abs", "max_rel_rmse", "min_cosine", "min_snr_db", "min_top1"]),
    _maybe(st.floats(-1, 100)),
    max_size=3,
)
models = st.fixed_dictionaries(
    {
        "name": _maybe(st.sampled_from(["m", "cls", "M", "a.b", "x-1"])),
        "source": _maybe(st.sampled_from(["m.tflite", "m.keras", "pkg.mod:build", "sm"])),
    },
    optional={
        "variants": st.lists(
            st.fixed_dictionaries(
                {"name": _maybe(st.sampled_from(["float", "int8", "Int8", "load.json"]))},
                optional={
                    "quantization": _maybe(st.sampled_from(["none", "dynamic", "int8"])),
                    "io": _maybe(st.sampled_from(["float32", "int8"])),
                    "max_divergence": thresholds,
                },
            ),
            max_size=3,
        ),
        "max_divergence": thresholds,
        "ops": st.fixed_dictionaries({}, optional={"allow": st.lists(st.text(max_size=6))}),
        "limits": st.dictionaries(
            st.sampled_from(["timeout_s", "memory_mb", "interpreter_timeout_s"]),
            _maybe(st.integers(-5, 10**6)),
        ),
        "runtimes": st.lists(_maybe(st.sampled_from(["ai-edge-litert", "tflite-runtime==2.14.0"]))),
        "data": st.fixed_dictionaries(
            {}, optional={"evaluation": _maybe(st.sampled_from(["d.npz", "dir", "../d.npz"]))}
        ),
        "input_shapes": st.dictionaries(st.text(max_size=4), _maybe(st.lists(st.integers(-2, 9)))),
    },
)
policies = st.fixed_dictionaries(
    {"version": _maybe(st.just(1)), "models": _maybe(st.lists(models, min_size=1, max_size=3))},
    optional={"fail_on": _maybe(st.sampled_from(["error", "warning", "never"]))},
)


@st.composite
def policy_texts(draw: st.DrawFn) -> str:
    """Policy-shaped YAML, then perhaps cut, spliced or salted with YAML syntax."""
    document = draw(st.one_of(policies, policies, documents))
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    edit = draw(st.sampled_from(["none", "none", "none", "cut", "insert", "raw"]))
    if edit == "raw":
        return draw(yaml_punctuation)
    if edit == "none" or not text:
        return text
    at = draw(st.integers(0, len(text)))
    if edit == "cut":
        return text[:at]
    return text[:at] + draw(yaml_punctuation) + text[at:]


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("policy")


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(policy_texts())
def test_any_text_is_a_policy_or_a_located_policy_error(policy_dir: Path, text: str) -> None:
    path = policy_dir / POLICY
    path.write_text(text, encoding="utf-8")
    lines = max(1, text.count("\n") + 1)
    started = time.monotonic()
    try:
        loaded = load_policy(path, policy_dir)
    except PolicyError as error:
        event("policy error")
        assert error.issues
        for issue in error.issues:
            assert issue.path == POLICY
            assert issue.message.strip()
            if issue.line is not None:
                assert 1 <= issue.line <= lines + 1, (issue, text)
                assert issue.column is None or issue.column >= 1
    else:
        event("valid policy")
        for index in range(len(loaded.policy.models)):  # what a run resolves next
            resolve_model(loaded, index)
    assert time.monotonic() - started < BOUND_S


# --------------------------------------------------------------------------- mutated models

CONVERT = """\
import sys
import keras
import numpy as np
import tensorflow as tf

keras.utils.set_random_seed(0)
inputs = keras.Input((8, 8, 1), batch_size=1, name="image")
x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
x = keras.layers.MaxPooling2D()(x)
x = keras.layers.Flatten()(x)
outputs = keras.layers.Dense(3, activation="softmax", name="probs")(x)
model = keras.Model(inputs, outputs)
converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = lambda: (
    [np.random.default_rng(i).random((1, 8, 8, 1), dtype=np.float32)] for i in range(8)
)
open(sys.argv[1], "wb").write(converter.convert())
"""


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real int8 model from the converter: options, buffers, metadata, signatures."""
    target = tmp_path_factory.mktemp("seed") / "seed.tflite"
    subprocess.run(
        [sys.executable, "-c", CONVERT, str(target)], check=True, capture_output=True, timeout=300
    )
    return target.read_bytes()


@st.composite
def mutants(draw: st.DrawFn, seed: bytes) -> bytes:
    """Bit flips, overwritten words (offsets and lengths are 32-bit), cuts and splices."""
    data = bytearray(seed)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 6]))):
        kind = draw(st.sampled_from(["flip", "word", "cut", "splice"]))
        at = draw(st.integers(0, max(0, len(data) - 4)))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "word":
            value = draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, len(data)]))
            data[at : at + 4] = value.to_bytes(4, "little")
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@pytest.fixture(scope="module")
def tflite_config(tmp_path_factory: pytest.TempPathFactory) -> Any:
    workspace = tmp_path_factory.mktemp("config")
    (workspace / POLICY).write_text(
        "version: 1\nmodels:\n  - {name: m, source: m.tflite, ops: {allow: [CONV_2D]}}\n"
    )
    return resolve_model(load_policy(workspace / POLICY, workspace), 0)


def _findings_or_invalid(config: Any, data: bytes) -> str:
    """What the gate does with a model's bytes before running it; which way it went."""
    variant = VariantReport(name="tflite", quantization="as-is", io="as-is", status="not-converted")
    try:
        variant.inspection = inspect_model(data)
    except InvalidModelError as error:
        assert str(error).strip()
        return "refused as invalid"
    for check in checks.VARIANT_CHECKS:
        for finding in check(config, variant):
            assert finding.message.strip()
    return "inspected and checked"


@pytest.mark.slow  # its seed is converted by TensorFlow in a process
def test_the_unmutated_seed_is_inspected(converted: bytes, tflite_config: Any) -> None:
    inspection = inspect_model(converted)
    assert {op.name for op in inspection.ops} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert _findings_or_invalid(tflite_config, converted) == "inspected and checked"


@pytest.mark.slow  # its seed is converted by TensorFlow in a process
@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_mutation_is_inspected_or_refused(
    converted: bytes, tflite_config: Any, data: st.DataObject
) -> None:
    event(_findings_or_invalid(tflite_config, data.draw(mutants(converted))))


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_gate_survives_any_mutated_model(
    converted: bytes, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Through the whole gate: the interpreter worker may crash on a mutant, never the gate."""
    workspace = tmp_path_factory.mktemp("mutant")
    (workspace / "m.tflite").write_bytes(data.draw(mutants(converted)))
    (workspace / POLICY).write_text(
        textwrap.dedent(
            """\
            version: 1
            models:
              - name: m
                source: m.tflite
                limits: {interpreter_timeout_s: 20}
            """
        )
    )
    run = run_gate(workspace, "--quiet")
    output = run.stdout + run.stderr
    assert "Traceback" not in output, output[-3000:]
    assert run.returncode in (0, 1, 2), output[-3000:]
    assert run.report is not None
    jsonschema.validate(run.report, SCHEMA)
    assert run.report["internal_error"] is None
    event(f"exit {run.returncode}: {sorted({f['rule'] for f in run.report['findings']})}")

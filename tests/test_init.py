"""`tflite-gate init`: a starter policy measured on the model, that passes as written."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import run_command, run_gate, save_tiny_keras
from tflite_builder import build_model, builtin

from tflite_gate.app.init import InitRequest, run_init
from tflite_gate.app.init.probe import probe_problem
from tflite_gate.app.init.request import find_sources, model_name
from tflite_gate.app.init.starter import SCHEMA_FILE_NAME, quoted, starter_policy
from tflite_gate.app.schema import schema_text
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.positions import load_yaml_with_marks
from tflite_gate.report.model import ModelReport, OutputMetrics, Report, RuntimeRun, VariantReport
from tflite_gate.support.environment import new_report


def _init(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_command("init", workspace, *args)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with one small Keras model, saved once for the module."""
    workspace = tmp_path_factory.mktemp("tiny")
    save_tiny_keras(workspace / "tiny.keras")
    return workspace


def test_model_files_are_found_outside_hidden_and_environment_directories(tmp_path: Path) -> None:
    for name in ("a.keras", "models/b.tflite", ".git/c.keras", "venv/lib/d.h5", "e/saved_model.pb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    (tmp_path / "e" / "variables").mkdir()
    (tmp_path / "e" / "variables" / "f.h5").write_bytes(b"")
    assert find_sources(tmp_path) == ["a.keras", "e", "models/b.tflite"]


def test_names_come_from_the_source() -> None:
    assert model_name("models/Classifier v2.keras") == "Classifier_v2"
    assert model_name("zoo.models:build_mobilenet") == "build_mobilenet"
    assert model_name("example_models.gram:build") == "gram"
    assert model_name("saved/") == "saved"
    assert model_name("_x.h5") == "x"
    assert model_name("---.keras") == "model"


@pytest.mark.parametrize(
    "text", ["probs", "true", "1.0", "1e3", "a b", "out\U0001f600", "x\ny", "\x7f"]
)
def test_names_written_into_the_policy_read_back_as_written(text: str) -> None:
    """Read back as the gate reads a policy (YAML 1.2 numbers: 1e3 is one)."""
    assert load_yaml_with_marks(f"key: {quoted(text)}")[0] == {"key": text}


def _measured(cosine: float, rel_rmse: float, **more: object) -> Report:
    """A probe's report: one float variant whose output measured these values."""
    metrics = OutputMetrics(
        output="probs",
        samples=8,
        compared=32,
        max_abs=0.1,
        mean_abs=0.01,
        rmse=0.02,
        rel_rmse=rel_rmse,
        cosine=cosine,
        snr_db=20.0,
        **more,  # type: ignore[arg-type]
    )
    run = RuntimeRun(runtime="ai-edge-litert", status="ran", samples=8, metrics=[metrics])
    variant = VariantReport(
        name="float", quantization="none", io="float32", status="converted", runs=[run]
    )
    report = new_report()
    report.models.append(ModelReport(name="tiny", source="tiny.keras", variants=[variant]))
    return report


def test_starter_thresholds_are_written_as_the_decimals_they_are() -> None:
    text = starter_policy(
        "tiny", "tiny.keras", [("float", "none")], {}, _measured(0.9825, 0.0123), 1.0
    )
    written = yaml.safe_load(text)["models"][0]["variants"][0]["max_divergence"]
    assert "max_divergence: {rel_rmse: 0.025, min_cosine: 0.93}" in text
    assert written == {"rel_rmse": 0.025, "min_cosine": 0.93}
    assert written["min_cosine"] <= 0.9825  # still passes on what was measured


def test_a_variant_no_threshold_should_pass_gets_no_starter_policy() -> None:
    problem = probe_problem(_measured(5e-16, 1.0), margin=1.0)
    assert problem is not None
    code, message = problem
    assert code == 1
    assert message.startswith("fix these first (or choose other --variants): ")
    assert (
        "  tiny/float: fix the variant, no threshold should pass it: output 'probs' cosine "
        "5e-16: a min_cosine that passes it with the 100% margin is -1.0, at or below 0"
    ) in message
    collapsed = probe_problem(_measured(0.99, 0.01, collapsed=True, collapsed_to=0.5), margin=0)
    assert collapsed is not None and "(collapsed)" in collapsed[1]
    assert probe_problem(_measured(0.9825, 0.0123), margin=1.0) is None


TWO_MODELS = """\
    version: 1
    models:
      - name: a
        source: a.keras
      - name: q
        source: q.tflite
    """


@pytest.mark.parametrize(
    ("name", "variants", "says"),
    [
        (None, ["int8"], "pass --name with the model to add variants to, one of: a, q"),
        ("c", ["int8"], "pass --name with one of a, q: tflite-gate.yml has no model 'c'"),
        (
            "a",
            ["float"],
            "pass --variants with a variant a does not have yet: tflite-gate.yml lists float",
        ),
        ("q", ["int8"], "leave out --variants for q: a .tflite source is checked as it is"),
        ("a", ["int4"], "pass --variants with some of float, dynamic, float16, int8, int16x8"),
    ],
)
def test_adding_variants_asks_for_what_it_cannot_decide(
    tmp_path: Path, name: str | None, variants: list[str], says: str
) -> None:
    policy = tmp_path / "tflite-gate.yml"
    policy.write_text(textwrap.dedent(TWO_MODELS))
    request = InitRequest(workspace=tmp_path, policy=policy, name=name, variants=variants)
    outcome = run_init(request, lambda _message: None)
    assert outcome.exit_code == 2
    assert outcome.messages[0].startswith(says), outcome.messages
    assert policy.read_text() == textwrap.dedent(TWO_MODELS)


def test_adding_variants_to_a_broken_policy_says_where_it_is_broken(tmp_path: Path) -> None:
    policy = tmp_path / "tflite-gate.yml"
    policy.write_text("version: 1\nmodels:\n  - name: a\n    source: a.keras\n    quantize: int8\n")
    outcome = run_init(InitRequest(tmp_path, policy, variants=["int8"]), lambda _message: None)
    assert outcome.exit_code == 2
    assert outcome.messages[0].startswith("tflite-gate.yml:5:5: ")


@pytest.mark.slow  # spawns the gate CLI
def test_init_asks_for_what_it_cannot_decide(tmp_path: Path) -> None:
    empty = _init(tmp_path)
    assert empty.returncode == 2
    assert empty.stderr.startswith("tflite-gate init: pass --source PATH")

    (tmp_path / "a.tflite").write_bytes(build_model([builtin("RELU")]))
    (tmp_path / "b.tflite").write_bytes(build_model([builtin("RELU")]))
    several = _init(tmp_path)
    assert several.returncode == 2
    assert "pass --source with the model to check, one of: a.tflite, b.tflite" in several.stderr

    wrong = _init(tmp_path, "--source", "a.tflite", "--variants", "int4")
    assert wrong.returncode == 2
    assert "pass --variants with some of float, dynamic, float16, int8, int16x8" in wrong.stderr

    bad_name = _init(tmp_path, "--source", "a.tflite", "--name", "../x")
    assert bad_name.returncode == 2
    assert "pass --name with letters, digits and _ . - only" in bad_name.stderr

    (tmp_path / "tflite-gate.yml").write_text("mine\n")
    kept = _init(tmp_path, "--source", "a.tflite")
    assert kept.returncode == 2
    assert "pass --force to replace" in kept.stderr
    assert (tmp_path / "tflite-gate.yml").read_text() == "mine\n"


@pytest.mark.slow  # spawns the gate CLI
def test_a_tflite_source_gets_its_ops_and_runtime(tmp_path: Path) -> None:
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU"), builtin("TANH")]))
    made = _init(tmp_path)
    assert made.returncode == 0, made.stderr
    policy = yaml.safe_load((tmp_path / "tflite-gate.yml").read_text())
    assert policy["models"] == [
        {
            "name": "relu",
            "source": "relu.tflite",
            "ops": {"allow": ["RELU", "TANH"]},
            "versions": {"target_runtime": "1.14.0"},
        }
    ]
    assert run_gate(tmp_path).returncode == 0
    # A new op is what the allow list is for.
    (tmp_path / "relu.tflite").write_bytes(build_model([builtin("RELU"), builtin("LOGISTIC")]))
    changed = run_gate(tmp_path)
    assert changed.returncode == 1
    assert [f["rule"] for f in changed.findings()] == ["op-not-allowed"]


@pytest.mark.slow
def test_the_starter_policy_passes_as_written(tiny: Path) -> None:
    made = _init(tiny, "--variants", "float,int8")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Wrote tflite-gate.yml (2 variant(s), 4 ops allowed")
    text = (tiny / "tflite-gate.yml").read_text()
    assert text.startswith(f"# yaml-language-server: $schema={SCHEMA_FILE_NAME}\n")
    assert (tiny / SCHEMA_FILE_NAME).read_text() == schema_text("policy")
    assert "with a 100% margin" in text
    model = load_policy(tiny / "tflite-gate.yml", tiny).policy.models[0]
    assert model.ops is not None and model.ops.allow == [
        "DEQUANTIZE",
        "FULLY_CONNECTED",
        "QUANTIZE",
        "SOFTMAX",
    ]
    assert model.variants is not None
    assert [(v.name, v.quantization) for v in model.variants] == [
        ("float", "none"),
        ("int8", "int8"),
    ]
    int8 = model.variants[1].max_divergence
    assert int8 is not None and int8.rel_rmse is not None and int8.min_cosine is not None
    assert 0 < int8.rel_rmse < 2 and 0 < int8.min_cosine < 1  # random weights: varies

    checked = run_gate(tiny)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.findings() == []
    assert checked.report is not None
    assert checked.report["models"][0]["cache"]["status"] == "reused"  # init's conversion, reused

    again = _init(tiny)
    assert again.returncode == 2 and "pass --force" in again.stderr
    forced = _init(tiny, "--force", "--margin", "0")
    assert forced.returncode == 0, forced.stderr
    assert "with a 0% margin" in (tiny / "tflite-gate.yml").read_text()
    assert run_gate(tiny).returncode == 0  # even with no margin: it is what was measured


@pytest.mark.slow
def test_unknown_sizes_are_asked_for_never_invented(tmp_path: Path) -> None:
    save_tiny_keras(tmp_path / "seq.keras", shape=(None, 3))
    asked = _init(tmp_path)
    assert asked.returncode == 2
    assert "pass the sizes your app feeds as --input-shape NAME=1,D1,D2,..." in asked.stderr
    assert "input 'x' has dynamic dimensions [None, None, 3]" in asked.stderr
    assert not (tmp_path / "tflite-gate.yml").exists()

    given = _init(tmp_path, "--input-shape", "x=1,5,3")
    assert given.returncode == 0, given.stderr
    policy = yaml.safe_load((tmp_path / "tflite-gate.yml").read_text())
    assert policy["models"][0]["input_shapes"] == {"x": [1, 5, 3]}
    assert run_gate(tmp_path).returncode == 0


@pytest.mark.slow
def test_a_model_that_does_not_convert_writes_no_policy(tmp_path: Path) -> None:
    (tmp_path / "gram.py").write_text(
        textwrap.dedent(
            """\
            import tensorflow as tf

            @tf.function(input_signature=[tf.TensorSpec([3, 3], tf.float32)])
            def det(x):
                return tf.linalg.det(tf.linalg.matmul(x, x, transpose_b=True))

            def build():
                return det
            """
        )
    )
    refused = _init(tmp_path, "--source", "gram:build")
    assert refused.returncode == 1
    assert "fix these first (or choose other --variants)" in refused.stderr
    assert "flex-op" in refused.stderr
    assert not (tmp_path / "tflite-gate.yml").exists()

"""Wrong shape, wrong line, wrong words: inputs whose error once named the wrong thing.

Policy cases run the real CLI (a policy error answers before TensorFlow is imported):
exit 2, the located message first on stderr, no traceback, a report valid against the
shipped schema with the finding at the same place.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from tests.support.action_env import action_env, run_entrypoint
from tests.support.harness import REPO, run_gate
from tests.support.tflite_builder import build_model, builtin
from tflite_gate.judge.checks import check_run
from tflite_gate.model.data import DataError, load_directory, load_npz
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.report.model import RuntimeRun, VariantReport
from tflite_gate.run.protocol import TensorSpec

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


@pytest.mark.slow
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


# --------------------------------------------------------------------------- event shapes

PASSING = "version: 1\nmodels:\n  - {name: relu, source: models/relu.tflite}\n"


@pytest.fixture(scope="module")
def passing_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = tmp_path_factory.mktemp("repo")
    (workspace / "models").mkdir()
    (workspace / "models" / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (workspace / POLICY).write_text(PASSING, encoding="utf-8")
    return workspace


def _run_action(
    workspace: Path, event_file: Path, event_name: str
) -> subprocess.CompletedProcess[str]:
    inputs = {"policy": POLICY, "comment": "update", "report": "report.json"}
    inputs["github-token"] = "ghs_0123456789abcdef"
    env = action_env(
        workspace, event_file.parent, inputs, event_name=event_name, event_path=event_file
    )  # the API is never reached: the comment is skipped first
    return run_entrypoint(workspace, env)


@pytest.mark.parametrize(
    ("event_name", "payload", "why"),
    [
        ("pull_request", "[1, 2]", "is a list where GitHub writes an object"),
        ("pull_request", '"opened"', 'is a string ("opened") where GitHub writes an object'),
        ("pull_request", "null", "is null where GitHub writes an object"),
        (
            "pull_request",
            '{"pull_request": 5}',
            "has `pull_request` as a number (5) where GitHub writes an object",
        ),
        (
            "pull_request_target",
            '{"pull_request": {"number": "7"}}',
            'has a string ("7") as the pull request number where GitHub writes a positive integer',
        ),
        (
            "issue_comment",
            '{"issue": [1]}',
            "has `issue` as a list where GitHub writes an object",
        ),
        (
            "issue_comment",
            '{"issue": {"pull_request": {"url": "u"}, "number": 1.5}}',
            "has a number (1.5) as the issue number where GitHub writes a positive integer",
        ),
        ("push", "[]", "is a list where GitHub writes an object"),
    ],
)
@pytest.mark.slow
def test_event_of_the_wrong_shape_skips_the_comment_with_a_notice(
    passing_workspace: Path, tmp_path: Path, event_name: str, payload: str, why: str
) -> None:
    event = tmp_path / "event.json"
    event.write_text(payload, encoding="utf-8")
    run = _run_action(passing_workspace, event, event_name)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]  # the verdict: PASS
    assert "Traceback" not in output
    notices = [
        line
        for line in run.stdout.splitlines()
        if line.startswith("::notice title=tflite-gate comment::")
    ]
    assert notices == [
        "::notice title=tflite-gate comment::tflite-gate: sticky comment skipped: "
        f"the {event_name} event in {event} {why}"
    ]


@pytest.mark.slow
def test_unreadable_event_skips_the_comment_with_a_notice(
    passing_workspace: Path, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_bytes(b"{not json")
    run = _run_action(passing_workspace, event, "pull_request")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    [notice] = [
        line
        for line in run.stdout.splitlines()
        if line.startswith("::notice title=tflite-gate comment::")
    ]
    assert f"sticky comment skipped: the event file {event} is not JSON (" in notice


# --------------------------------------------------------------------------- data files

SINGLE = [TensorSpec.from_dims("x", [-1, 3], "float32")]
NOT_NPZ = (
    "d.npz: write this file with np.savez; it is not a NumPy .npz archive (it has no NumPy "
    "or zip header, so it may be text or a pickle, and pickles are never loaded)"
)


@pytest.mark.parametrize(
    "content", [b"x,y,z\n1,2,3\n", pickle.dumps([1, 2, 3])], ids=["text", "pickle"]
)
def test_npz_that_is_not_numpy_is_called_what_it_is(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        load_npz(path, SINGLE)
    assert error.value.message == NOT_NPZ


def test_npy_that_is_not_numpy_is_called_what_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    (folder / "a.npy").write_text("0.5 0.25 1.0\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_directory(folder, SINGLE, workspace=tmp_path)
    assert "a.npy: write this file with np.save; it is not a NumPy .npy file" in error.value.message
    assert "unpickling" not in error.value.message


def test_truncated_npy_is_called_unreadable_not_pickled(tmp_path: Path) -> None:
    folder = tmp_path / "samples"
    folder.mkdir()
    np.save(folder / "a.npy", np.ones((4, 3), np.float32))
    whole = (folder / "a.npy").read_bytes()
    (folder / "a.npy").write_bytes(whole[:-8])
    with pytest.raises(DataError) as error:
        load_directory(folder, SINGLE, workspace=tmp_path)
    assert error.value.message.startswith("a.npy: not a readable .npy file (")
    assert "unpickling" not in error.value.message


def test_object_arrays_are_still_refused_as_needing_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match=r"d\.npz: cannot read without unpickling"):
        load_npz(path, SINGLE)


# --------------------------------------------------------------------------- run messages

RUN_POLICY = "version: 1\nmodels:\n  - {name: m, source: m.tflite}\n"


def _stopped_run(status: str, phase: str | None, sample: int | None = None) -> RuntimeRun:
    return RuntimeRun(
        runtime="ai-edge-litert",
        runtime_version="2.3.0",
        status=status,  # type: ignore[arg-type]
        phase=phase,
        sample=sample,
        message="the interpreter exited without writing a result during start-up",
    )


@pytest.mark.parametrize(
    ("status", "phase", "sample", "stage"),
    [
        ("timeout", None, None, " during start-up"),
        ("crash", None, None, " during start-up"),
        ("error", None, None, ""),
        ("timeout", "invoke", 3, " in invoke (sample 3)"),
        ("error", None, 2, " (sample 2)"),
    ],
)
def test_run_messages_never_say_none(
    tmp_path: Path, status: str, phase: str | None, sample: int | None, stage: str
) -> None:
    (tmp_path / POLICY).write_text(RUN_POLICY, encoding="utf-8")
    config = resolve_model(load_policy(tmp_path / POLICY, tmp_path), 0)
    variant = VariantReport(name="tflite", quantization="none", io="float32", status="converted")
    [finding] = check_run(config, variant, _stopped_run(status, phase, sample))
    assert "None" not in finding.message
    head = "m/tflite on ai-edge-litert: "
    expected = {
        "timeout": (
            f"{head}raise limits.interpreter_timeout_s (300 s, the default) if the model is "
            f"just slow on this runtime: no result within 300 s{stage}"
        ),
        "crash": f"{head}the interpreter crashed with a non-zero exit{stage}",
    }
    if status in expected:
        assert finding.message == expected[status]
    else:
        assert finding.message.endswith(stage)


# --------------------------------------------------------------------------- model files

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 11563\n"
)
KERAS_POLICY = (
    "version: 1\nmodels:\n"
    "  - {name: cut, source: models/cut.keras}\n"
    "  - {name: pointer, source: models/pointer.keras}\n"
)


@pytest.mark.slow
def test_broken_keras_file_is_named_for_what_is_wrong(tmp_path: Path) -> None:
    import keras

    models = tmp_path / "models"
    models.mkdir()
    inputs = keras.Input((4,), name="x")
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(models / "whole.keras")
    whole = (models / "whole.keras").read_bytes()
    (models / "cut.keras").write_bytes(whole[: len(whole) // 2])
    (models / "pointer.keras").write_text(LFS_POINTER, encoding="utf-8")
    (tmp_path / POLICY).write_text(KERAS_POLICY, encoding="utf-8")
    run = run_gate(tmp_path, "--quiet")
    assert run.returncode == 1, run.stderr
    assert run.report is not None
    messages = {f["model"]: f for f in run.report["findings"]}
    cut, pointer = messages["cut"], messages["pointer"]
    assert (cut["rule"], cut["location"]["line"]) == ("model-load-failed", 3)
    assert cut["message"] == (
        "cut: cannot load models/cut.keras: not a valid .keras archive (truncated or "
        "corrupted): File is not a zip file; save the model again with model.save() and "
        "commit the whole file"
    )
    assert (pointer["rule"], pointer["location"]["line"]) == ("model-load-failed", 4)
    assert pointer["message"] == (
        "pointer: cannot load models/pointer.keras: a Git LFS pointer, not the model: fetch "
        "the LFS files before the gate runs (actions/checkout with `lfs: true`, or "
        "`git lfs pull`)"
    )
    assert "not found" not in run.stdout + run.stderr

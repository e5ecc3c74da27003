"""Custom ops through the real CLI: declared ops are unverifiable, registerers verify them.

The kernel is real: `tests/support/custom_op_kernel/gate_erf.cc` ("Erf", the custom op the
converter emits for `tf.math.erf` with `allow_custom_ops`), compiled here with g++
and linked against TensorFlow's `libtensorflow_cc.so.2`, then registered in the
installed ai-edge-litert by `InterpreterWithCustomOps`, either by its C symbol
(the library loaded from `custom_op_libraries`) or through a Python function in
the workspace that receives the op resolver's address.
"""

from __future__ import annotations

import importlib.util
import shutil
import struct
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from tests.support.harness import SUPPORT, GateRun, run_gate
from tests.support.tflite_builder import FILE_IDENTIFIER, build_model, custom

pytestmark = pytest.mark.slow  # a C++ kernel is compiled and the gate runs as a process

KERNEL_SOURCE = SUPPORT / "custom_op_kernel" / "gate_erf.cc"
SYMBOL = "GateRegisterErf"

REGISTRAR = textwrap.dedent(
    """\
    import ctypes
    from pathlib import Path

    _library = ctypes.CDLL(str(Path(__file__).parent / "build" / "libgate_erf.so"))


    def register(resolver_address):
        _library.GateRegisterErf(ctypes.c_void_p(resolver_address))
    """
)

MODELS = textwrap.dedent(
    """\
    import tensorflow as tf


    def erf():
        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32, name="x")])
        def serve(x):
            return {"y": tf.math.erf(x * 2.0)}

        return serve
    """
)

SYMBOL_RUNTIME = (
    f"{{requirement: ai-edge-litert, custom_op_registerers: [{SYMBOL}], "
    "custom_op_libraries: [build/libgate_erf.so]}"
)
PYTHON_RUNTIME = "{requirement: ai-edge-litert, custom_op_registerers: ['registrar:register']}"


def _compile(target: Path) -> Path:
    """The kernel library; a missing compiler is a failure with the fix, never a skip."""
    compiler = shutil.which("g++")
    assert compiler, "these tests compile a TFLite kernel: install g++ (apt-get install g++)"
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.submodule_search_locations
    tensorflow = Path(next(iter(spec.submodule_search_locations)))
    assert (tensorflow / "libtensorflow_cc.so.2").exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-O1",
            "-o",
            str(target),
            str(KERNEL_SOURCE),
            f"-L{tensorflow}",
            "-l:libtensorflow_cc.so.2",
            f"-Wl,-rpath,{tensorflow}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _compile(tmp_path_factory.mktemp("kernel") / "libgate_erf.so")


def _workspace(root: Path, library: Path, policy: str) -> Path:
    (root / "build").mkdir(parents=True)
    shutil.copyfile(library, root / "build" / "libgate_erf.so")
    (root / "registrar.py").write_text(REGISTRAR)
    (root / "models.py").write_text(MODELS)
    (root / "erf.tflite").write_bytes(build_model([custom("Erf")]))
    (root / "tflite-gate.yml").write_text(textwrap.dedent(policy))
    return root


def _line(policy: str, needle: str) -> int:
    lines = textwrap.dedent(policy).splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def _runs(run: GateRun, model: str) -> dict[str, dict[str, Any]]:
    [variant] = run.model(model)["variants"]
    return {r["runtime"]: r for r in variant["runs"]}


# --------------------------------------------------------------------------- .tflite sources

DECLARED = f"""\
    version: 1
    models:
      - name: declared
        source: erf.tflite
        ops:
          custom: [Erf]
      - name: registered
        source: erf.tflite
        ops: {{custom: [Erf]}}
        runtimes:
          - {SYMBOL_RUNTIME}
          - {PYTHON_RUNTIME}
      - name: reference-without-kernel
        source: erf.tflite
        reference: erf.tflite
        ops: {{custom: [Erf]}}
      - name: reference-with-kernel
        source: erf.tflite
        reference: erf.tflite
        ops: {{custom: [Erf]}}
        max_divergence: {{max_abs: 0.0}}
        runtimes: [{SYMBOL_RUNTIME}]
    """


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory, library: Path) -> GateRun:
    return run_gate(_workspace(tmp_path_factory.mktemp("declared"), library, DECLARED))


def test_declared_custom_op_without_kernel_is_unverifiable_and_passes(declared: GateRun) -> None:
    assert declared.returncode == 0, declared.stdout[-3000:]
    run = _runs(declared, "declared")["ai-edge-litert"]
    assert (run["status"], run["unresolved_custom_ops"]) == ("unverifiable", ["Erf"])
    assert run["reproducer"] is None
    [notice] = declared.findings(model="declared")
    assert (notice["rule"], notice["severity"], notice["runtime"]) == (
        "custom-op",
        "notice",
        "ai-edge-litert",
    )
    assert notice["location"]["line"] == _line(DECLARED, "custom: [Erf]")
    assert (
        "no kernel for custom op Erf (declared in ops.custom); numerics not verified"
        in (notice["message"])
    )
    assert "custom_op_registerers" in notice["message"]


def test_a_reference_with_declared_custom_ops_is_run_with_the_first_runtime(
    declared: GateRun,
) -> None:
    """No kernel for the reference's declared op: a notice; with the kernel: compared."""
    notices = declared.findings(model="reference-without-kernel")
    assert {(f["rule"], f["severity"]) for f in notices} == {
        ("threshold-not-applied", "notice"),
        ("custom-op", "notice"),
    }
    [reference] = [f for f in notices if f["rule"] == "threshold-not-applied"]
    assert "not executable on ai-edge-litert" in reference["message"]
    assert reference["location"]["line"] == _line(DECLARED, "reference: erf.tflite")
    compared = _runs(declared, "reference-with-kernel")[f"ai-edge-litert + {SYMBOL}"]
    assert compared["status"] == "passed", compared
    assert compared["metrics"][0]["max_abs"] == 0.0
    assert declared.findings(model="reference-with-kernel") == []


def test_registered_kernel_runs_by_symbol_and_by_python_function(declared: GateRun) -> None:
    runs = _runs(declared, "registered")
    assert sorted(runs) == [f"ai-edge-litert + {SYMBOL}", "ai-edge-litert + registrar:register"]
    # No reference: the first runtime's outputs are the second's (numerics against the
    # source model: the converted-model test).
    first, second = runs[f"ai-edge-litert + {SYMBOL}"], runs["ai-edge-litert + registrar:register"]
    assert (first["status"], second["status"]) == ("ran", "passed")
    assert second["compared_with"] == f"ai-edge-litert + {SYMBOL} {first['runtime_version']}"
    for name, run in runs.items():
        assert run["samples"] == 16
        assert run["custom_ops_executed"] == ["Erf"]
        assert run["custom_op_registerers"] == [name.split(" + ")[1]]
    assert declared.findings(model="registered") == []
    assert f"custom ops Erf ran, with the policy's registerers {SYMBOL}" in declared.stdout


UNDECLARED = """\
    version: 1
    models:
      - name: undeclared
        source: erf.tflite
    """


def test_undeclared_custom_op_fails_without_blaming_the_runtime_version(
    tmp_path: Path, library: Path
) -> None:
    run = run_gate(_workspace(tmp_path, library, UNDECLARED))
    assert run.returncode == 1
    assert _runs(run, "undeclared")["ai-edge-litert"]["status"] == "error"
    [static] = run.findings(rule="custom-op")
    assert (static["severity"], static["message"]) == (
        "error",
        "undeclared/tflite: custom op Erf is not listed in ops.custom",
    )
    [error] = run.findings(rule="interpreter-error")
    assert error["message"].startswith(
        "undeclared/tflite on ai-edge-litert: no kernel for custom op Erf, which ops.custom "
        "does not declare (register it, or replace it): Encountered unresolved custom op: Erf."
    )
    assert "older" not in error["message"]
    assert 'unresolved custom op" means no kernel is registered' in run.stdout


BROKEN = """\
    version: 1
    models:
      - name: no-symbol
        source: erf.tflite
        ops: {custom: [Erf]}
        runtimes: [{requirement: ai-edge-litert, custom_op_registerers: [NoSuchRegisterer]}]
      - name: no-library
        source: erf.tflite
        ops: {custom: [Erf]}
        runtimes:
          - {requirement: ai-edge-litert, custom_op_registerers: [GateRegisterErf],
             custom_op_libraries: [build/missing.so]}
    """


def test_registerer_set_up_mistakes_are_unavailable_runtimes(tmp_path: Path, library: Path) -> None:
    run = run_gate(_workspace(tmp_path, library, BROKEN))
    assert run.returncode == 1
    [symbol] = run.findings(rule="runtime-unavailable", model="no-symbol")
    assert "Looking up symbol 'NoSuchRegisterer' failed" in symbol["message"]
    assert "load the library that defines it with custom_op_libraries" in symbol["message"]
    assert symbol["location"]["line"] == _line(BROKEN, "NoSuchRegisterer")
    [missing] = run.findings(rule="runtime-unavailable", model="no-library")
    assert "custom-op library" in missing["message"]
    assert "build/missing.so does not exist; build it before the gate runs" in missing["message"]
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "{requirement: ai-edge-litert, custom_op_registerers: ['not a name']}",
            "'not a name' is not a custom-op registerer",
        ),
        (
            "{requirement: ai-edge-litert, custom_op_libraries: [build/libgate_erf.so]}",
            "custom_op_libraries are only loaded for custom_op_registerers",
        ),
        (
            "{requirement: ai-edge-litert, custom_op_registerers: [R], "
            "custom_op_libraries: [../outside.so]}",
            "is outside the workspace",
        ),
    ],
)
def test_registerer_keys_are_validated(
    tmp_path: Path, library: Path, entry: str, expected: str
) -> None:
    policy = f"""\
        version: 1
        models:
          - name: m
            source: erf.tflite
            runtimes: [{entry}]
        """
    run = run_gate(_workspace(tmp_path, library, policy))
    assert run.returncode == 2
    assert expected in run.stderr
    assert f"tflite-gate.yml:{_line(policy, 'runtimes:')}:" in run.stderr


# --------------------------------------------------------------------------- resolved by LiteRT

TRANSPOSE_CONV = "Convolution2DTransposeBias"


def _deconvolution_model() -> bytes:
    """MediaPipe's Convolution2DTransposeBias, which LiteRT's XNNPACK delegate implements.

    Input [1, 4, 4, 1], weights [2, 3, 3, 1] (OHWI) and bias [2] as constants,
    output [1, 4, 4, 2]; options as MediaPipe writes them (TfLiteTransposeConvParams:
    SAME padding, stride 1x1, no activation).
    """

    def tensor(name: str, shape: list[int], buffer: int) -> schema.TensorT:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, schema.TensorType.FLOAT32, buffer
        return t

    def buffer(values: np.ndarray[Any, Any] | None = None) -> schema.BufferT:
        b = schema.BufferT()
        if values is not None:
            b.data = np.frombuffer(values.astype(np.float32).tobytes(), np.uint8)
        return b

    rng = np.random.default_rng(0)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = TRANSPOSE_CONV, 1
    operator = schema.OperatorT()
    operator.opcodeIndex, operator.inputs, operator.outputs = 0, [0, 1, 2], [3]
    operator.customOptions = np.frombuffer(struct.pack("<iiii", 1, 1, 1, 0), np.uint8)
    subgraph = schema.SubGraphT()
    subgraph.name, subgraph.inputs, subgraph.outputs = "main", [0], [3]
    subgraph.operators = [operator]
    subgraph.tensors = [
        tensor("x", [1, 4, 4, 1], 1),
        tensor("weights", [2, 3, 3, 1], 2),
        tensor("bias", [2], 3),
        tensor("y", [1, 4, 4, 2], 4),
    ]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [subgraph]
    weights, bias = rng.uniform(-1, 1, (2, 3, 3, 1)), np.array([0.5, -0.25])
    model.buffers = [buffer(), buffer(), buffer(weights), buffer(bias), buffer()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


RESOLVED = f"""\
    version: 1
    models:
      - name: mediapipe
        source: deconvolution.tflite
        ops: {{custom: [{TRANSPOSE_CONV}]}}
    """


def test_custom_op_the_runtime_implements_is_recorded_as_resolved_by_it(
    tmp_path: Path, library: Path
) -> None:
    workspace = _workspace(tmp_path, library, RESOLVED)
    (workspace / "deconvolution.tflite").write_bytes(_deconvolution_model())
    run = run_gate(workspace)
    assert run.returncode == 0, run.stdout[-3000:]
    litert = _runs(run, "mediapipe")["ai-edge-litert"]
    assert litert["status"] == "ran"  # executed; no reference to compare with
    assert litert["custom_ops_executed"] == [TRANSPOSE_CONV]
    assert litert["custom_op_registerers"] == []
    assert f"custom ops {TRANSPOSE_CONV} ran, resolved by the runtime itself" in run.stdout
    assert run.findings() == []


# --------------------------------------------------------------------------- numerics

CONVERTED = f"""\
    version: 1
    models:
      - name: erf
        source: models:erf
        ops: {{custom: [Erf]}}
        max_divergence: {{max_abs: 1.0e-5}}
        runtimes:
          - ai-edge-litert
          - {SYMBOL_RUNTIME}
    """


def test_registered_kernel_is_compared_with_the_source_model(tmp_path: Path, library: Path) -> None:
    run = run_gate(_workspace(tmp_path, library, CONVERTED))
    assert run.returncode == 0, run.stdout[-3000:]
    runs = _runs(run, "erf")
    plain, registered = runs["ai-edge-litert"], runs[f"ai-edge-litert + {SYMBOL}"]
    assert plain["status"] == "unverifiable"
    assert registered["status"] == "passed"
    [metrics] = registered["metrics"]
    assert metrics["samples"] == 16
    assert metrics["max_abs"] < 1e-5
    assert metrics["cosine"] > 0.99999
    assert registered["custom_ops_executed"] == ["Erf"]
    [notice] = run.findings()
    assert (notice["rule"], notice["runtime"]) == ("custom-op", "ai-edge-litert")

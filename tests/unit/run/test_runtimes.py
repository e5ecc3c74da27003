"""Extra runtimes in cached virtual environments: naming, reuse, failures, the real 2.14.

The fast tests need no network. The slow ones create real virtual environments and
run pip against the package index (a local path package, an unresolvable
requirement, a package that does not import, and `tflite-runtime==2.14.0`).
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tflite_gate.policy.schema import DEFAULT_RUNTIME
from tflite_gate.run.interpreter import run_interpreter
from tflite_gate.run.runtimes import (
    _SMOKE_MODEL_B64,
    RuntimeSpec,
    RuntimeUnavailable,
    _environment_key,
    default_cache_dir,
    interpreter_module_for,
    prepare_runtime,
)

LITERT = "ai_edge_litert.interpreter"
TFLITE_RUNTIME = "tflite_runtime.interpreter"
TENSORFLOW = "tensorflow.lite.python.interpreter"

# What the runtime check needs from a module: `Interpreter(model_content=...)`,
# `allocate_tensors()` and `invoke()`.
FAKE_INTERPRETER = """
class Interpreter:
    def __init__(self, model_path=None, model_content=None, **kwargs):
        self.model = model_content

    def allocate_tensors(self):
        pass

    def invoke(self):
        pass
"""


# --- interpreter_module_for ------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "module"),
    [
        (None, LITERT),
        ("ai-edge-litert", LITERT),
        ("ai_edge_litert>=1.2", LITERT),
        ("AI-Edge-LiteRT==2.3.0", LITERT),
        ("ai-edge-litert-nightly", LITERT),
        ("tflite-runtime==2.14.0", TFLITE_RUNTIME),
        ("tflite_runtime", TFLITE_RUNTIME),
        ("tflite-runtime[extra1,extra2] >=2.13, <2.15", TFLITE_RUNTIME),
        ("tflite-runtime==2.14.0; python_version < '3.12'", TFLITE_RUNTIME),
        ("tflite-runtime @ https://example.invalid/tflite_runtime-2.14.0.whl", TFLITE_RUNTIME),
        ("tensorflow", TENSORFLOW),
        ("tensorflow[and-cuda]>=2.16", TENSORFLOW),
        ("tensorflow-cpu==2.16.1", TENSORFLOW),
        ("tf-nightly", TENSORFLOW),
    ],
)
def test_interpreter_module_for_known_distributions(requirement: str | None, module: str) -> None:
    assert interpreter_module_for(requirement) == module


def test_default_runtime_is_the_litert_distribution() -> None:
    assert interpreter_module_for(DEFAULT_RUNTIME) == LITERT


def test_unknown_distribution_asks_for_module() -> None:
    with pytest.raises(RuntimeUnavailable) as caught:
        interpreter_module_for("onnxruntime==1.17")
    message = str(caught.value)
    assert "'onnxruntime'" in message
    assert "set `module`" in message
    assert "tflite-runtime" in message  # lists what it does know


@pytest.mark.parametrize(
    "requirement",
    ["./vendor/fakert", "/opt/runtimes/fakert", "dist/fakert-0.1.0-py3-none-any.whl"],
)
def test_local_path_without_module_asks_for_module(requirement: str) -> None:
    with pytest.raises(RuntimeUnavailable, match=r"set `module`"):
        interpreter_module_for(requirement)


def test_url_without_module_asks_for_module() -> None:
    with pytest.raises(RuntimeUnavailable, match=r"set `module`"):
        interpreter_module_for("https://example.invalid/fakert-0.1.0.tar.gz")


# --- prepare_runtime without installing ------------------------------------


def test_unknown_distribution_fails_before_touching_the_cache(tmp_path: Path) -> None:
    with pytest.raises(RuntimeUnavailable, match=r"set `module`"):
        prepare_runtime(RuntimeSpec("onnx", "onnxruntime"), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("requirement", "extra"),
    [
        ("--index-url=https://example.invalid/simple", ()),
        ("tflite-runtime==2.14.0", ("-e", ".")),
        ("tflite-runtime==2.14.0", ("  ",)),
    ],
)
def test_pip_options_are_not_requirements(
    tmp_path: Path, requirement: str, extra: tuple[str, ...]
) -> None:
    spec = RuntimeSpec("x", requirement, extra, module="x.interpreter")
    with pytest.raises(RuntimeUnavailable, match="is not a requirement"):
        prepare_runtime(spec, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_missing_local_path_is_reported(tmp_path: Path) -> None:
    spec = RuntimeSpec("fakert", str(tmp_path / "nowhere"), module="fakert.interpreter")
    with pytest.raises(RuntimeUnavailable, match="no such file or directory"):
        prepare_runtime(spec, cache_dir=tmp_path / "cache")


def test_environment_key_ignores_extra_order_and_sees_everything_else() -> None:
    key = _environment_key("tflite-runtime==2.14.0", ("numpy<2", "six"), TFLITE_RUNTIME)
    assert key == _environment_key("tflite-runtime==2.14.0", ("six", "numpy<2"), TFLITE_RUNTIME)
    assert key != _environment_key("tflite-runtime==2.14.0", ("numpy<2",), TFLITE_RUNTIME)
    assert key != _environment_key("tflite-runtime==2.13.0", ("numpy<2", "six"), TFLITE_RUNTIME)
    assert len(key) == 16


def test_default_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("TFLITE_GATE_CACHE", raising=False)
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "tflite-gate"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "tflite-gate"
    monkeypatch.setenv("TFLITE_GATE_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"


@pytest.mark.slow
def test_installed_runtime_is_the_gates_python_and_is_not_imported(tmp_path: Path) -> None:
    """Run in a fresh process: this test process may have imported the runtime already."""
    code = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from tflite_gate.run.runtimes import RuntimeSpec, prepare_runtime
        env = prepare_runtime(RuntimeSpec("ai-edge-litert", None), cache_dir=Path(sys.argv[1]))
        print(json.dumps({
            "python": env.python, "module": env.module, "version": env.version,
            "imported": sorted(m for m in sys.modules if m.startswith(("ai_edge_litert", "tensorflow"))),
        }))
        """
    )
    cache = tmp_path / "cache"
    completed = subprocess.run(
        [sys.executable, "-c", code, str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(completed.stdout)
    assert result == {
        "python": sys.executable,
        "module": LITERT,
        "version": importlib.metadata.version("ai-edge-litert"),
        "imported": [],
    }
    assert not cache.exists()  # nothing to build for the installed runtime


def test_installed_runtime_that_is_missing_is_unavailable(tmp_path: Path) -> None:
    spec = RuntimeSpec("nothing", None, module="tflite_gate_no_such_module.interpreter")
    with pytest.raises(RuntimeUnavailable, match="not installed next to the gate"):
        prepare_runtime(spec, cache_dir=tmp_path)


# --- real installs -----------------------------------------------------------


def _write_package(root: Path, name: str, version: str, interpreter_source: str) -> Path:
    """A minimal installable distribution `name` with `name/interpreter.py`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "{version}"

            [tool.setuptools]
            packages = ["{name}"]
            """
        )
    )
    package = root / name
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "interpreter.py").write_text(interpreter_source)
    return root


def _fakert_spec(source: Path) -> RuntimeSpec:
    return RuntimeSpec("fakert", str(source), module="fakert.interpreter")


def _marker(python: str) -> Path:
    return Path(python).parent.parent / "ready.json"


def _run(python: str, code: str) -> str:
    completed = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return completed.stdout.strip()


def _leftovers(cache: Path) -> list[str]:
    """Directories (venvs) and markers in the cache; logs and lock files may stay."""
    runtimes = cache / "runtimes"
    venvs = [p.name for p in runtimes.iterdir() if p.is_dir()] if runtimes.exists() else []
    return venvs + [str(p) for p in cache.rglob("ready.json")]


@pytest.mark.slow
def test_local_package_installs_into_its_own_venv_and_is_reused(tmp_path: Path) -> None:
    source = _write_package(tmp_path / "src", "fakert", "0.1.0", FAKE_INTERPRETER)
    cache = tmp_path / "cache"

    env = prepare_runtime(_fakert_spec(source), cache_dir=cache)

    assert env.version == "0.1.0"
    assert env.module == "fakert.interpreter"
    assert Path(env.python).is_relative_to(cache / "runtimes")
    prefix = _run(env.python, "import sys, fakert.interpreter; print(sys.prefix)")
    assert Path(prefix).is_relative_to(cache / "runtimes")
    assert importlib.util.find_spec("fakert") is None  # not in the gate's environment
    marker = json.loads(_marker(env.python).read_text())
    assert marker["version"] == "0.1.0"
    assert marker["spec"]["requirement"] == str(source)
    assert marker["created"]
    stamp = _marker(env.python).stat().st_mtime_ns

    again = prepare_runtime(_fakert_spec(source), cache_dir=cache)

    assert env.cached is None  # built here
    assert again == dataclasses.replace(env, cached=_marker(env.python).parent)
    assert _marker(env.python).stat().st_mtime_ns == stamp  # reused, not rebuilt


@pytest.mark.slow
def test_a_relative_cache_dir_gives_a_python_that_starts_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--cache-dir cache` (or TFLITE_GATE_CACHE=cache): interpreter workers start in their
    scratch directory, where the relative path to the venv's python names nothing."""
    source = _write_package(tmp_path / "src", "fakert", "0.1.0", FAKE_INTERPRETER)
    monkeypatch.chdir(tmp_path)

    env = prepare_runtime(_fakert_spec(source), cache_dir=Path("cache"))

    model = tmp_path / "relu.tflite"
    model.write_bytes(base64.b64decode(_SMOKE_MODEL_B64))
    result = run_interpreter(
        model,
        {"x": np.zeros((1, 1, 4), np.float32)},
        python=env.python,
        module=env.module,
        scratch=tmp_path / "scratch",
        reproducer_dir=tmp_path / "repro",
        timeout_s=60,
        memory_mb=None,
    )
    assert "cannot start" not in (result.message or ""), result.message
    # the worker ran in the venv: the fake Interpreter has no get_input_details
    assert "get_input_details" in (result.message or ""), result.message
    assert Path(env.python).is_absolute()


@pytest.mark.slow
def test_edited_local_package_is_reinstalled(tmp_path: Path) -> None:
    source = _write_package(tmp_path / "src", "fakert", "0.1.0", FAKE_INTERPRETER)
    cache = tmp_path / "cache"
    first = prepare_runtime(_fakert_spec(source), cache_dir=cache)

    _write_package(source, "fakert", "0.2.0", FAKE_INTERPRETER)
    second = prepare_runtime(_fakert_spec(source), cache_dir=cache)

    assert (first.version, second.version) == ("0.1.0", "0.2.0")
    assert second.python == first.python  # rebuilt in place, not a second venv


@pytest.mark.slow
def test_interrupted_build_is_redone_not_trusted(tmp_path: Path) -> None:
    source = _write_package(tmp_path / "src", "fakert", "0.1.0", FAKE_INTERPRETER)
    cache = tmp_path / "cache"
    env = prepare_runtime(_fakert_spec(source), cache_dir=cache)
    # What a killed gate leaves: a venv without its marker, here with pip gone too.
    _marker(env.python).unlink()
    for pip in (Path(env.python).parent.parent / "lib").glob("python3*/site-packages/pip"):
        pip.rename(pip.with_name("pip-broken"))

    again = prepare_runtime(_fakert_spec(source), cache_dir=cache)

    assert again.version == "0.1.0"
    assert _marker(again.python).exists()
    assert _run(again.python, "import pip, fakert.interpreter; print('ok')") == "ok"


@pytest.mark.slow
def test_concurrent_gates_build_once(tmp_path: Path) -> None:
    source = _write_package(tmp_path / "src", "fakert", "0.1.0", FAKE_INTERPRETER)
    cache = tmp_path / "cache"
    code = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from tflite_gate.run.runtimes import RuntimeSpec, prepare_runtime
        spec = RuntimeSpec("fakert", sys.argv[1], module="fakert.interpreter")
        env = prepare_runtime(spec, cache_dir=Path(sys.argv[2]))
        marker = Path(env.python).parent.parent / "ready.json"
        print(json.dumps([env.python, env.version, marker.stat().st_mtime_ns]))
        """
    )
    gates = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(source), str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [gate.communicate(timeout=600) for gate in gates]

    assert [gate.returncode for gate in gates] == [0, 0], results
    first, second = (json.loads(stdout) for stdout, _ in results)
    assert first == second  # same venv, same marker: the second waited and reused
    assert first[1] == "0.1.0"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("requirement", "module"),
    [
        ("tflite-gate-no-such-package-xyz==1.0", "nosuch.interpreter"),
        ("tflite-runtime==0.0.0", None),
    ],
)
def test_unresolvable_requirement_leaves_nothing_behind(
    tmp_path: Path, requirement: str, module: str | None
) -> None:
    cache = tmp_path / "cache"
    spec = RuntimeSpec("missing", requirement, module=module)

    with pytest.raises(RuntimeUnavailable) as caught:
        prepare_runtime(spec, cache_dir=cache)

    message = str(caught.value)
    assert message.startswith(
        f"ERROR: Could not find a version that satisfies the requirement {requirement}"
    )
    assert f"No matching distribution found for {requirement}" in message
    assert "pip install" in message
    assert caught.value.log_path is not None
    assert caught.value.log_path.exists()
    assert _leftovers(cache) == []


@pytest.mark.slow
def test_package_whose_module_does_not_import_is_unavailable(tmp_path: Path) -> None:
    broken = "raise ImportError('fakebroken needs libfakert.so.7, which is missing')\n"
    source = _write_package(tmp_path / "src", "fakebroken", "0.1.0", broken)
    cache = tmp_path / "cache"
    spec = RuntimeSpec("fakebroken", str(source), module="fakebroken.interpreter")

    with pytest.raises(RuntimeUnavailable) as caught:
        prepare_runtime(spec, cache_dir=cache)

    message = str(caught.value)
    assert "import fakebroken.interpreter" in message
    # led by the exception's line, not the traceback's head
    assert message.startswith("ImportError: fakebroken needs libfakert.so.7, which is missing")
    assert _leftovers(cache) == []


@pytest.mark.slow
def test_module_without_interpreter_is_unavailable(tmp_path: Path) -> None:
    source = _write_package(tmp_path / "src", "fakeempty", "0.1.0", "VERSION = 1\n")
    spec = RuntimeSpec("fakeempty", str(source), module="fakeempty.interpreter")

    with pytest.raises(RuntimeUnavailable, match="has no attribute 'Interpreter'"):
        prepare_runtime(spec, cache_dir=tmp_path / "cache")


@pytest.fixture(scope="module")
def runtime_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime-cache")


@pytest.mark.slow
def test_tflite_runtime_2_14_with_numpy_1(runtime_cache: Path) -> None:
    spec = RuntimeSpec("tflite-runtime==2.14.0", "tflite-runtime==2.14.0", ("numpy<2",))

    env = prepare_runtime(spec, cache_dir=runtime_cache)

    assert env.version == "2.14.0"
    assert env.module == TFLITE_RUNTIME
    code = "import numpy, tflite_runtime.interpreter as t; print(t.Interpreter.__name__, numpy.__version__)"
    name, numpy_version = _run(env.python, code).split()
    assert name == "Interpreter"
    assert numpy_version.startswith("1.")


@pytest.mark.slow
def test_tflite_runtime_2_14_on_numpy_2_says_to_pin_numpy(runtime_cache: Path) -> None:
    """It imports fine under numpy 2 and fails only when it creates an interpreter."""
    spec = RuntimeSpec("tflite-runtime==2.14.0", "tflite-runtime==2.14.0")

    with pytest.raises(RuntimeUnavailable) as caught:
        prepare_runtime(spec, cache_dir=runtime_cache)

    message = str(caught.value)
    assert "numpy.core.multiarray failed to import" in message
    assert 'with: ["numpy<2"]' in message


@pytest.mark.slow
def test_runtime_without_a_numpy_dependency_gets_the_numpy_the_worker_needs(
    tmp_path: Path,
) -> None:
    """The fake package declares no dependency at all; the interpreter worker imports numpy."""
    source = _write_package(tmp_path / "src", "fakert", "0.1.0", FAKE_INTERPRETER)

    env = prepare_runtime(_fakert_spec(source), cache_dir=tmp_path / "cache")

    assert _run(env.python, "import numpy; print(numpy.__name__)") == "numpy"
    model = tmp_path / "relu.tflite"
    model.write_bytes(base64.b64decode(_SMOKE_MODEL_B64))
    result = run_interpreter(
        model,
        {"x": np.zeros((1, 1, 4), np.float32)},
        python=env.python,
        module=env.module,
        scratch=tmp_path / "scratch",
        reproducer_dir=tmp_path / "repro",
        timeout_s=60,
        memory_mb=None,
    )
    # past the worker's numpy import: the fake Interpreter has no get_input_details
    assert (result.status, result.phase) == ("error", "load"), result.message
    assert "get_input_details" in (result.message or "")

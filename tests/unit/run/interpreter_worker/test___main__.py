"""The worker run by path, `python path/to/interpreter_worker/ REQUEST`, under other
environments' Pythons: self-contained, and its own files never shadow the standard
library or site-packages of the Python that runs it."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tflite_gate.run.interpreter import WORKER_DIRECTORY
from tflite_gate.run.interpreter_worker import __main__ as entry

MODULES = sorted(WORKER_DIRECTORY.glob("*.py"))


def _imports(path: Path) -> tuple[set[str], list[int]]:
    """Top-level names a module imports absolutely, and the levels of its relative imports."""
    absolute: set[str] = set()
    levels: list[int] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                levels.append(node.level)
            elif node.module:
                absolute.add(node.module.split(".")[0])
    return absolute, levels


# --------------------------------------------------------------------------- self-containment


def test_the_worker_imports_only_stdlib_numpy_and_its_own_modules() -> None:
    """It runs by path under other environments' Pythons where tflite_gate is not installed."""
    assert len(MODULES) > 5
    for path in MODULES:
        absolute, levels = _imports(path)
        assert absolute - set(sys.stdlib_module_names) <= {"numpy"}, path.name
        assert all(level == 1 for level in levels), f"{path.name} reaches outside the worker"


def test_the_worker_parses_as_python_3_8_and_postpones_its_annotations() -> None:
    """Old runtimes' environments may run an older Python: `X | None` must stay a string."""
    for path in MODULES:
        source = path.read_text()
        ast.parse(source, feature_version=(3, 8))
        if path.name not in {"__init__.py", "__main__.py"}:
            assert "from __future__ import annotations" in source, path.name


def test_each_worker_module_stays_under_600_lines() -> None:
    for path in MODULES:
        assert len(path.read_text().splitlines()) <= 600, path.name


# --------------------------------------------------------------------------- the entry point


def test_the_entry_point_drops_its_own_directory_from_the_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = str(WORKER_DIRECTORY)
    monkeypatch.setattr(sys, "path", [here, "/elsewhere", here + "/.", *sys.path])
    assert entry.drop_own_directory() == here
    assert here not in sys.path and here + "/." not in sys.path
    assert "/elsewhere" in sys.path


@pytest.fixture
def forgets_the_worker_package() -> Iterator[None]:
    """The package `load_package` makes is this process's only for the test."""
    yield
    for name in [n for n in sys.modules if n.split(".")[0] == entry.PACKAGE]:
        del sys.modules[name]


@pytest.mark.usefixtures("forgets_the_worker_package")
def test_the_directory_loads_as_a_package_of_its_own_name(tmp_path: Path) -> None:
    """Its modules import each other through the package's path, wherever it was copied."""
    copy = tmp_path / "copied_worker"
    shutil.copytree(WORKER_DIRECTORY, copy, ignore=shutil.ignore_patterns("__pycache__"))
    entry.load_package(str(copy))
    main = importlib.import_module(entry.PACKAGE + ".main")
    assert Path(main.__file__ or "").parent == copy
    assert main.checked.__module__ == entry.PACKAGE + ".messages"  # a relative import
    assert list(sys.modules[entry.PACKAGE].__path__) == [str(copy)]


@pytest.mark.slow
def test_a_module_beside_the_worker_does_not_shadow_the_standard_library(
    tmp_path: Path, run_by_path: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """Run by path, the worker's directory comes first on sys.path: it must be gone before
    the worker imports `json` (here a file that would break every import of it)."""
    worker = tmp_path / "worker"
    shutil.copytree(WORKER_DIRECTORY, worker, ignore=shutil.ignore_patterns("__pycache__"))
    (worker / "json.py").write_text("raise ImportError('the worker imported its own json.py')\n")
    request = tmp_path / "request.json"
    request.write_text('{"model": "m"}')  # not a valid request: the worker says so, exit 2
    done = run_by_path(request, worker)
    assert done.returncode == 2, done.stderr
    assert "InterpreterRequest.module: required" in done.stderr

"""The user's own code, run from the workspace: imported, and traced back to its lines."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import tflite_gate
from tflite_gate.model.workspace_code import (
    describe_exception,
    exception_location,
    factory_files,
    import_function,
    layer_site,
    missing_module,
    module_files,
    workspace_frame,
)


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workspace code is imported with the workspace on `sys.path`: leave it as it was."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def test_the_innermost_workspace_frame_is_the_line_at_fault(tmp_path: Path) -> None:
    own = str(Path(tflite_gate.__file__).parent / "model" / "loader.py")
    frames = [
        (str(tmp_path / "factory.py"), 3),
        (str(tmp_path / "vendored" / "lib.py"), 40),
        ("/usr/lib/python3/site-packages/keras/layer.py", 7),
        (own, 12),
        ("<string>", 1),
    ]
    assert workspace_frame(frames, tmp_path) == ("vendored/lib.py", 40)
    assert workspace_frame(frames[2:], tmp_path) is None


def _raise_from(workspace: Path, module: str, source: str) -> BaseException:
    (workspace / f"{module}.py").write_text(textwrap.dedent(source))
    try:
        import_function(f"{module}:build", workspace)()
    except Exception as exc:  # the exception the user's code raised, with its traceback
        return exc
    raise AssertionError("the factory did not raise")


def test_a_factorys_own_line_wins_over_deeper_workspace_code(tmp_path: Path) -> None:
    (tmp_path / "vendored_lib.py").write_text("def load():\n    raise OSError('no file')\n")
    exc = _raise_from(
        tmp_path,
        "calls_vendored",
        """\
        import vendored_lib

        def build():
            return vendored_lib.load()
        """,
    )
    assert exception_location(exc, tmp_path) == ("vendored_lib.py", 2)
    own = module_files("calls_vendored", tmp_path)
    assert exception_location(exc, tmp_path, own_files=own) == ("calls_vendored.py", 4)
    assert describe_exception(exc) == "OSError: no file"


def test_the_missing_module_is_found_among_the_causes(tmp_path: Path) -> None:
    exc = _raise_from(
        tmp_path,
        "wraps_import",
        """\
        def build():
            try:
                import not_installed_anywhere
            except ImportError as error:
                raise RuntimeError("cannot build") from error
        """,
    )
    assert missing_module(exc) == "not_installed_anywhere"
    assert missing_module(ValueError("x")) is None


def test_a_missing_function_names_it(tmp_path: Path) -> None:
    (tmp_path / "without_build.py").write_text("value = 1\n")
    with pytest.raises(AttributeError, match="module 'without_build' has no function 'build'"):
        import_function("without_build:build", tmp_path)


def test_an_op_leads_back_to_the_line_that_made_its_layer() -> None:
    sites = {"gru": ("model.py", 12), "dense": ("model.py", 14)}
    assert layer_site(["model/gru_1/while/TensorArrayV2_1"], sites) == ("model.py", 12)
    assert layer_site(["model/dense/MatMul@__inference_serve_8"], sites) == ("model.py", 14)
    assert layer_site(["model/conv/Conv2D"], sites) is None


def test_an_empty_message_is_just_the_type() -> None:
    assert describe_exception(KeyError()) == "KeyError"
    assert describe_exception(ValueError("first\nsecond")) == "ValueError: first"


def test_the_files_an_import_opens_first_are_the_packages_and_the_module(tmp_path: Path) -> None:
    (tmp_path / "zoo" / "nets").mkdir(parents=True)
    for name in ("zoo/__init__.py", "zoo/nets/__init__.py", "zoo/nets/small.py"):
        (tmp_path / name).write_text("")
    assert factory_files("zoo.nets.small:build", tmp_path) == [
        (tmp_path / "zoo/__init__.py").resolve(),
        (tmp_path / "zoo/nets/__init__.py").resolve(),
        (tmp_path / "zoo/nets/small.py").resolve(),
    ]

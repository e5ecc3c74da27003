"""The runtime module a request names: imported, its custom ops resolved, its version.

Everything that goes wrong here is the runtime set-up's, not the model's, and must say
so (kind `import`). The runtimes are the real LiteRT one and small modules written to
disk, imported by name as the worker does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ai_edge_litert
import pytest
from ai_edge_litert.interpreter import Interpreter, InterpreterWithCustomOps

from tflite_gate.run.interpreter_worker.failures import PhaseError
from tflite_gate.run.interpreter_worker.messages import InterpreterRequest
from tflite_gate.run.interpreter_worker.runtime import Runtime, load_runtime

Request = Callable[..., InterpreterRequest]
NO_CUSTOM_OPS = "class Interpreter:\n    pass\n"


def _request(worker_request: Request, relu_model: Callable[..., Path], **fields: Any) -> Any:
    return worker_request(relu_model(), {}, **fields)


def _import_error(request: InterpreterRequest) -> PhaseError:
    with pytest.raises(PhaseError) as caught:
        load_runtime(request)
    assert (caught.value.phase, caught.value.sample, caught.value.kind) == (
        "import",
        None,
        "import",
    )
    return caught.value


def test_the_named_module_is_imported_with_its_interpreter(
    worker_request: Request, relu_model: Callable[..., Path]
) -> None:
    runtime = load_runtime(_request(worker_request, relu_model))
    assert (runtime.module_name, runtime.interpreter_class, runtime.registerers) == (
        "ai_edge_litert.interpreter",
        Interpreter,
        [],
    )
    interpreter = runtime.create(str(relu_model()), 2)
    assert isinstance(interpreter, Interpreter)


def test_a_module_that_does_not_import_is_the_set_ups_failure(
    worker_request: Request, relu_model: Callable[..., Path]
) -> None:
    error = _import_error(_request(worker_request, relu_model, module="no_such_runtime.lite"))
    assert error.message == "ModuleNotFoundError: No module named 'no_such_runtime'"


def test_a_module_without_an_interpreter_is_the_set_ups_failure(
    worker_request: Request, relu_model: Callable[..., Path]
) -> None:
    error = _import_error(_request(worker_request, relu_model, module="json"))
    assert error.message == "AttributeError: module 'json' has no attribute 'Interpreter'"


def test_a_custom_op_library_that_cannot_be_loaded_is_named(
    worker_request: Request, relu_model: Callable[..., Path], tmp_path: Path
) -> None:
    library = str(tmp_path / "libgate_ops.so")
    request = _request(worker_request, relu_model, custom_op_libraries=[library])
    assert _import_error(request).message.startswith(f"cannot load custom-op library {library}: ")


def test_a_python_registerer_is_found_on_the_workspace_path_after_site_packages(
    worker_request: Request,
    relu_model: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "gate_test_ops.py").write_text("def register(resolver):\n    pass\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "gate_test_ops", raising=False)
    request = _request(
        worker_request,
        relu_model,
        custom_op_registerers=["gate_test_ops:register", "GateBareSymbol"],
        pythonpath=[str(workspace)],
    )
    runtime = load_runtime(request)
    assert runtime.interpreter_class is InterpreterWithCustomOps
    assert runtime.registerers[0] is sys.modules["gate_test_ops"].register
    assert runtime.registerers[1] == "GateBareSymbol"
    assert sys.path[-1] == str(workspace)
    sys.modules.pop("gate_test_ops")


def test_a_registerer_that_cannot_be_imported_is_named(
    worker_request: Request, relu_model: Callable[..., Path]
) -> None:
    request = _request(worker_request, relu_model, custom_op_registerers=["nowhere_ops:register"])
    assert _import_error(request).message == (
        "custom-op registerer nowhere_ops:register: No module named 'nowhere_ops'"
    )


def test_a_runtime_that_cannot_take_custom_ops_says_which_can(
    worker_request: Request, relu_model: Callable[..., Path], runtime_module: Callable[..., str]
) -> None:
    module = runtime_module("plain_runtime", NO_CUSTOM_OPS)
    request = _request(worker_request, relu_model, module=module, custom_op_registerers=["Op"])
    message = _import_error(request).message
    assert message.startswith("plain_runtime has no InterpreterWithCustomOps")
    assert "use ai-edge-litert, tflite-runtime or tensorflow" in message


# --------------------------------------------------------------------------- creating


def _custom_ops_runtime(symbol: str) -> Runtime:
    module = sys.modules["ai_edge_litert.interpreter"]
    return Runtime("ai_edge_litert.interpreter", module, InterpreterWithCustomOps, [symbol])


def test_a_registerer_symbol_not_in_the_process_is_the_set_ups_failure(
    relu_model: Callable[..., Path],
) -> None:
    with pytest.raises(PhaseError) as caught:
        _custom_ops_runtime("GateNoSuchRegisterer").create(str(relu_model()), 1)
    assert (caught.value.phase, caught.value.kind) == ("load", "import")
    assert "Looking up symbol 'GateNoSuchRegisterer'" in caught.value.message
    assert caught.value.message.endswith(
        "; load the library that defines it with custom_op_libraries"
    )


def test_other_errors_in_creating_stay_the_models(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Could not open"):
        _custom_ops_runtime("GateNoSuchRegisterer").create(str(tmp_path / "missing.tflite"), 1)


# --------------------------------------------------------------------------- versions


def _runtime(name: str) -> Runtime:
    __import__(name)
    return Runtime(name, sys.modules[name], object, [])


def test_the_version_is_the_modules_or_its_packages() -> None:
    assert _runtime("ai_edge_litert.interpreter").version() == ai_edge_litert.__version__


def test_without_one_the_version_comes_from_the_distribution() -> None:
    from importlib import metadata

    runtime = _runtime("typing_extensions")  # has no __version__
    assert not hasattr(runtime.module, "__version__")
    assert runtime.version() == metadata.version("typing_extensions")


def test_a_runtime_of_no_distribution_has_no_version(runtime_module: Callable[..., str]) -> None:
    assert _runtime(runtime_module("loose_runtime", NO_CUSTOM_OPS)).version() is None

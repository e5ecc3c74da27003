"""The runtime module the request names: imported, with custom ops, and its version.

Any failure here is the runtime set-up's (a module that does not import, a
custom-op library or registerer that cannot be found), not the model's: it is
reported with the kind `import`.
"""

from __future__ import annotations

import ctypes
import importlib
import sys
from dataclasses import dataclass
from typing import Any

from .failures import PhaseError, error_message, exception_line
from .messages import InterpreterRequest


@dataclass
class Runtime:
    """An imported runtime module and how to create its interpreters."""

    module_name: str
    module: Any
    interpreter_class: Any
    registerers: list[Any]

    def create(self, model: str, threads: int) -> Any:
        """The interpreter; a registerer LiteRT cannot find is a set-up failure, not the model's."""
        if not self.registerers:
            return self.interpreter_class(model_path=model, num_threads=threads)
        try:
            return self.interpreter_class(
                model_path=model, num_threads=threads, custom_op_registerers=self.registerers
            )
        except ValueError as exc:
            message = error_message(exc)
            if "Looking up symbol" not in message:
                raise
            hint = "; load the library that defines it with custom_op_libraries"
            raise PhaseError("load", None, message + hint, "import") from exc

    def version(self) -> str | None:
        """The runtime package's version: its `__version__`, else its distribution's metadata."""
        top_name = self.module_name.split(".")[0]
        top = sys.modules.get(top_name)
        for candidate in (self.module, top):
            version = getattr(candidate, "__version__", None)
            if isinstance(version, str):
                return version
        try:
            from importlib import metadata

            # packages_distributions is Python 3.10+; older Pythons guess dist = package.
            mapping: dict[str, list[str]] = getattr(metadata, "packages_distributions", dict)()
            for dist in mapping.get(top_name, [top_name]):
                return str(metadata.version(dist))
        except Exception:
            return None
        return None


def load_runtime(request: InterpreterRequest) -> Runtime:
    """Import the request's module and resolve its custom-op registerers."""
    try:
        module = importlib.import_module(request.module)
        interpreter_class = module.Interpreter
    except Exception as exc:
        raise PhaseError("import", None, exception_line(exc), "import") from exc
    registerers = _custom_op_registerers(request)
    if registerers:
        interpreter_class = _with_custom_ops_class(module, request.module)
    return Runtime(request.module, module, interpreter_class, registerers)


def _custom_op_registerers(request: InterpreterRequest) -> list[Any]:
    """Load the custom-op libraries, then resolve each registerer to what LiteRT takes.

    A bare name is a C symbol LiteRT looks up in the process, so its library is loaded
    with RTLD_GLOBAL first; `package.module:function` is a Python callable that gets the
    op resolver's address.
    """
    for library in request.custom_op_libraries:
        try:
            ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise PhaseError(
                "import", None, f"cannot load custom-op library {library}: {exc}", "import"
            ) from exc
    resolved: list[Any] = []
    for name in request.custom_op_registerers:
        if ":" not in name:
            resolved.append(name)
            continue
        for entry in request.pythonpath:  # the workspace, after site-packages
            if entry not in sys.path:
                sys.path.append(entry)
        module_name, _, function = name.partition(":")
        try:
            resolved.append(getattr(importlib.import_module(module_name), function))
        except Exception as exc:
            message = f"custom-op registerer {name}: {error_message(exc)}"
            raise PhaseError("import", None, message, "import") from exc
    return resolved


def _with_custom_ops_class(module: Any, module_name: str) -> Any:
    interpreter_class = getattr(module, "InterpreterWithCustomOps", None)
    if interpreter_class is None:
        message = (
            f"{module_name} has no InterpreterWithCustomOps, so it cannot take "
            "custom_op_registerers; use ai-edge-litert, tflite-runtime or tensorflow"
        )
        raise PhaseError("import", None, message, "import")
    return interpreter_class

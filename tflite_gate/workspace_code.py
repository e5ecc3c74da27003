"""Running the user's own code (model factories, data generators) from the workspace.

Both kinds of `package.module:function` reference are imported with the workspace
root importable, and an exception they raise is traced back to the innermost line
of the user's code, so a finding can be annotated where the user must look.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

_OWN_PACKAGE = Path(__file__).resolve().parent


def workspace_frame(frames: list[tuple[str, int]], workspace: Path) -> tuple[str, int] | None:
    """The innermost frame in the user's code: inside the workspace, not a package.

    `frames` run from the outermost call to the innermost, as Python tracebacks and
    TF's op creation stacks do; the innermost workspace frame is the line at fault.
    """
    root = workspace.resolve()
    for filename, line in reversed(frames):
        if not filename or line <= 0 or not Path(filename).is_absolute():
            continue
        if "site-packages" in filename or "dist-packages" in filename:
            continue
        resolved = Path(filename).resolve()
        if resolved.is_relative_to(_OWN_PACKAGE):
            continue
        if resolved.is_relative_to(root):
            return resolved.relative_to(root).as_posix(), line
    return None


def exception_location(exc: BaseException, workspace: Path) -> tuple[str, int] | None:
    """Where in the workspace `exc` was raised, if it was raised by the user's code."""
    frames = [(f.filename, f.lineno or 0) for f in traceback.extract_tb(exc.__traceback__)]
    return workspace_frame(frames, workspace)


def describe_exception(exc: BaseException) -> str:
    """`Type: first line of the message`, for a one-line finding."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def import_function(reference: str, workspace: Path) -> Callable[..., Any]:
    """`package.module:function` from the workspace; raises what the import raises.

    A missing function raises AttributeError naming the module and the function.
    """
    module_name, _, function_name = reference.partition(":")
    root = str(workspace.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise AttributeError(f"module {module_name!r} has no function {function_name!r}")
    return cast(Callable[..., Any], function)

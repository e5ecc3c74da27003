"""Running the user's own code (model factories, data generators) from the workspace.

Both kinds of `package.module:function` reference are imported with the workspace
root importable, and an exception they raise is traced back to the innermost line
of the user's code, so a finding can be annotated where the user must look.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import re
import sys
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, cast

_OWN_PACKAGE = Path(__file__).resolve().parent.parent


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


def exception_location(
    exc: BaseException, workspace: Path, *, own_files: Collection[Path] = ()
) -> tuple[str, int] | None:
    """Where in the workspace `exc` was raised, if it was raised by the user's code.

    With `own_files` (a factory's module), their innermost line wins over deeper lines
    elsewhere in the workspace: a library vendored into the repository raised, but the
    line to look at is the factory's call into it.
    """
    frames = [(f.filename, f.lineno or 0) for f in traceback.extract_tb(exc.__traceback__)]
    own = {str(path.resolve()) for path in own_files}
    in_own = [(name, line) for name, line in frames if name and str(Path(name).resolve()) in own]
    return workspace_frame(in_own, workspace) or workspace_frame(frames, workspace)


def module_files(module_name: str, workspace: Path) -> list[Path]:
    """The files `package.module` can be in the workspace (without importing it)."""
    base = workspace / module_name.replace(".", "/")
    return [base.with_suffix(".py"), base / "__init__.py"]


def missing_module(exc: BaseException) -> str | None:
    """The module a `ModuleNotFoundError` in `exc` or its causes names, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ModuleNotFoundError) and current.name:
            return current.name
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


LayerSites = dict[str, tuple[str, int]]


@contextlib.contextmanager
def recording_layer_sites(workspace: Path) -> Iterator[LayerSites]:
    """While inside, every Keras layer created records the workspace line that created it.

    Converter errors about a Keras layer's ops carry the stack of the trace the gate
    ran (TensorFlow and Keras code only), not the factory's line that made the layer;
    the layer's name in the op's name leads back to that line (`layer_site`).
    """
    sites: LayerSites = {}
    patched: list[tuple[type[Any], Callable[..., None]]] = []
    for name in ("keras", "tf_keras"):
        layer_class = getattr(getattr(sys.modules.get(name), "layers", None), "Layer", None)
        if isinstance(layer_class, type) and "__init__" in vars(layer_class):
            original = vars(layer_class)["__init__"]
            type.__setattr__(layer_class, "__init__", _recording_init(original, sites, workspace))
            patched.append((layer_class, original))
    try:
        yield sites
    finally:
        for layer_class, original in patched:
            type.__setattr__(layer_class, "__init__", original)


def _recording_init(
    original: Callable[..., None], sites: LayerSites, workspace: Path
) -> Callable[..., None]:
    def init(layer: Any, *args: Any, **kwargs: Any) -> None:
        original(layer, *args, **kwargs)
        frames = [(f.filename, f.lineno or 0) for f in traceback.extract_stack()]
        site = workspace_frame(frames, workspace)
        name = getattr(layer, "name", None)
        if site is not None and isinstance(name, str):
            sites.setdefault(name, site)

    return init


def layer_site(op_names: Iterable[str], sites: LayerSites) -> tuple[str, int] | None:
    """The line that created the layer an op belongs to (`model/gru_1/TensorArrayV2_1`).

    The innermost scope naming a recorded layer wins; a scope may carry a `_1` suffix
    the layer's name has not (TensorFlow numbers repeated name scopes).
    """
    for op_name in op_names:
        scopes = op_name.split("@")[0].split("/")[:-1]
        for scope in reversed(scopes):
            for candidate in (scope, re.sub(r"_\d+$", "", scope)):
                if candidate in sites:
                    return sites[candidate]
    return None


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


def factory_files(reference: str, workspace: Path) -> list[Path]:
    """The workspace files that importing `package.module:function` opens first.

    Each package's `__init__.py` and the module itself, where they exist: the gate
    checks their type before a worker imports them (a FIFO would block the import).
    """
    parts = reference.partition(":")[0].split(".")
    root = workspace.resolve()
    candidates = [root.joinpath(*parts[:depth], "__init__.py") for depth in range(1, len(parts))]
    candidates += [root.joinpath(*parts[:-1], f"{parts[-1]}.py")]
    candidates += [root.joinpath(*parts, "__init__.py")]
    return [path for path in candidates if path.exists()]


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_recording: WorkspaceReads | None = None


def _dispatch(event: str, arguments: tuple[Any, ...]) -> None:
    if _recording is not None:
        _recording._hook(event, arguments)


class WorkspaceReads:
    """The workspace files a worker's run depended on: modules it imported, files it read.

    A cached conversion is valid only while these are unchanged. Python's `open`
    audit event sees reads through `open()`, `np.load` and the like; a C library
    reading on its own (h5py, TensorFlow's file API) is not seen, which is why the
    cache key also covers the workspace's model and weight files (see
    `conversion_cache`).
    """

    def __init__(self, workspace: Path, *, scratch: Path) -> None:
        self._root = workspace.resolve()
        self._scratch = scratch.resolve()  # the worker's own files, gone after the run
        self._opened: set[str] = set()

    def start(self) -> None:
        """Record reads from now on, until another instance starts (a worker's next job).

        Audit hooks cannot be removed: one hook per process passes events to the
        instance that started last.
        """
        global _recording
        if _recording is None:
            sys.addaudithook(_dispatch)
        _recording = self

    def _hook(self, event: str, arguments: tuple[Any, ...]) -> None:
        if event != "open" or not arguments:
            return
        path, mode, flags = (*arguments, None, None)[:3]
        writing = (
            any(letter in mode for letter in "wax+")
            if isinstance(mode, str)
            else isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        )
        if isinstance(path, (str, os.PathLike)) and not writing:
            self._opened.add(os.fspath(path))

    def files(self) -> list[str]:
        """Workspace-relative paths of the regular files imported or read, sorted."""
        imported = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
        found: set[str] = set()
        for name in [*self._opened, *(path for path in imported if isinstance(path, str))]:
            relative = self._inside(name)
            if relative is not None:
                found.add(relative)
        return sorted(found)

    def packages(self) -> dict[str, str]:
        """Installed distributions whose modules were imported, with their versions.

        A factory or generator may use any installed library; a new version of one may
        change the model it builds.
        """
        providers = importlib.metadata.packages_distributions()
        imported = {name.partition(".")[0] for name in list(sys.modules)}
        found: dict[str, str] = {}
        for distribution in sorted({d for name in imported for d in providers.get(name, [])}):
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                found[distribution] = importlib.metadata.version(distribution)
        return found

    def _inside(self, name: str) -> str | None:
        if "site-packages" in name or "dist-packages" in name:
            return None
        try:
            resolved = Path(self._root, name).resolve()
        except (OSError, RuntimeError):
            return None
        if resolved.is_relative_to(_OWN_PACKAGE) or resolved.is_relative_to(self._scratch):
            return None
        if not resolved.is_relative_to(self._root):
            return None
        return resolved.relative_to(self._root).as_posix() if resolved.is_file() else None

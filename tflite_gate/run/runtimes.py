"""Extra TFLite runtimes in isolated, cached virtual environments.

A model converted by a new TensorFlow may not load on the runtime a device ships
(`FULLY_CONNECTED` version 12 on `tflite-runtime==2.14.0`), and old runtimes pin
old dependencies (`tflite-runtime` 2.14 fails to import with numpy 2). So each
extra runtime gets its own virtual environment, never the gate's: the policy can
run the same model on `tflite-runtime==2.14.0` + `numpy<2` next to the installed
`ai-edge-litert`, and the interpreter worker runs under that environment's Python.

Environments are cached under `<cache_dir>/runtimes/<key>/` and trusted only
after a `ready.json` marker is written, which happens after pip succeeded and the
interpreter module imported. An interrupted or failed build is removed and redone.
Concurrent gates on one cache serialize on an `fcntl.flock` lock next to the venv.
Nothing here imports TensorFlow or the runtime into the gate's own process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from tflite_gate.policy.schema import DEFAULT_RUNTIME, looks_like_path
from tflite_gate.run.runner import RuntimeUnavailable
from tflite_gate.run.workers import WorkerOutcome, log_tail, run_worker
from tflite_gate.support.lifetime import owned_scratch
from tflite_gate.support.workspace_files import SpecialFileError, require_regular_file

_TF_INTERPRETER = "tensorflow.lite.python.interpreter"
# Distribution (canonical name) → module that provides `Interpreter`.
_KNOWN_MODULES: dict[str, str] = {
    "ai-edge-litert": "ai_edge_litert.interpreter",
    "ai-edge-litert-nightly": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
    "tflite-runtime-nightly": "tflite_runtime.interpreter",
    "tensorflow": _TF_INTERPRETER,
    "tensorflow-cpu": _TF_INTERPRETER,
    "tensorflow-gpu": _TF_INTERPRETER,
    "tensorflow-intel": _TF_INTERPRETER,
    "tensorflow-macos": _TF_INTERPRETER,
    "tensorflow-aarch64": _TF_INTERPRETER,
    "intel-tensorflow": _TF_INTERPRETER,
    "tf-nightly": _TF_INTERPRETER,
    "tf-nightly-cpu": _TF_INTERPRETER,
}

_MARKER = "ready.json"
_MARKER_FORMAT = 1
_TAIL_LINES = 15
# Variables that would let the gate's own packages leak into the isolated runtime.
_LEAKY_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")
# Build litter that pip or setuptools may leave in a local source tree: not the source.
_NOT_SOURCE = {".git", ".hg", "build", "dist", "__pycache__", ".venv", ".tox", ".nox"}
# A 416-byte model, one float32 RELU [1, 4] (op version 1, schema 3): every runtime
# runs it. Packed with the schema object API (as tests/tflite_builder.py does:
# build_model([builtin("RELU")], signature=False)). Importing is not enough: tflite-runtime
# 2.14 imports fine under numpy 2 and fails only when it creates an interpreter.
_SMOKE_MODEL_B64 = (
    "HAAAAFRGTDMAABIAHAAYABQAEAAMAAgAAAAEABIAAAAYAAAAGAAAADQAAABQAAAAUAEAAAMAAAAAAAAAAwAAABgA"
    "AAAMAAAABAAAAPj////8////BAAEAAQAAAAZAAAAdGZsaXRlX2J1aWxkZXIgdGVzdCBtb2RlbAAAAAEAAAAUAAAA"
    "AAAOABgAFAAQAAwACAAEAA4AAAAUAAAAHAAAAEgAAABMAAAAUAAAAAQAAABtYWluAAAAAAEAAAAQAAAAAAAKAAwA"
    "AAAIAAQACgAAAAgAAAAMAAAAAQAAAAEAAAABAAAAAAAAAAEAAAABAAAAAQAAAAAAAAACAAAAUAAAAAQAAADE////"
    "DAAAAAIAAAAkAAAAGQAAAFN0YXRlZnVsUGFydGl0aW9uZWRDYWxsOjAAAAACAAAAAQAAAAQAAAAMABAADAAAAAgA"
    "BAAMAAAADAAAAAEAAAAcAAAAEwAAAHNlcnZpbmdfZGVmYXVsdF94OjAAAgAAAAEAAAAEAAAAAQAAABAAAAAMAAwA"
    "CwAAAAAABAAMAAAAEwAAAAAAABM="
)
_VERIFY_TAG = "TFLITE_GATE_RUNTIME "
# Runs under the runtime environment's Python: stdlib only, prints one tagged JSON line.
_VERIFY_SCRIPT = f"""
import base64, importlib, importlib.metadata as md, json, sys
module_name, dist = sys.argv[1], sys.argv[2] or None
module = importlib.import_module(module_name)
if not hasattr(module, "Interpreter"):
    raise SystemExit(f"module {{module_name!r}} has no attribute 'Interpreter'")
interpreter = module.Interpreter(model_content=base64.b64decode({_SMOKE_MODEL_B64!r}))
interpreter.allocate_tensors()
interpreter.invoke()
try:
    version = md.version(dist) if dist else None
except md.PackageNotFoundError:
    version = None
if version is None:
    owners = md.packages_distributions().get(module_name.partition(".")[0], [])
    version = md.version(owners[0]) if owners else None
print({_VERIFY_TAG!r} + json.dumps({{"version": version}}), flush=True)
"""


@dataclass(frozen=True)
class RuntimeSpec:
    """A runtime a policy asks for.

    `requirement` None means the runtime installed next to the gate; anything else
    is a pip requirement (a name with a specifier, a URL or a local path) installed
    into its own cached environment, together with `extra` (the policy key `with`).
    `custom_op_registerers` and `custom_op_libraries` (absolute paths) are loaded
    by the interpreter worker, not installed: they do not change the environment.
    """

    name: str
    requirement: str | None
    extra: tuple[str, ...] = ()
    module: str | None = None
    custom_op_registerers: tuple[str, ...] = ()
    custom_op_libraries: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuntimeEnvironment:
    """A ready runtime: run the interpreter worker with `python`, import `module`."""

    spec: RuntimeSpec
    python: str
    module: str
    version: str | None
    cached: Path | None = None  # the cached environment it was reused from, else None


# --- naming ----------------------------------------------------------------


def _distribution_name(requirement: str) -> str | None:
    """The distribution a requirement names, or None for a path or a bare URL."""
    if looks_like_path(requirement):
        return None
    try:
        return Requirement(requirement).name
    except InvalidRequirement:
        return None


def interpreter_module_for(requirement: str | None) -> str:
    """The module providing `Interpreter` for a runtime requirement.

    Only well-known distributions are mapped; for anything else (another
    distribution, a local path, a URL) the policy must say `module` itself,
    because guessing the import name of an unknown package would hide mistakes.
    """
    name = _distribution_name(requirement if requirement is not None else DEFAULT_RUNTIME)
    if name is None:
        raise RuntimeUnavailable(
            f"cannot tell which module provides `Interpreter` in {requirement!r} "
            "(a path or URL): set `module` for this runtime, "
            "e.g. module: tflite_runtime.interpreter"
        )
    module = _KNOWN_MODULES.get(canonicalize_name(name))
    if module is None:
        known = ", ".join(sorted(_KNOWN_MODULES))
        raise RuntimeUnavailable(
            f"unknown runtime distribution {name!r}: set `module` for this runtime to the "
            f"module that provides `Interpreter` (known distributions: {known})"
        )
    return module


def default_cache_dir() -> Path:
    """Where runtime environments live: $TFLITE_GATE_CACHE, $XDG_CACHE_HOME or ~/.cache."""
    explicit = os.environ.get("TFLITE_GATE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "tflite-gate"


# --- the installed runtime -------------------------------------------------


def installed_runtime(spec: RuntimeSpec) -> RuntimeEnvironment:
    """The runtime next to the gate: found by metadata, not imported here.

    Importing it would cost time and could crash the gate; the worker imports it.
    """
    _check_libraries(spec)
    module = spec.module or interpreter_module_for(DEFAULT_RUNTIME)
    top = module.partition(".")[0]
    if importlib.util.find_spec(top) is None:
        raise RuntimeUnavailable(
            f"runtime {spec.name!r}: module {top!r} is not installed next to the gate; "
            "install its distribution there (the default runtime is "
            f"`pip install {DEFAULT_RUNTIME}`) or give the runtime a requirement"
        )
    owners = importlib.metadata.packages_distributions().get(top, [])
    version = importlib.metadata.version(owners[0]) if owners else None
    return RuntimeEnvironment(spec=spec, python=sys.executable, module=module, version=version)


# --- cached environments ---------------------------------------------------


def _check_arguments(spec: RuntimeSpec) -> None:
    """pip reads a leading dash as an option (e.g. --index-url): never from a policy."""
    for argument in (spec.requirement or "", *spec.extra):
        if not argument.strip() or argument.lstrip().startswith("-"):
            raise RuntimeUnavailable(
                f"runtime {spec.name!r}: {argument!r} is not a requirement; "
                "give a name with an optional version (tflite-runtime==2.14.0), a path or a URL"
            )


def _check_libraries(spec: RuntimeSpec) -> None:
    """A custom-op library is built by the user's CI before the gate: say so when it is not."""
    for library in spec.custom_op_libraries:
        if not Path(library).exists():
            raise RuntimeUnavailable(
                f"runtime {spec.name!r}: custom-op library {library} does not exist; build it "
                "before the gate runs, or fix `custom_op_libraries` (paths are relative to the "
                "workspace)"
            )
        try:
            require_regular_file(Path(library))
        except SpecialFileError as error:
            raise RuntimeUnavailable(
                f"runtime {spec.name!r}: custom-op library {library}: {error.message}"
            ) from None


def _resolve_requirement(requirement: str, written: str) -> str:
    """An absolute path for a local requirement, so the cache key and pip agree.

    `written` is the requirement as the policy has it, for the message.
    """
    if not looks_like_path(requirement):
        return requirement
    path = Path(requirement).expanduser().resolve()
    if not path.exists():
        raise RuntimeUnavailable(
            f"build or commit {written} before the gate runs, or fix the requirement (paths "
            "are relative to the workspace root): no such file or directory"
        )
    return str(path)


def _source_fingerprint(requirement: str) -> str | None:
    """For a local path: a digest of its files, so an edited package is reinstalled."""
    if not looks_like_path(requirement):
        return None
    root = Path(requirement)
    digest = hashlib.sha256()
    files = [root] if root.is_file() else sorted(_source_files(root))
    for path in files:
        stat = path.stat()
        digest.update(
            f"{path.relative_to(root.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:16]


def _source_files(root: Path) -> Iterator[Path]:
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in _NOT_SOURCE and not d.endswith(".egg-info")]
        for name in names:
            yield Path(directory) / name


def _environment_key(requirement: str, extra: tuple[str, ...], module: str) -> str:
    """Short digest naming the venv: same inputs on the same Python and machine share it."""
    identity = [
        requirement,
        sorted(extra),
        module,
        platform.python_implementation(),
        platform.python_version(),
        platform.machine(),
    ]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def _clean_env() -> dict[str, str]:
    """The environment for the runtime's processes, without paths into the gate's packages."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_ENV}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


@contextlib.contextmanager
def _locked(lock_path: Path, deadline: float) -> Iterator[None]:
    """Hold an exclusive flock; the kernel drops it if the holder dies."""
    with open(lock_path, "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeUnavailable(
                        f"another tflite-gate is still preparing this runtime ({lock_path}); "
                        "try again later"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_marker(venv: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((venv / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _python_runs(python: Path) -> bool:
    """A cached venv dies when its base Python is removed or upgraded."""
    try:
        completed = subprocess.run(
            [str(python), "-c", "pass"],
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


def _reusable(venv: Path, fingerprint: str | None) -> dict[str, Any] | None:
    """The marker of a complete, still working environment built from the same source."""
    marker = _read_marker(venv)
    if marker is None or marker.get("format") != _MARKER_FORMAT:
        return None
    if marker.get("source_fingerprint") != fingerprint:
        return None
    return marker if _python_runs(_venv_python(venv)) else None


def _meaningful_tail(log_path: Path) -> list[str]:
    """pip's last lines without its notices: where the actual error is."""
    lines = [line for line in log_tail(log_path, 200) if not line.startswith("[notice]")]
    return lines[-_TAIL_LINES:]


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def failure_headline(lines: list[str]) -> str | None:
    """The line that says what went wrong: pip's first `ERROR:`, else a traceback's last line.

    A traceback's head ("Traceback (most recent call last):", frames) says nothing a
    user can act on; its exception line does.
    """
    stripped = [line.strip() for line in lines if line.strip()]
    # "ERROR: Ignored the following versions ..." is context for the error after it.
    errors = [line for line in stripped if line.startswith("ERROR:")]
    pip_error = next((line for line in errors if not line.startswith("ERROR: Ignored")), None)
    if pip_error is not None:
        return pip_error
    exception = next((line for line in reversed(stripped) if _EXCEPTION_LINE.match(line)), None)
    return exception or (stripped[-1] if stripped else None)


def _failure(
    spec: RuntimeSpec, step: str, outcome: WorkerOutcome, log_path: Path, advice: str
) -> RuntimeUnavailable:
    lines = log_tail(log_path, 200)
    headline = failure_headline(lines) or f"{step} {outcome.describe()}"
    tail = "\n".join(f"  {line}" for line in _meaningful_tail(log_path))
    message = (
        f"{headline}: {advice}\n"
        f"runtime {spec.name!r}: {step} {outcome.describe()}:\n{tail}\n(full log: {log_path})"
    )
    return RuntimeUnavailable(message, log_path=log_path)


def _run_step(argv: list[str], log_path: Path, deadline: float) -> WorkerOutcome:
    """One child process, killed with its whole group when the time budget runs out.

    Its temporary files (pip's build environments) go to a directory of ours, removed
    even when pip is killed (timeout, cancelled gate) before it can clean up.
    """
    scratch = owned_scratch("tflite-gate-step-")
    with scratch as temporary:
        return run_worker(
            argv,
            timeout_s=max(deadline - time.monotonic(), 1.0),
            memory_mb=None,
            log_path=log_path,
            env={**_clean_env(), "TMPDIR": temporary},
        )


def _create_venv(spec: RuntimeSpec, venv: Path, log_path: Path, deadline: float) -> None:
    outcome = _run_step([sys.executable, "-m", "venv", str(venv)], log_path, deadline)
    if not outcome.ok:
        advice = "the gate's Python cannot make virtual environments (on Debian: python3-venv)"
        raise _failure(spec, "creating the virtual environment", outcome, log_path, advice)


def _pip_install(
    spec: RuntimeSpec, venv: Path, packages: list[str], log_path: Path, deadline: float
) -> None:
    argv = [str(_venv_python(venv)), "-m", "pip", "install"]
    argv += ["--disable-pip-version-check", "--no-input", *packages]
    outcome = _run_step(argv, log_path, deadline)
    if not outcome.ok:
        advice = (
            "check the runtime's requirement and `with` in the policy: the version must "
            "exist for this Python and platform"
        )
        raise _failure(spec, f"pip install {' '.join(packages)}", outcome, log_path, advice)


def _ensure_numpy(spec: RuntimeSpec, venv: Path, log_path: Path, deadline: float) -> None:
    """The interpreter worker needs numpy; a runtime package need not declare it."""
    probe = _run_step([str(_venv_python(venv)), "-c", "import numpy"], log_path, deadline)
    if not probe.ok:
        _pip_install(spec, venv, ["numpy"], log_path, deadline)


def _import_advice(log_path: Path) -> str:
    """Old runtimes built against numpy 1 fail on numpy 2: say so when that is the cause."""
    text = "\n".join(log_tail(log_path, 200))
    if "NumPy 1.x cannot be run in" in text or "_ARRAY_API not found" in text:
        return 'this runtime needs an older numpy: add `with: ["numpy<2"]` to it in the policy'
    return "the runtime installed but does not work: pin compatible versions with `with`"


def _verify(
    spec: RuntimeSpec,
    venv: Path,
    module: str,
    distribution: str | None,
    log_path: Path,
    deadline: float,
) -> str | None:
    """Import the module and run a tiny model under the venv's Python; return the version."""
    argv = [str(_venv_python(venv)), "-c", _VERIFY_SCRIPT, module, distribution or ""]
    outcome = _run_step(argv, log_path, deadline)
    if not outcome.ok:
        step = f"import {module} and run a one-op model"
        raise _failure(spec, step, outcome, log_path, _import_advice(log_path))
    for line in reversed(log_tail(log_path, 50)):
        if line.startswith(_VERIFY_TAG):
            version = json.loads(line[len(_VERIFY_TAG) :]).get("version")
            return version if isinstance(version, str) else None
    return None


def _write_marker(venv: Path, spec: RuntimeSpec, module: str, fields: dict[str, Any]) -> None:
    """Written last and atomically: its presence is the only proof of a complete venv."""
    marker = {
        "format": _MARKER_FORMAT,
        "spec": asdict(spec),
        "module": module,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **fields,
    }
    partial = venv / f"{_MARKER}.partial"
    partial.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    partial.replace(venv / _MARKER)


def _build(
    spec: RuntimeSpec, venv: Path, requirement: str, module: str, deadline: float
) -> str | None:
    """Create, install and verify; on any failure or interruption leave no venv behind.

    Each step logs to its own file next to the venv, kept after a failure for the user.
    """
    shutil.rmtree(venv, ignore_errors=True)

    def log(step: str) -> Path:
        return venv.with_name(f"{venv.name}.{step}.log")

    try:
        _create_venv(spec, venv, log("venv"), deadline)
        _pip_install(spec, venv, [requirement, *spec.extra], log("pip"), deadline)
        _ensure_numpy(spec, venv, log("numpy"), deadline)
        distribution = _distribution_name(requirement)
        return _verify(spec, venv, module, distribution, log("import"), deadline)
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise


def prepare_runtime(
    spec: RuntimeSpec, *, cache_dir: Path, timeout_s: float = 900
) -> RuntimeEnvironment:
    """A ready environment for `spec`: the gate's own, a cached venv, or a new one.

    `timeout_s` bounds the whole preparation (waiting for the lock, creating the
    venv, pip, the import check). Raises `RuntimeUnavailable` with the reason. The
    python it names is an absolute path: workers start in other directories than the
    gate, where a relative `cache_dir` names nothing.
    """
    if spec.requirement is None:
        return installed_runtime(spec)
    return cached_runtime(spec, spec.requirement, cache_dir=cache_dir, timeout_s=timeout_s)


def cached_runtime(
    spec: RuntimeSpec, requirement: str, *, cache_dir: Path, timeout_s: float = 900
) -> RuntimeEnvironment:
    """`requirement` (the spec's) installed into a virtual environment of its own, cached
    under `cache_dir` and built only when no complete one is there."""
    _check_libraries(spec)
    _check_arguments(spec)
    resolved = _resolve_requirement(requirement, spec.name)
    module = spec.module or interpreter_module_for(requirement)
    fingerprint = _source_fingerprint(resolved)
    root = cache_dir.absolute() / "runtimes"
    root.mkdir(parents=True, exist_ok=True)
    key = _environment_key(resolved, spec.extra, module)
    venv = root / key
    deadline = time.monotonic() + timeout_s
    with _locked(root / f"{key}.lock", deadline):
        marker = _reusable(venv, fingerprint)
        if marker is None:
            version = _build(spec, venv, resolved, module, deadline)
            fields = {"version": version, "source_fingerprint": fingerprint}
            _write_marker(venv, spec, module, fields)
        else:
            version = marker.get("version")
    return RuntimeEnvironment(
        spec=spec,
        python=str(_venv_python(venv)),
        module=module,
        version=version if isinstance(version, str) else None,
        cached=venv if marker is not None else None,
    )

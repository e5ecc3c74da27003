"""The bad-input matrix: every way a pull request or a CI machine can hand the gate
something wrong, one row each, run the way users run it.

Each row builds a workspace, runs the real CLI (or `entrypoint.py` as the runner
starts it) in a subprocess under a hard timeout, and asserts the exit code, the
finding's rule, the words of its message, its location, that no traceback reached
stdout or stderr, and that the report is valid against the shipped schema, or that
no report was written where its own path is the problem.

Rows over full or read-only disks mount a small tmpfs inside a private mount
namespace (`unshare`), which disappears with the process; rows over unreadable
files drop the capabilities that let root read anything (`setpriv`). Every row
starts the gate as a process, so the rows are in the slow tier.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonschema
import numpy as np
import pytest

from tests.support.action_env import action_env, run_entrypoint
from tests.support.harness import REPO
from tests.support.tflite_builder import build_broken_model, build_model, builtin

SCHEMA = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())
POLICY = "tflite-gate.yml"
RELU = "models/relu.tflite"
TOKEN = "ghs_0123456789abcdef"


def _can_mount() -> bool:
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


ROOT = os.geteuid() == 0
MOUNTS = shutil.which("unshare") is not None and _can_mount()
# Root reads every file whatever its mode; without these capabilities it obeys the bits.
AS_ORDINARY_USER = (
    ("setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--")
    if ROOT
    else ()
)


@dataclass
class Workspace:
    """What a row sets up: files in the workspace, and how the gate is started on it."""

    root: Path  # holds the workspace and what must stay outside it
    args: list[str] = field(default_factory=list)  # extra CLI arguments
    inputs: dict[str, str] = field(default_factory=dict)  # extra Action inputs
    env: dict[str, str] = field(default_factory=dict)
    tmpfs: list[tuple[Path, str]] = field(default_factory=list)  # (mount point, options)
    drop_capabilities: bool = False
    event: tuple[str, str] | None = None  # (event name, event file content)
    fifos: list[str] = field(default_factory=list)  # runner files made FIFOs: event.json...
    report: Path | None = None  # None: WORKSPACE/tflite-gate-report.json

    @property
    def path(self) -> Path:
        return self.root / "ws"

    def write(self, name: str, content: str | bytes) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
        return target

    def policy(self, text: str) -> None:
        self.write(POLICY, textwrap.dedent(text))

    def relu(self, name: str = RELU) -> None:
        self.write(name, build_model([builtin("RELU")]))

    def mount(self, relative: str, options: str) -> Path:
        """A tmpfs at WORKSPACE/`relative` (or ROOT/`relative` for `../x`), for this run."""
        point = (self.path / relative).resolve()
        point.mkdir(parents=True, exist_ok=True)
        self.tmpfs.append((point, options))
        return point

    @property
    def report_path(self) -> Path:
        return self.report or self.path / "tflite-gate-report.json"


Setup = Callable[[Workspace], None]


@dataclass(frozen=True)
class Case:
    id: str
    setup: Setup
    exit: int
    rule: str | None  # the finding the report must hold; None: no report may be written
    words: str  # in that finding's message (or on stderr when no report is written)
    location: str | None = None  # "path:line[:column]" of the finding; None: no location
    via: Literal["cli", "action"] = "cli"
    needs: Literal["", "mount", "capabilities"] = ""
    timeout_s: float = 120


# --------------------------------------------------------------------------- building blocks


def one_model(extra: str = "", source: str = RELU) -> str:
    """A policy with one model `m` whose entry ends with `extra` (YAML lines, 4 spaces in)."""
    body = textwrap.indent(textwrap.dedent(extra), "    ") if extra else ""
    return f"version: 1\nmodels:\n  - name: m\n    source: {source}\n{body}"


def relu_with(extra: str = "") -> Setup:
    def setup(ws: Workspace) -> None:
        ws.relu()
        ws.write(POLICY, one_model(extra))

    return setup


def policy_text(text: str) -> Setup:
    return lambda ws: ws.write(POLICY, text)


def policy_bytes(data: bytes) -> Setup:
    return lambda ws: ws.write(POLICY, data)


def source_bytes(name: str, data: bytes, extra: str = "") -> Setup:
    def setup(ws: Workspace) -> None:
        ws.write(name, data)
        ws.write(POLICY, one_model(extra, source=name))

    return setup


def relu_and(then: Callable[[Workspace], None], extra: str = "") -> Setup:
    def setup(ws: Workspace) -> None:
        relu_with(extra)(ws)
        then(ws)

    return setup


def args(*values: str) -> Callable[[Workspace], None]:
    return lambda ws: ws.args.extend(values)


def inputs(**values: str) -> Callable[[Workspace], None]:
    return lambda ws: ws.inputs.update({k.replace("_", "-"): v for k, v in values.items()})


def npz(ws: Workspace, name: str, **arrays: Any) -> None:
    target = ws.path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez(target, **arrays)


def _fifo(ws: Workspace, name: str) -> None:
    target = ws.path / name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(target)


def _alias_bomb() -> str:
    lines = ["version: 1", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{','.join([f'*{previous}'] * 9)}]")
    return "\n".join([*lines, "models: *i"]) + "\n"


def _sparse_policy(ws: Workspace) -> None:
    ws.path.mkdir(parents=True, exist_ok=True)
    with open(ws.path / POLICY, "wb") as policy:
        policy.truncate(50 * 2**20)


def _keras_factory(ws: Workspace, body: str, extra: str = "") -> None:
    ws.write("zoo/__init__.py", "")
    ws.write("zoo/nets.py", textwrap.dedent(body))
    ws.write(POLICY, one_model(extra, source="zoo.nets:build"))


DENSE = """\
    import keras

    def build():
        inputs = keras.Input((4,), batch_size=1, name="x")
        return keras.Model(inputs, keras.layers.Dense(2, name="y")(inputs))
    """


def _factory(body: str, extra: str = "") -> Setup:
    return lambda ws: _keras_factory(ws, body, extra)


def _outside_link(ws: Workspace, inside: str, outside: str) -> None:
    secret = ws.root / outside
    np.save(secret, np.ones((2, 4), np.float32))
    link = ws.path / inside
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)


def _event(name: str, content: str) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        ws.event = (name, content)

    return setup


def _chain(*steps: Callable[[Workspace], None]) -> Setup:
    def setup(ws: Workspace) -> None:
        for step in steps:
            step(ws)

    return setup


def _unreadable(name: str) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        (ws.path / name).chmod(0)
        ws.drop_capabilities = True

    return setup


def _tmpdir_full(ws: Workspace) -> None:
    point = ws.mount("../tmp", "size=48k")
    ws.env["TMPDIR"] = str(point)


def _report_at(relative: str, *, directory: bool = False) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        ws.report = ws.path / relative
        if directory:
            ws.report.mkdir()

    return setup


def _source_link_outside(ws: Workspace) -> None:
    ws.write(POLICY, one_model())
    (ws.root / "secret.tflite").write_bytes(build_model([builtin("RELU")]))
    (ws.path / "models").mkdir()
    (ws.path / RELU).symlink_to(ws.root / "secret.tflite")


def _fifo_source(ws: Workspace) -> None:
    _fifo(ws, RELU)
    ws.write(POLICY, one_model())


def _fifo_model(name: str, source: str | None = None, extra: str = "") -> Setup:
    """A model file (or a file a model reads) that is a FIFO; the policy's source is `source`."""

    def setup(ws: Workspace) -> None:
        _fifo(ws, name)
        ws.write(POLICY, one_model(extra, source=source or name))

    return setup


def _fifo_in_saved_model(ws: Workspace) -> None:
    (ws.path / "models" / "sm" / "variables").mkdir(parents=True)
    _fifo(ws, "models/sm/saved_model.pb")
    ws.write(POLICY, one_model(source="models/sm"))


def _runner_fifo(name: str) -> Callable[[Workspace], None]:
    return lambda ws: ws.fifos.append(name)


def _empty_saved_model(ws: Workspace) -> None:
    (ws.path / "models" / "sm").mkdir(parents=True)
    ws.write(POLICY, one_model(source="models/sm"))


def _generator(body: str) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        ws.write("gen/__init__.py", "")
        ws.write("gen/data.py", textwrap.dedent(body))

    return setup


def _cache_is_a_file(ws: Workspace) -> None:
    ws.write("cache", "x")
    ws.args.extend(["--cache-dir", str(ws.path / "cache")])


def _report_under_a_file(ws: Workspace) -> None:
    ws.write("plain", "x")
    ws.report = ws.path / "plain" / "r.json"


def _report_fifo(ws: Workspace) -> None:
    _fifo(ws, "r.json")
    ws.report = ws.path / "r.json"


def _artifacts_under_a_file(ws: Workspace) -> None:
    ws.write("plain", "x")
    ws.args.extend(["--artifacts", str(ws.path / "plain" / "a")])


def _artifacts_over_a_source(ws: Workspace) -> None:
    ws.relu("m/relu.tflite")
    ws.write(POLICY, one_model(source="m/relu.tflite"))
    ws.args.extend(["--artifacts", str(ws.path)])


def _mounted_output(option: str, options: str) -> Callable[[Workspace], None]:
    def setup(ws: Workspace) -> None:
        point = ws.mount("mnt", options)
        if option == "--report":
            ws.report = point / "r.json"
        else:
            ws.args.extend([option, str(point / f"r{option.replace('--', '.')}")])

    return setup


def _mounted_option(option: str, options: str) -> Callable[[Workspace], None]:
    return lambda ws: ws.args.extend([option, str(ws.mount("mnt", options))])


# --------------------------------------------------------------------------- the rows

P = f"{POLICY}"  # locations in the policy
OUTSIDE = "is outside the workspace"

POLICY_CASES = [
    Case("empty-policy", policy_text(""), 2, "policy-invalid", "models", P),
    Case("policy-is-a-list", policy_text("- a\n- b\n"), 2, "policy-invalid", "mapping", f"{P}:1"),
    Case(
        "unknown-top-key",
        policy_text("version: 1\nmodles: []\n"),
        2,
        "policy-invalid",
        "modles",
        f"{P}:2:1",
    ),
    Case(
        "version-2",
        policy_text("version: 2\nmodels: []\n"),
        2,
        "policy-invalid",
        "version",
        f"{P}:1:10",
    ),
    Case("no-models-key", policy_text("version: 1\n"), 2, "policy-invalid", "models", P),
    Case(
        "model-without-source",
        policy_text("version: 1\nmodels:\n  - name: m\n"),
        2,
        "policy-invalid",
        "source",
        f"{P}:3",
    ),
    Case(
        "bad-model-name",
        policy_text("version: 1\nmodels:\n  - {name: ../up, source: m.tflite}\n"),
        2,
        "policy-invalid",
        "not a valid name",
        f"{P}:3:12",
    ),
    Case(
        "duplicate-model-name",
        policy_text(
            "version: 1\nmodels:\n  - {name: m, source: a.tflite}\n  - {name: m, source: b.tflite}\n"
        ),
        2,
        "policy-invalid",
        "duplicate model name 'm'",
        f"{P}:4:12",
    ),
    Case(
        "variant-names-differ-only-in-case",
        policy_text(
            one_model(
                "variants:\n  - {name: int8, quantization: int8}\n"
                "  - {name: INT8, quantization: int8}\n",
                source="m.keras",
            )
        ),
        2,
        "policy-invalid",
        "file names must differ by more than case",
        f"{P}:7:16",
    ),
    Case(
        "unknown-quantization",
        policy_text(one_model("variants: [{name: q, quantization: int4}]\n", "m.keras")),
        2,
        "policy-invalid",
        "int4",
        f"{P}:5",
    ),
    Case(
        "unknown-io",
        policy_text(one_model("variants: [{name: q, quantization: int8, io: int4}]\n", "m.keras")),
        2,
        "policy-invalid",
        "int4",
        f"{P}:5",
    ),
    Case(
        "bad-fail-on",
        policy_text("version: 1\nfail_on: sometimes\nmodels: []\n"),
        2,
        "policy-invalid",
        "sometimes",
        f"{P}:2:10",
    ),
    Case(
        "negative-threshold",
        policy_text(one_model("max_divergence: {max_abs: -1}\n")),
        2,
        "policy-invalid",
        "max_abs",
        f"{P}:5",
    ),
    Case(
        "nan-threshold",
        policy_text(one_model("max_divergence: {min_snr_db: .nan}\n")),
        2,
        "policy-invalid",
        "min_snr_db",
        f"{P}:5",
    ),
    Case(
        "nan-generate-bound",
        policy_text(one_model("data: {evaluation: {generate: {low: .nan}}}\n")),
        2,
        "policy-invalid",
        "low",
        f"{P}:5",
    ),
    Case("alias-bomb", policy_text(_alias_bomb()), 2, "policy-invalid", "alias", f"{P}:6"),
    Case(
        "recursive-alias",
        policy_text("version: 1\nmodels: &a [*a]\n"),
        2,
        "policy-invalid",
        "recursive",
        f"{P}:2",
    ),
    Case(
        "deep-nesting",
        policy_text("version: 1\nmodels: " + "[" * 5000 + "]" * 5000 + "\n"),
        2,
        "policy-invalid",
        "nests more than 64 levels",
        f"{P}:2",
    ),
    Case("50-MB-policy", _sparse_policy, 2, "policy-invalid", "256 KiB"),
    Case("policy-is-a-fifo", lambda ws: _fifo(ws, POLICY), 2, "policy-invalid", "FIFO"),
    Case(
        "policy-is-a-directory",
        lambda ws: (ws.path / POLICY).mkdir(parents=True),
        2,
        "policy-invalid",
        "directory",
        None,
    ),
    Case(
        "no-policy-file",
        lambda ws: ws.path.mkdir(),
        2,
        "policy-invalid",
        "run `tflite-gate init` to write a first policy",
        None,
    ),
    Case(
        "policy-not-utf8",
        policy_bytes(b"version: 1\nmodels: [\xff\xfe]\n"),
        2,
        "policy-invalid",
        "save the policy as UTF-8: byte 0xff here is not UTF-8 text",
        f"{P}:2:10",
    ),
    Case(
        "yaml-syntax-error",
        policy_text("version: 1\nmodels:\n  - name: m\n   source: x\n"),
        2,
        "policy-invalid",
        "",
        f"{P}:4",
    ),
    Case(
        "duplicate-key",
        policy_text("version: 1\nversion: 1\nmodels: []\n"),
        2,
        "policy-invalid",
        "version",
        f"{P}:2:1",
    ),
    Case(
        "bad-version-specifier",
        relu_with('versions: {tensorflow: "=>2.16"}\n'),
        2,
        "policy-invalid",
        "=>2.16",
        f"{P}:5",
    ),
    Case(
        "zero-timeout",
        relu_with("limits: {timeout_s: 0}\n"),
        2,
        "policy-invalid",
        "timeout_s",
        f"{P}:5",
    ),
    Case(
        "key-that-cannot-apply-to-a-tflite",
        relu_with("signature: serving_default\n"),
        1,
        "policy-invalid",
        "signature",
        f"{P}:5:16",
    ),
    Case(
        "quantized-variant-of-a-tflite",
        relu_with("variants: [{name: q, quantization: int8}]\n"),
        1,
        "policy-invalid",
        "not converted",
        f"{P}:5",
    ),
    Case(
        "bad-registerer-name",
        relu_with('runtimes: [{requirement: ai-edge-litert, custom_op_registerers: ["a b"]}]\n'),
        2,
        "policy-invalid",
        "registerer",
        f"{P}:5",
    ),
    Case(
        "duplicate-runtime",
        relu_with("runtimes: [ai-edge-litert, ai-edge-litert]\n"),
        2,
        "policy-invalid",
        "duplicate runtime",
        f"{P}:5",
    ),
]

PATH_CASES = [
    Case(
        "source-escapes-the-workspace",
        policy_text(one_model(source="../outside.tflite")),
        2,
        "policy-invalid",
        OUTSIDE,
        f"{P}:4:13",
    ),
    Case(
        "absolute-source",
        policy_text(one_model(source="/etc/passwd.tflite")),
        2,
        "policy-invalid",
        OUTSIDE,
        f"{P}:4:13",
    ),
    Case(
        "source-link-leads-outside",
        _source_link_outside,
        2,
        "policy-invalid",
        OUTSIDE,
        f"{P}:4:13",
    ),
    Case(
        "data-escapes-the-workspace",
        relu_with("data: {evaluation: ../eval.npz}\n"),
        2,
        "policy-invalid",
        OUTSIDE,
        f"{P}:5",
    ),
    Case(
        "runtime-with-path-outside",
        relu_with('runtimes: [{requirement: tflite-runtime==2.14.0, with: ["../x.whl"]}]\n'),
        2,
        "policy-invalid",
        OUTSIDE,
        f"{P}:5",
    ),
    Case(
        "runtime-file-url",
        relu_with('runtimes: [{requirement: "file:///opt/runtime.whl"}]\n'),
        2,
        "policy-invalid",
        "file: URL",
        f"{P}:5",
    ),
    Case(
        "custom-op-library-outside",
        relu_with(
            "runtimes: [{requirement: ai-edge-litert, custom_op_registerers: [Reg],"
            ' custom_op_libraries: ["../lib.so"]}]\n'
        ),
        2,
        "policy-invalid",
        OUTSIDE,
        f"{P}:5",
    ),
    Case(
        "data-directory-link-leads-outside",
        relu_and(
            lambda ws: _outside_link(ws, "eval/b.npy", "secret.npy"),
            "data: {evaluation: eval}\n",
        ),
        1,
        "data-invalid",
        "leads outside the workspace",
        f"{P}:5",
    ),
]

MODEL_CASES = [
    Case(
        "source-missing",
        policy_text(one_model()),
        1,
        "model-not-found",
        "does not exist",
        f"{P}:4:13",
    ),
    Case(
        "unsupported-extension",
        source_bytes("models/m.onnx", b"onnx"),
        1,
        "model-load-failed",
        "not a supported model file",
        f"{P}:4:13",
    ),
    Case(
        "tflite-is-a-fifo",
        _fifo_source,
        1,
        "model-load-failed",
        "FIFO",
        f"{P}:4:13",
    ),
    Case(
        "keras-is-a-fifo",
        _fifo_model("models/m.keras"),
        1,
        "model-load-failed",
        "m.keras is a named pipe (FIFO); replace it with a regular file",
        f"{P}:4:13",
    ),
    Case(
        "h5-is-a-fifo",
        _fifo_model("models/m.h5"),
        1,
        "model-load-failed",
        "m.h5 is a named pipe (FIFO)",
        f"{P}:4:13",
    ),
    Case(
        "saved-model-pb-is-a-fifo",
        _fifo_in_saved_model,
        1,
        "model-load-failed",
        "sm/saved_model.pb is a named pipe (FIFO)",
        f"{P}:4:13",
    ),
    Case(
        "factory-module-is-a-fifo",
        _chain(
            lambda ws: ws.write("zoo/__init__.py", ""),
            _fifo_model("zoo/nets.py", source="zoo.nets:build"),
        ),
        1,
        "model-load-failed",
        "nets.py is a named pipe (FIFO)",
        f"{P}:4:13",
    ),
    Case(
        "reference-is-a-fifo",
        relu_and(lambda ws: _fifo(ws, "models/ref.keras"), "reference: models/ref.keras\n"),
        1,
        "model-load-failed",
        "ref.keras is a named pipe (FIFO)",
        f"{P}:5",
    ),
    Case(
        "tflite-is-random-bytes",
        source_bytes(RELU, os.urandom(4096)),
        1,
        "model-load-failed",
        "",
        f"{P}:4:13",
    ),
    Case(
        "tflite-is-empty",
        source_bytes(RELU, b""),
        1,
        "model-load-failed",
        "",
        f"{P}:4:13",
    ),
    Case(
        "tflite-truncated",
        source_bytes(RELU, build_model([builtin("RELU")])[:100]),
        1,
        "model-load-failed",
        "",
        f"{P}:4:13",
    ),
    Case(
        "tflite-buffer-out-of-range",
        source_bytes(RELU, build_broken_model("tensor_buffer_out_of_range")),
        1,
        "model-load-failed",
        "buffer",
        f"{P}:4:13",
    ),
    Case(
        "tflite-unreadable",
        relu_and(_unreadable(RELU)),
        1,
        "model-load-failed",
        "make it readable for the user running the gate",
        f"{P}:4:13",
        needs="capabilities",
    ),
    Case(
        "reference-missing",
        relu_with("reference: models/ref.tflite\n"),
        1,
        "model-not-found",
        "does not exist",
        f"{P}:5",
    ),
    Case(
        "reference-unsupported",
        relu_and(lambda ws: ws.write("models/ref.onnx", b"x"), "reference: models/ref.onnx\n"),
        1,
        "model-load-failed",
        "not a supported model file",
        f"{P}:5",
    ),
    Case(
        "reference-unreadable",
        relu_and(
            _chain(lambda ws: ws.relu("models/ref.tflite"), _unreadable("models/ref.tflite")),
            "reference: models/ref.tflite\n",
        ),
        1,
        "model-load-failed",
        "make it readable",
        f"{P}:5",
        needs="capabilities",
    ),
    Case(
        "keras-file-is-text",
        source_bytes("models/m.keras", b"not a zip\n"),
        1,
        "model-load-failed",
        "m.keras",
        f"{P}:4:13",
    ),
    Case(
        "keras-file-is-an-lfs-pointer",
        source_bytes(
            "models/m.keras",
            b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\n"
            b"size 123\n",
        ),
        1,
        "model-load-failed",
        "LFS",
        f"{P}:4:13",
    ),
    Case(
        "factory-module-missing",
        policy_text(one_model(source="nowhere.models:build")),
        1,
        "model-load-failed",
        "nowhere",
        f"{P}:4:13",
    ),
    Case(
        "factory-raises",
        _factory("def build():\n    raise RuntimeError('no weights here')\n"),
        1,
        "model-load-failed",
        "no weights here",
        "zoo/nets.py:2",
    ),
    Case(
        "savedmodel-directory-empty",
        _empty_saved_model,
        1,
        "model-load-failed",
        "",
        f"{P}:4:13",
    ),
]

DATA_CASES = [
    Case(
        "npz-wrong-shape",
        relu_and(
            lambda ws: npz(ws, "data/e.npz", x=np.ones((3, 5), np.float32)),
            "data: {evaluation: data/e.npz}\n",
        ),
        1,
        "data-invalid",
        "shape",
        f"{P}:5",
    ),
    Case(
        "npz-missing-input",
        relu_and(
            lambda ws: npz(ws, "data/e.npz", other=np.ones((3, 4), np.float32)),
            "data: {evaluation: data/e.npz}\n",
        ),
        1,
        "data-invalid",
        "x",
        f"{P}:5",
    ),
    Case(
        "npz-pickled-objects",
        relu_and(
            lambda ws: npz(ws, "data/e.npz", x=np.array([{"a": 1}], dtype=object)),
            "data: {evaluation: data/e.npz}\n",
        ),
        1,
        "data-invalid",
        "pickle",
        f"{P}:5",
    ),
    Case(
        "npz-is-a-pickle",
        relu_and(
            lambda ws: ws.write("data/e.npz", pickle.dumps([1, 2, 3])),
            "data: {evaluation: data/e.npz}\n",
        ),
        1,
        "data-invalid",
        "not a NumPy .npz archive",
        f"{P}:5",
    ),
    Case(
        "npz-is-text",
        relu_and(
            lambda ws: ws.write("data/e.npz", "x,y\n1,2\n"), "data: {evaluation: data/e.npz}\n"
        ),
        1,
        "data-invalid",
        "not a NumPy .npz archive",
        f"{P}:5",
    ),
    Case(
        "npz-is-a-fifo",
        relu_and(lambda ws: _fifo(ws, "data/e.npz"), "data: {evaluation: data/e.npz}\n"),
        1,
        "data-invalid",
        "FIFO",
        f"{P}:5",
    ),
    Case(
        "npz-with-nan",
        relu_and(
            lambda ws: npz(ws, "data/e.npz", x=np.full((2, 4), np.nan, np.float32)),
            "data: {evaluation: data/e.npz}\n",
        ),
        1,
        "data-invalid",
        "finite",
        f"{P}:5",
    ),
    Case(
        "data-directory-empty",
        relu_and(lambda ws: (ws.path / "eval").mkdir(), "data: {evaluation: eval}\n"),
        1,
        "data-invalid",
        "",
        f"{P}:5",
    ),
    Case(
        "data-missing",
        relu_with("data: {evaluation: data/none.npz}\n"),
        1,
        "data-invalid",
        "",
        f"{P}:5",
    ),
    Case(
        "generator-never-ends",
        relu_and(
            _generator("def samples():\n    while True:\n        pass\n"),
            "data: {evaluation: gen.data:samples}\nlimits: {timeout_s: 3}\n",
        ),
        1,
        "data-invalid",
        "",
        f"{P}:5",
    ),
    Case(
        "generator-raises",
        relu_and(
            _generator("def samples():\n    raise ValueError('no data today')\n"),
            "data: {evaluation: gen.data:samples}\n",
        ),
        1,
        "data-invalid",
        "no data today",
        "gen/data.py:2",
    ),
    Case(
        "generator-module-is-a-fifo",
        relu_and(
            _chain(lambda ws: ws.write("gen/__init__.py", ""), lambda ws: _fifo(ws, "gen/data.py")),
            "data: {evaluation: gen.data:samples}\n",
        ),
        1,
        "data-invalid",
        "data.py is a named pipe (FIFO)",
        f"{P}:5",
    ),
]

RUNTIME_CASES = [
    Case(
        "runtime-local-path-missing",
        relu_with("runtimes: [vendor/missing-runtime]\n"),
        1,
        "runtime-unavailable",
        "build or commit vendor/missing-runtime before the gate runs",
        f"{P}:5",
    ),
    Case(
        "runtime-module-missing",
        relu_with("runtimes: [{requirement: ai-edge-litert, module: no_such.interpreter}]\n"),
        1,
        "runtime-unavailable",
        "no_such",
        f"{P}:5",
    ),
    Case(
        "custom-op-library-is-a-fifo",
        relu_and(
            lambda ws: _fifo(ws, "lib/ops.so"),
            "runtimes: [{requirement: ai-edge-litert, custom_op_registerers: [Reg],"
            " custom_op_libraries: [lib/ops.so]}]\n",
        ),
        1,
        "runtime-unavailable",
        "ops.so is a named pipe (FIFO)",
        f"{P}:5",
    ),
    Case(
        "custom-op-library-missing",
        relu_with(
            "runtimes: [{requirement: ai-edge-litert, custom_op_registerers: [Reg],"
            " custom_op_libraries: [lib/missing.so]}]\n"
        ),
        1,
        "runtime-unavailable",
        "missing.so",
        f"{P}:5",
    ),
    Case(
        "cache-dir-is-a-file",
        relu_and(_cache_is_a_file, "runtimes: [tflite-runtime==2.14.0]\n"),
        2,
        "usage-error",
        "give --cache-dir (or TFLITE_GATE_CACHE) a directory",
    ),
    Case(
        "cache-dir-read-only",
        relu_and(
            _mounted_option("--cache-dir", "size=64k,ro"),
            "runtimes: [ai-edge-litert, tflite-runtime==2.14.0]\n",
        ),
        1,
        "runtime-unavailable",
        "give --cache-dir (or TFLITE_GATE_CACHE) a writable directory",
        f"{P}:5",
        needs="mount",
    ),
]

OUTPUT_CASES = [
    Case(
        "report-is-a-directory",
        relu_and(_report_at("out", directory=True)),
        2,
        None,
        "give --report a file path, not the directory",
    ),
    Case(
        "report-over-the-policy",
        relu_and(_report_at(POLICY)),
        2,
        None,
        "give --report a path other than the policy file",
    ),
    Case(
        "sarif-over-the-model",
        relu_and(args("--sarif", "ws/" + RELU)),
        2,
        "usage-error",
        "the policy reads that file",
    ),
    Case(
        "junit-inside-the-artifacts",
        relu_and(
            lambda ws: ws.args.extend(["--junit", str(ws.path / ".tflite-gate/artifacts/m/j.xml")])
        ),
        2,
        "usage-error",
        "could overwrite a converted model",
    ),
    Case(
        "report-and-sarif-on-one-path",
        relu_and(lambda ws: ws.args.extend(["--sarif", str(ws.report_path)])),
        2,
        "usage-error",
        "different paths",
    ),
    Case(
        "report-under-a-file",
        relu_and(_report_under_a_file),
        2,
        None,
        "is not a directory",
    ),
    Case(
        "report-is-a-fifo",
        relu_and(_report_fifo),
        2,
        None,
        "special file",
    ),
    Case(
        "report-in-a-read-only-directory",
        relu_and(_mounted_output("--report", "size=64k,ro")),
        2,
        None,
        "writable directory",
        needs="mount",
    ),
    Case(
        "sarif-in-a-read-only-directory",
        relu_and(_mounted_output("--sarif", "size=64k,ro")),
        2,
        "usage-error",
        "give --sarif a path in a writable directory",
        needs="mount",
    ),
    Case(
        "sarif-on-a-full-disk",
        relu_and(_mounted_output("--sarif", "size=4k")),
        4,
        "",  # the run passed; the report holds no finding about its own outputs
        "could not write --sarif",
        needs="mount",
    ),
]

USAGE_CASES = [
    Case(
        "workspace-missing",
        lambda ws: ws.args.extend(["--workspace", str(ws.root / "absent")]),
        2,
        "usage-error",
        "give --workspace an existing directory",
    ),
    Case(
        "only-unknown-model",
        relu_and(args("--only", "nope")),
        2,
        "usage-error",
        "nope",
    ),
    Case(
        "artifacts-under-a-file",
        relu_and(_artifacts_under_a_file),
        2,
        "usage-error",
        "give --artifacts a writable directory",
    ),
    Case(
        "artifacts-over-a-source",
        _artifacts_over_a_source,
        2,
        "usage-error",
        "give --artifacts a directory of its own",
    ),
]

ENVIRONMENT_CASES = [
    Case(
        "artifacts-disk-full",
        _chain(
            _factory(DENSE, "variants: [{name: float}, {name: dynamic, quantization: dynamic}]\n"),
            lambda ws: ws.args.extend(["--artifacts", str(ws.mount("art", "size=4k"))]),
        ),
        1,
        "environment-error",
        "free disk space, or give --artifacts a directory with room",
        needs="mount",
    ),
    Case(
        "temporary-disk-full",
        _chain(_factory(DENSE), _tmpdir_full),
        1,
        "environment-error",
        "free disk space, or set TMPDIR to a directory with room",
        needs="mount",
    ),
    Case(
        "artifacts-read-only",
        relu_and(_mounted_option("--artifacts", "size=64k,ro")),
        2,
        "usage-error",
        "give --artifacts a writable directory: cannot create artifacts in",
        needs="mount",
    ),
    Case(
        "variant-names-that-were-worker-files",
        _factory(
            DENSE,
            "variants: [{name: load.json}, {name: reference}, {name: v}, {name: v.tflite}]\n",
        ),
        0,
        "",
        "",
    ),
]

ACTION_CASES = [
    Case(
        "action-bad-fail-on",
        relu_and(inputs(fail_on="sometimes")),
        2,
        "usage-error",
        "fail-on must be",
        via="action",
    ),
    Case(
        "action-bad-comment",
        relu_and(inputs(comment="always")),
        2,
        "usage-error",
        "comment must be update or off",
        via="action",
    ),
    Case(
        "action-token-with-newline",
        relu_and(inputs(github_token=TOKEN + "\n::error::injected")),
        2,
        "usage-error",
        "github-token contains a control character",
        via="action",
    ),
    Case(
        "action-token-with-space",
        relu_and(inputs(github_token="ghs abc")),
        2,
        "usage-error",
        "github-token contains white space",
        via="action",
    ),
    Case(
        "action-working-directory-outside",
        relu_and(inputs(working_directory="../..")),
        2,
        None,
        "outside the repository",
        via="action",
    ),
    Case(
        "action-working-directory-missing",
        relu_and(inputs(working_directory="nowhere")),
        2,
        None,
        "is not a directory",
        via="action",
    ),
    Case(
        "action-report-outside",
        relu_and(inputs(report="../../r.json")),
        2,
        None,
        "outside the repository",
        via="action",
    ),
    Case(
        "action-sarif-outside",
        relu_and(inputs(sarif="/tmp/r.sarif")),
        2,
        "usage-error",
        "sarif '/tmp/r.sarif' is outside the repository",
        via="action",
    ),
    Case(
        "action-only-unknown",
        relu_and(inputs(only="nope")),
        2,
        "usage-error",
        "nope",
        via="action",
    ),
    Case(
        "action-policy-missing",
        relu_and(inputs(policy="none.yml")),
        2,
        "policy-invalid",
        "the `policy` input the policy's path: none.yml does not exist",
        None,
        via="action",
    ),
]

EVENT_CASES = [
    Case(
        "event-is-a-fifo",
        relu_and(_runner_fifo("event.json")),
        0,
        "",
        "sticky comment skipped: cannot read the event file",
        via="action",
    ),
    Case(
        "step-summary-is-a-fifo",
        relu_and(_runner_fifo("summary.md")),
        0,
        "",
        "summary.md is a named pipe (FIFO)",
        via="action",
    ),
    Case(
        "step-outputs-is-a-fifo",
        relu_and(_runner_fifo("output.txt")),
        0,
        "",
        "output.txt is a named pipe (FIFO)",
        via="action",
    ),
    Case(
        "event-is-a-list",
        relu_and(_event("pull_request", "[1, 2]")),
        0,
        "",
        "sticky comment skipped",
        via="action",
    ),
    Case(
        "event-is-not-json",
        relu_and(_event("pull_request", "{not json")),
        0,
        "",
        "sticky comment skipped",
        via="action",
    ),
    Case(
        "event-number-is-a-string",
        relu_and(_event("pull_request", '{"pull_request": {"number": "7"}}')),
        0,
        "",
        "sticky comment skipped",
        via="action",
    ),
    Case(
        "event-pull-request-is-a-number",
        relu_and(_event("pull_request_target", '{"pull_request": 5}')),
        0,
        "",
        "sticky comment skipped",
        via="action",
    ),
    Case(
        "event-issue-number-is-fractional",
        relu_and(
            _event("issue_comment", '{"issue": {"pull_request": {"url": "u"}, "number": 1.5}}')
        ),
        0,
        "",
        "sticky comment skipped",
        via="action",
    ),
]

CASES = [
    *POLICY_CASES,
    *PATH_CASES,
    *MODEL_CASES,
    *DATA_CASES,
    *RUNTIME_CASES,
    *OUTPUT_CASES,
    *USAGE_CASES,
    *ENVIRONMENT_CASES,
    *ACTION_CASES,
    *EVENT_CASES,
]


# --------------------------------------------------------------------------- running a row


def _mounting(prefix: list[str], tmpfs: list[tuple[Path, str]]) -> list[str]:
    """Run the command in a private mount namespace with these tmpfs mounted first."""
    if not tmpfs:
        return prefix
    mounts = " && ".join(f"mount -t tmpfs -o {options} tmpfs '{point}'" for point, options in tmpfs)
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'{mounts} && exec "$@"',
        "sh",
        *prefix,
    ]


def _run(case: Case, ws: Workspace) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ws.env}
    capabilities = list(AS_ORDINARY_USER) if ws.drop_capabilities else []
    if case.via == "cli":
        command = [
            *capabilities,
            *(sys.executable, "-m", "tflite_gate", "check", "--quiet"),
            *("--workspace", str(ws.path), "--report", str(ws.report_path), *ws.args),
        ]
        return subprocess.run(
            _mounting(command, ws.tmpfs),
            capture_output=True,
            text=True,
            timeout=case.timeout_s,
            check=False,
            env=env,
            cwd=ws.root,
        )
    event_path = None
    event_name = "push"
    if ws.event is not None:
        event_name, content = ws.event
        event_path = ws.root / "event.json"
        event_path.write_text(content, encoding="utf-8")
    if "event.json" in ws.fifos:
        event_name, event_path = "pull_request", ws.root / "event.json"
    runner = action_env(
        ws.path,
        ws.root,
        {"github-token": TOKEN, "comment": "update", **ws.inputs},
        event_name=event_name,
        event_path=event_path,
    )
    for name in ws.fifos:  # a FIFO where the runner gives a file: nobody ever opens its end
        (ws.root / name).unlink(missing_ok=True)
        os.mkfifo(ws.root / name)
    runner.update(ws.env)
    return run_entrypoint(
        ws.path, runner, prefix=tuple(_mounting(capabilities, ws.tmpfs)), timeout=case.timeout_s
    )


def _location_matches(found: dict[str, Any] | None, expected: str | None) -> bool:
    if expected is None:
        return found is None
    if found is None:
        return False
    parts = [found["path"], found.get("line"), found.get("column")]
    wanted = expected.split(":")
    return [str(part) for part in parts[: len(wanted)]] == wanted


def _params() -> list[Any]:
    """Every row starts the gate as a process: all of them are in the slow tier."""
    return [pytest.param(case, id=case.id, marks=[pytest.mark.slow]) for case in CASES]


def test_the_matrix_is_large_enough() -> None:
    assert len(CASES) >= 80
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", _params())
def test_bad_input(tmp_path: Path, case: Case) -> None:
    if case.needs == "mount" and not MOUNTS:
        pytest.skip("this machine allows no private mount namespace (unshare --mount)")
    ws = Workspace(tmp_path)
    case.setup(ws)
    ws.path.mkdir(exist_ok=True)
    report_path = ws.report_path if case.via == "cli" else ws.path / "tflite-gate-report.json"
    before = report_path.read_bytes() if report_path.is_file() else None
    completed = _run(case, ws)
    output = completed.stdout + completed.stderr
    assert "Traceback" not in output, output[-4000:]
    assert completed.returncode == case.exit, output[-4000:]
    if case.rule is None:
        assert case.words in output, output[-4000:]
        after = report_path.read_bytes() if report_path.is_file() else None
        assert after == before, "a report was written although its own path is the problem"
        return
    report = json.loads(report_path.read_text(encoding="utf-8"))
    jsonschema.validate(report, SCHEMA)
    if case.rule == "":  # the verdict stands; what went wrong is on the log
        assert report["verdict"] == "pass", report["findings"]
        assert case.words in output, output[-4000:]
        return
    matching = [
        f for f in report["findings"] if f["rule"] == case.rule and case.words in f["message"]
    ]
    assert matching, json.dumps(report["findings"], indent=1)[:4000]
    assert any(_location_matches(f["location"], case.location) for f in matching), matching

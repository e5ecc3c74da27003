"""A Docker engine of the tests' own, and the Action's image built from the Dockerfile.

Docker Hub is not reachable from the machines these tests run on, and no daemon runs
there by default. So, as root: Debian's `docker.io` and `mmdebstrap` are installed if
missing, a daemon is started with its own socket, state and exec directories (no
iptables, no bridge: containers use the host network), `python:3.11-slim` is replaced
by a stand-in built from Debian bookworm (Python 3.11, pip, venv) when the engine does
not have it, and the daemon is stopped again at the end. Images live in a data root
that outlives the tests, so a second run on the same machine reuses the base image
and the dependency layer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BASE_IMAGE = "python:3.11-slim"
DATA_ROOT = Path(os.environ.get("TFLITE_GATE_DOCKER_ROOT", "/var/lib/tflite-gate-docker"))
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Package traffic may pass a TLS-intercepting proxy: the stand-in trusts the same CAs.
EXTRA_CA_CERTIFICATES = Path("/usr/local/share/ca-certificates")


class EngineUnavailableError(Exception):
    """No Docker engine can be started here (not root, no apt, no kernel support)."""


def _run(
    argv: Sequence[str], *, timeout: float, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def _install_packages() -> None:
    """Debian's docker.io and mmdebstrap, unless both tools are already here."""
    if shutil.which("dockerd") and shutil.which("mmdebstrap"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise EngineUnavailableError("dockerd/mmdebstrap are missing and cannot be installed here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "docker.io", "mmdebstrap"],
    ):
        done = _run(argv, timeout=900, env=env)
        if done.returncode != 0:
            raise EngineUnavailableError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")


@dataclass
class Engine:
    """A running daemon; `docker(...)` runs the client against it."""

    host: str  # what DOCKER_HOST says, e.g. unix:///tmp/.../docker.sock

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(
        self, *argv: str, timeout: float = 600, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return _run(["docker", *argv], timeout=timeout, env=self.env, input=input_text)

    def must(self, *argv: str, timeout: float = 600) -> str:
        done = self.docker(*argv, timeout=timeout)
        if done.returncode != 0:
            raise AssertionError(f"docker {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def has_image(self, tag: str) -> bool:
        return self.docker("image", "inspect", tag, timeout=60).returncode == 0


@contextlib.contextmanager
def running_engine() -> Iterator[Engine]:
    """Start a daemon of our own for the block; stop it (and its containers) after.

    With TFLITE_GATE_DOCKER_HOST set (a CI runner's own daemon, as in the release
    workflow), that engine is used as it is and left running.
    """
    existing = os.environ.get("TFLITE_GATE_DOCKER_HOST")
    if existing:
        yield Engine(host=existing)
        return
    _install_packages()
    if os.geteuid() != 0:
        raise EngineUnavailableError("starting a Docker daemon needs root")
    state = Path(tempfile.mkdtemp(prefix="tflite-gate-dockerd-"))
    socket, log = state / "docker.sock", state / "dockerd.log"
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as stream:
        daemon = subprocess.Popen(
            [
                "dockerd",
                *("--iptables=false", "--ip6tables=false", "--bridge=none"),
                *("--storage-driver=overlay2", f"--data-root={DATA_ROOT}"),
                *(f"--exec-root={state / 'exec'}", f"--pidfile={state / 'dockerd.pid'}"),
                f"--host=unix://{socket}",
            ],
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    engine = Engine(host=f"unix://{socket}")
    try:
        deadline = time.monotonic() + 60
        while engine.docker("version", timeout=30).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise EngineUnavailableError(f"dockerd did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield engine
    finally:
        leftovers = engine.docker("ps", "-aq", timeout=60).stdout.split()
        if leftovers:
            engine.docker("rm", "-f", *leftovers, timeout=120)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(state, ignore_errors=True)


def _stand_in_hooks() -> list[str]:
    return [
        f'cp {EXTRA_CA_CERTIFICATES}/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true',
        'chroot "$1" update-ca-certificates',
        'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
        'printf "[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n" > "$1/etc/pip.conf"',
    ]


def ensure_base_image(engine: Engine) -> float:
    """`python:3.11-slim`, or a Debian bookworm stand-in; seconds it took (0: present)."""
    if engine.has_image(BASE_IMAGE):
        return 0.0
    started = time.monotonic()
    hooks = [argument for hook in _stand_in_hooks() for argument in ("--customize-hook", hook)]
    rootfs = subprocess.Popen(
        [
            "mmdebstrap",
            "--variant=apt",
            "--format=tar",
            "--include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates",
            *hooks,
            "bookworm",
            "-",
            DEBIAN_MIRROR,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    imported = subprocess.run(
        ["docker", "import", "-", BASE_IMAGE],
        stdin=rootfs.stdout,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=engine.env,
    )
    assert rootfs.stdout is not None
    rootfs.stdout.close()
    _, errors = rootfs.communicate(timeout=900)
    if rootfs.returncode != 0 or imported.returncode != 0:
        raise AssertionError(
            f"building the {BASE_IMAGE} stand-in failed:\n{errors.decode()[-3000:]}\n"
            f"{imported.stderr}"
        )
    return time.monotonic() - started


def build_image(engine: Engine, context: Path, tag: str) -> float:
    """`docker build` of the repository's Dockerfile, as a release would; seconds taken."""
    started = time.monotonic()
    engine.must("build", "--network", "host", "--tag", tag, str(context), timeout=1800)
    return time.monotonic() - started


def image_size(engine: Engine, tag: str) -> int:
    return int(engine.must("image", "inspect", "--format", "{{.Size}}", tag, timeout=60))

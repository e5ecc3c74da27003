"""Where a run happened: package versions, the machine, and the report stamped with them.

Read from metadata, never by importing TensorFlow, and light to import: a report for
a bad policy needs it before anything heavy is loaded.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from importlib import metadata

from tflite_gate import __version__
from tflite_gate.policy.load import default_memory_mb, machine_memory_mb
from tflite_gate.report.model import EnvironmentInfo, Report, Tool

ENVIRONMENT_PACKAGES = ("tensorflow", "ai-edge-litert", "keras", "numpy", "tflite-gate")
# TensorFlow ships one `tensorflow` module under several distribution names; the
# Action's image has the CPU build (the same converter, without CUDA kernels).
_SAME_PACKAGE = {"tensorflow": ("tensorflow", "tensorflow-cpu")}


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, read from metadata (no import).

    `tensorflow` is also found as `tensorflow-cpu`: a policy asking for a TensorFlow
    version means the module, whichever build provides it.
    """
    for name in _SAME_PACKAGE.get(distribution.lower(), (distribution,)):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def environment() -> EnvironmentInfo:
    """Versions that explain a result; read from metadata, without importing TensorFlow."""
    return EnvironmentInfo(
        python=platform.python_version(),
        platform=f"{platform.system()}-{platform.machine()}",
        packages={name: installed_version(name) for name in ENVIRONMENT_PACKAGES},
        default_memory_mb=default_memory_mb(machine_memory_mb()),
    )


def new_report() -> Report:
    """An empty report stamped with the tool, the start time and the environment."""
    return Report(
        tool=Tool(version=__version__),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        environment=environment(),
    )

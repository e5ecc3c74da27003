"""A new report, stamped with the tool, the start time and where the run happens."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

from tflite_gate import __version__
from tflite_gate.report.model.report import EnvironmentInfo, Report, Tool
from tflite_gate.support.environment import (
    ENVIRONMENT_PACKAGES,
    default_memory_mb,
    installed_version,
    machine_memory_mb,
)


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

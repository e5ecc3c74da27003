"""The machine a run happens on: package versions and the memory a worker may use."""

from __future__ import annotations

import platform
from importlib import metadata

import pytest

from tflite_gate import __version__
from tflite_gate.report.model.stamp import environment, new_report
from tflite_gate.support.environment import (
    MAX_DEFAULT_MEMORY_MB,
    MIN_DEFAULT_MEMORY_MB,
    default_memory_mb,
    installed_version,
    machine_memory_mb,
)


@pytest.mark.parametrize(
    ("total_mb", "expected"),
    [
        (None, MAX_DEFAULT_MEMORY_MB),  # unknown machine: the cap
        (1536, MIN_DEFAULT_MEMORY_MB),  # a tiny machine still fits TensorFlow
        (7168, 3584),  # a 7 GB runner: half
        (16384, 8192),
        (262144, MAX_DEFAULT_MEMORY_MB),  # a big shared machine: capped
    ],
)
def test_default_memory_limit_is_half_the_machine_capped(
    total_mb: int | None, expected: int
) -> None:
    assert default_memory_mb(total_mb) == expected


def test_machine_memory_is_read_and_no_more_than_physical_memory() -> None:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    measured = machine_memory_mb()
    assert measured is not None
    assert 0 < measured <= total_kb // 1024 + 1


def test_versions_are_read_from_metadata() -> None:
    assert installed_version("numpy") == metadata.version("numpy")
    assert installed_version("no-such-distribution-here") is None


def test_the_environment_names_the_python_the_packages_and_the_memory_limit() -> None:
    info = environment()
    assert info.python == platform.python_version()
    assert info.packages["tflite-gate"] == __version__
    assert info.default_memory_mb == default_memory_mb(machine_memory_mb())


def test_a_new_report_is_stamped_with_the_tool_and_the_environment() -> None:
    report = new_report()
    assert report.tool.version == __version__
    assert report.started_at.endswith("+00:00")
    assert report.environment == environment()

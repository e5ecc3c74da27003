"""The machine a run happens on: package versions and the memory a worker may use."""

from __future__ import annotations

from importlib import metadata

import pytest

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

"""A new report is stamped with the tool, when the run started and where it runs."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

from tflite_gate import __version__
from tflite_gate.report.model import REPORT_SCHEMA_VERSION
from tflite_gate.report.model.stamp import environment, new_report
from tflite_gate.rules import make_finding
from tflite_gate.support.environment import (
    ENVIRONMENT_PACKAGES,
    default_memory_mb,
    installed_version,
    machine_memory_mb,
)


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


def test_every_package_the_gate_depends_on_is_listed_with_its_version() -> None:
    info = environment()
    assert tuple(info.packages) == ENVIRONMENT_PACKAGES
    assert info.packages == {name: installed_version(name) for name in ENVIRONMENT_PACKAGES}
    assert info.platform == f"{platform.system()}-{platform.machine()}"
    assert info.jobs is None  # set by the run, once it knows how many workers it runs


def test_the_start_time_is_now_to_the_second() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    started = datetime.fromisoformat(new_report().started_at)
    after = datetime.now(UTC)
    assert before <= started <= after
    assert started.microsecond == 0


def test_a_new_report_is_empty_and_its_own() -> None:
    first, second = new_report(), new_report()
    first.add([make_finding("divergence", "m: diverged", model="m")])
    assert second.findings == [] and second.models == []
    assert second.verdict == "pass" and second.stopped is None
    assert second.schema_version == REPORT_SCHEMA_VERSION

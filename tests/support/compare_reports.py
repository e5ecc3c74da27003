"""Compare the JSON reports two versions of the gate wrote for the same tests.

    TFLITE_GATE_REPORT_ARCHIVE=before pytest ...   # on the old version
    TFLITE_GATE_REPORT_ARCHIVE=after pytest ...    # on the new one
    python tests/support/compare_reports.py before after

Each archived report is keyed by its test (without its file, so tests may move) and
its place under the test's temporary directory (`tests/support/report_archive/`). What may differ between two equal runs is left
out: times and durations, latency, cache use, job count, temporary paths and the
random names of scratch directories. A restructuring of the code must leave every
other byte of every report the same.

A report of an earlier schema version is first read as the gate reads it
(`upgrade_report`): the `details` keys that became typed fields of a finding
(`DETAILS_TO_FIELDS`, key -> field) move there, and `stopped` is derived, so a
version-1 report compares equal to the version-2 report the same run writes.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tflite_gate.findings import SUBJECT_FIELDS
from tflite_gate.report.model import upgrade_report

DETAILS_TO_FIELDS = {name: name for name in SUBJECT_FIELDS}
"""Schema version 1's `details` key -> the finding's typed field (same names)."""
_VOLATILE_TOP = {"started_at", "duration_s", "timings"}
_VOLATILE_ANYWHERE = {
    "timings",
    "cache",
    "latency_ms",
    "duration_s",
    "peak_rss_mb",
    "started_at",  # also the baseline's, inside `baseline`
}
_PATHS = [
    (re.compile(r"/tmp/pytest-of-[^/]+/pytest-\d+/"), "<tmp>/"),
    (re.compile(r"tflite-gate-(?:step-|init-)?[A-Za-z0-9_]{8}\b"), "tflite-gate-<scratch>"),
    (re.compile(r"\b\d+(?:\.\d+)? s\b"), "<seconds> s"),
    (re.compile(r"peak \d+ MB"), "peak <n> MB"),
    # TensorFlow's C++ log prefix: time, thread id.
    (re.compile(r"\b[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ "), "<log prefix> "),
    (re.compile(r"Took \d+ microseconds"), "Took <n> microseconds"),
    # Frames of the gate's own code and of installed packages in a converter's call
    # sites: where the code lives, and its lines, are what a restructuring moves.
    (re.compile(r'"[^"]*/(?:tflite_gate|site-packages)/[^"]*":\d+:\d+'), '"<code>"'),
    # TensorFlow numbers the functions a process traced: a pooled worker's history.
    (re.compile(r"(__inference_[A-Za-z_]+?)_\d+"), r"\1_<n>"),
    # A runtime environment's cache key hashes the Python it was made for.
    (re.compile(r"runtimes/[0-9a-f]{16}\b"), "runtimes/<key>"),
]

Mapping = Callable[[dict[str, Any]], dict[str, Any]]


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in _VOLATILE_ANYWHERE}
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    if isinstance(value, str):
        for pattern, replacement in _PATHS:
            value = pattern.sub(replacement, value)
    return value


def normalized(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what two equal runs may differ in."""
    same = {k: v for k, v in report.items() if k not in _VOLATILE_TOP}
    environment = dict(same.get("environment", {}))
    environment.pop("jobs", None)
    same["environment"] = environment
    result: dict[str, Any] = _without_volatile(same)
    return result


def differences(before: Any, after: Any, where: str = "") -> list[tuple[str, str]]:
    """Every place (a dotted path) where two JSON values differ, with what each side holds."""
    if type(before) is not type(after):
        return [(where or ".", f"{before!r} != {after!r}")]
    if isinstance(before, dict):
        found: list[tuple[str, str]] = []
        for key in sorted(set(before) | set(after)):
            if key not in before or key not in after:
                found.append(
                    (f"{where}.{key}", f"only in {'after' if key not in before else 'before'}")
                )
            else:
                found += differences(before[key], after[key], f"{where}.{key}")
        return found
    if isinstance(before, list):
        if len(before) != len(after):
            return [(where, f"{len(before)} items != {len(after)}")]
        return [
            item
            for index, (one, other) in enumerate(zip(before, after, strict=True))
            for item in differences(one, other, f"{where}[{index}]")
        ]
    return [] if before == after else [(where, f"{before!r} != {after!r}")]


def _archive(directory: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in directory.glob("*.json"):
        entry = json.loads(path.read_text(encoding="utf-8"))
        found[entry["key"]] = entry["report"]
    return found


_FAMILIES = {
    "metrics": re.compile(r"\.(metrics\[\d+\]|tightest|worst_sample)"),
    "size": re.compile(r"\.inspection\.size_bytes$"),
}


def _family(where: str) -> str | None:
    """What kind of measurement a place holds: if one place of a kind varies between two
    runs of the same code (random weights, Keras naming layers by process history), every
    place of that kind in that report may."""
    return next((name for name, pattern in _FAMILIES.items() if pattern.search(where)), None)


def compare(
    before_dir: Path,
    after_dir: Path,
    mapping: Mapping = upgrade_report,
    noise_dir: Path | None = None,
) -> int:
    """Print what differs; 0 when every report both archives hold is the same.

    `noise_dir`: a second run of the old version. A place that differs between the two
    old runs (unseeded weights, a cancel race, Keras naming layers by process history)
    is run-to-run noise, and differing there is not counted against the new version.
    """
    before, after = _archive(before_dir), _archive(after_dir)
    noise = _archive(noise_dir) if noise_dir is not None else {}
    both = sorted(set(before) & set(after))
    differing, noisy = [], []
    for key in both:
        found = differences(normalized(mapping(before[key])), normalized(after[key]))
        if not found:
            continue
        known: set[str] = set()
        if key in noise:
            known = {
                where for where, _ in differences(normalized(before[key]), normalized(noise[key]))
            }
        unstable = {_family(where) for where in known} - {None}
        real = [
            (where, what)
            for where, what in found
            if where not in known and _family(where) not in unstable
        ]
        (differing if real else noisy).append((key, real or found))
    for key, found in differing:
        print(f"DIFFERS {key}\n" + "".join(f"    {where}: {what}\n" for where, what in found[:3]))
    for key, found in noisy:
        print(f"NOISE {key}: {found[0][0]}")
    print(
        f"{len(both)} reports compared: {len(both) - len(differing) - len(noisy)} equal, "
        f"{len(noisy)} differ only where two runs of the old version differ too, "
        f"{len(differing)} differ; {len(set(before) - set(after))} only before, "
        f"{len(set(after) - set(before))} only after"
    )
    return 1 if differing else 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    noise_path = None
    if "--noise" in arguments:
        at = arguments.index("--noise")
        noise_path = Path(arguments[at + 1])
        del arguments[at : at + 2]
    sys.exit(compare(Path(arguments[0]), Path(arguments[1]), noise_dir=noise_path))

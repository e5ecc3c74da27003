"""Helpers the check families share: where a setting is written, which limit a worker
was killed at and what to raise, a fixed batch to suggest, version order.
"""

from __future__ import annotations

from typing import Any

from tflite_gate.findings import Location
from tflite_gate.policy.resolve import ModelConfig, Setting
from tflite_gate.report.model import TensorInfo
from tflite_gate.tflite.runtime_versions import runtime_version_less


def setting_location(setting: Setting[Any], config: ModelConfig) -> Location:
    """Where the setting is written, else the model's source: a finding always lands somewhere."""
    return setting.location or config.source_location


def crash_location(cause: str | None, config: ModelConfig) -> Location:
    """A worker killed at a limit points at that limit's setting, where one is written."""
    if cause == "timeout":
        return setting_location(config.timeout_s, config)
    if cause == "memory":
        return setting_location(config.memory_mb, config)
    return config.source_location


def raise_limit(key: str, setting: Setting[Any], unit: str, when: str) -> str:
    """`raise limits.timeout_s (1 s, at tflite-gate.yml:7:16) if ...`: a limit a worker
    was killed at, with its value and where it is written."""
    written = f"at {setting.location}" if setting.location else "the default"
    return f"raise {key} ({setting.value:g} {unit}, {written}) {when}"


def limit_action(cause: str | None, config: ModelConfig, work: str) -> str | None:
    """What to raise when the conversion worker was killed at a limit; None otherwise."""
    if cause == "timeout":
        return raise_limit(
            "limits.timeout_s", config.timeout_s, "s", f"if {work} just takes longer"
        )
    if cause == "memory":
        return raise_limit(
            "limits.memory_mb", config.memory_mb, "MB", "if the machine has the memory"
        )
    return None


def _dimension(size: int) -> str:
    return str(size) if size >= 0 else "<size>"


def fixed_batch_hint(inputs: list[TensorInfo]) -> str | None:
    """`set a fixed batch: input_shapes: {x: [1, 5, 3]}` when some input's batch is dynamic.

    Other unknown dimensions stay placeholders: a guessed size would convert a model
    that is useless on real data.
    """
    if not any(tensor.shape and tensor.shape[0] < 0 for tensor in inputs):
        return None
    shapes = ", ".join(
        f"{tensor.name}: [{', '.join(['1', *(_dimension(d) for d in tensor.shape[1:])])}]"
        for tensor in inputs
        if tensor.shape
    )
    return f"set a fixed batch: input_shapes: {{{shapes}}}"


def version_less(a: str, b: str) -> bool:
    """Runtime version `a` before `b`; False when either is no version (a baseline from
    elsewhere, or metadata the gate cannot read, must not raise in a check)."""
    try:
        return runtime_version_less(a, b)
    except ValueError:
        return False

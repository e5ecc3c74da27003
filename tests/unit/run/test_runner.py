"""The Runner protocol's types: a run's result, its typed facts, and an unavailable runtime."""

from __future__ import annotations

import typing
from pathlib import Path

from tflite_gate.run.runner import (
    Delegation,
    MemoryUse,
    RunOutcome,
    RunResult,
    RuntimeUnavailable,
)


def _result(status: RunOutcome, **facts: typing.Any) -> RunResult:
    return RunResult(status=status, phase=None, sample=None, signal=None, message=None, **facts)


def test_only_an_ok_run_is_ok() -> None:
    outcomes = typing.get_args(RunOutcome)
    assert "refused" in outcomes
    assert [o for o in outcomes if _result(o).ok] == ["ok"]


def test_facts_only_some_runners_know_are_typed_and_empty_by_default() -> None:
    plain = _result("ok")
    assert (plain.delegation, plain.memory) == (None, None)
    delegated = _result(
        "ok",
        delegation=Delegation(
            "GPU", accelerated_ops=108, fallback_ops=183, fallbacks=("DEQUANTIZE",)
        ),
        memory=MemoryUse(arena_bytes=12576),
    )
    assert delegated.delegation is not None and delegated.delegation.fallback_ops == 183
    assert delegated.memory is not None and delegated.memory.peak_rss_mb is None


def test_an_unavailable_runtime_keeps_its_log_for_the_user(tmp_path: Path) -> None:
    error = RuntimeUnavailable("pip failed", log_path=tmp_path / "pip.log")
    assert (str(error), error.log_path) == ("pip failed", tmp_path / "pip.log")
    assert RuntimeUnavailable("no module").log_path is None

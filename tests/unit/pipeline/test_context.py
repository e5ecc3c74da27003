"""What every stage of a run shares: its places, one progress line at a time, and the
findings about the machine or the inputs (a full disk, a cancelled run, a FIFO where a
file belongs) that any stage may hit."""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.pipeline_plans import POLICY, planned_models, run_context
from tflite_gate.findings import Location
from tflite_gate.pipeline.context import (
    RunContext,
    cancelled_finding,
    done_converting,
    environment_finding,
    serialized,
    special_data_files,
    special_file_problem,
    unless_reported,
)
from tflite_gate.policy.plan import ModelPlan
from tflite_gate.report.model import ModelReport
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding
from tflite_gate.run.protocol import EvaluationResult
from tflite_gate.support.cancel import Cancelled
from tflite_gate.support.run_options import OptionNames


def _context(workspace: Path, *plans: ModelPlan, **fields: Any) -> RunContext:
    """Artifacts where the CLI puts them; scratch and cache outside the workspace."""
    return run_context(
        workspace,
        *plans,
        artifacts=workspace / ".tflite-gate" / "artifacts",
        scratch=workspace.parent / "scratch",
        cache_dir=workspace.parent / "cache",
        **fields,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "repo").mkdir()
    return tmp_path / "repo"


# --------------------------------------------------------------------------- places


def test_each_model_writes_in_places_of_its_own(workspace: Path) -> None:
    a, b = planned_models(workspace, "{name: a, source: a.keras}", "{name: b, source: b.keras}")
    context = _context(workspace, a, b)
    first, second = context.places(a.config), context.places(b.config)
    assert first.scratch == context.scratch / "model-0"
    assert second.scratch == context.scratch / "model-1"
    assert second.artifact("int8") == context.artifacts / "b" / "int8.tflite"


def test_each_models_requests_are_its_own(workspace: Path) -> None:
    a, b = planned_models(
        workspace,
        "{name: a, source: a.keras}",
        "{name: b, source: b.keras, runtimes: [ai-edge-litert, 'tflite-runtime==2.14.0']}",
    )
    context = _context(workspace, a, b)
    assert [spec.name for spec in context.requests_for(a.config).runtimes] == ["ai-edge-litert"]
    assert len(context.requests_for(b.config).runtimes) == 2


def test_paths_are_named_from_the_workspace_when_they_are_in_it(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    context = _context(workspace, plan)
    assert context.relative(workspace / "models" / "m.keras") == "models/m.keras"
    assert context.relative(context.cache_dir / "envs") == str(context.cache_dir / "envs")


# --------------------------------------------------------------------------- progress


def test_progress_from_many_threads_comes_out_one_whole_line_at_a_time() -> None:
    written: list[str] = []

    def slow_writer(message: str) -> None:  # a terminal that takes a while per character
        for char in message:
            written.append(char)
            threading.Event().wait(0.0001)
        written.append("\n")

    say = serialized(slow_writer)
    lines = [f"[model-{i}] {'x' * 20}" for i in range(8)]
    threads = [threading.Thread(target=say, args=(line,)) for line in lines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted("".join(written).splitlines()) == sorted(lines)


# --------------------------------------------------------------------------- conversions


def test_converting_models_are_crossed_off_one_by_one(workspace: Path) -> None:
    a, b = planned_models(workspace, "{name: a, source: a.keras}", "{name: b, source: b.keras}")
    context = _context(workspace, a, b, converting={"a", "b"})
    done_converting(a.config, context)
    assert context.converting == {"b"}
    done_converting(b.config, context)
    done_converting(b.config, context)  # a model that fails twice is crossed off once
    assert context.converting == set()


# --------------------------------------------------------------------------- the machine


def _full(path: Path | None) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", None if path is None else str(path))


def test_a_full_artifacts_directory_names_the_option_that_moves_it(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    context = _context(workspace, plan)
    finding = environment_finding(
        _full(context.artifacts / "m" / "int8.tflite"), plan.config, context, "int8"
    )
    assert (finding.rule, finding.model, finding.variant) == ("environment-error", "m", "int8")
    assert finding.message == (
        "free disk space, or give --artifacts a directory with room: m/int8: "
        ".tflite-gate/artifacts/m/int8.tflite: No space left on device"
    )
    assert finding.errno == "ENOSPC"


def test_the_action_names_no_artifacts_option_it_does_not_have(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    context = _context(workspace, plan, names=OptionNames(artifacts=None))
    finding = environment_finding(_full(context.artifacts / "m.tflite"), plan.config, context)
    assert finding.message.startswith("free disk space: m: .tflite-gate/artifacts/m.tflite:")


def test_a_full_scratch_directory_is_a_temporary_file_moved_by_tmpdir(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    context = _context(workspace, plan)
    finding = environment_finding(_full(context.scratch / "x.npz"), plan.config, context)
    assert finding.message == (
        "free disk space, or set TMPDIR to a directory with room: m: a temporary file in "
        f"{tempfile.gettempdir()}: No space left on device"
    )


def test_an_unwritable_cache_names_the_cache_option(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    context = _context(workspace, plan)
    denied = PermissionError(errno.EACCES, "Permission denied", str(context.cache_dir / "envs"))
    finding = environment_finding(denied, plan.config, context)
    assert finding.message == (
        "make it writable (and readable) for the user running the gate, or give --cache-dir "
        f"(or TFLITE_GATE_CACHE) another directory: m: {context.cache_dir / 'envs'}: "
        "Permission denied"
    )


def test_a_failed_write_that_names_no_file_on_a_disk_with_room_is_a_file(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    finding = environment_finding(_full(None), plan.config, _context(workspace, plan))
    assert finding.message == "free disk space: m: a file: No space left on device"


@pytest.mark.slow
def test_a_failed_write_that_names_no_file_finds_the_full_disk(
    workspace: Path, small_disk: Path
) -> None:
    (small_disk / "filler").write_bytes(b"x" * 2048)
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    context = _context(workspace, plan)
    context.artifacts = small_disk
    finding = environment_finding(_full(None), plan.config, context)
    assert finding.message == (
        f"free disk space, or give --artifacts a directory with room: m: {small_disk}: "
        "No space left on device"
    )


# --------------------------------------------------------------------------- cancelled


def test_a_cancelled_run_says_which_model_was_cut_short_and_which_finished() -> None:
    report = new_report()
    report.models = [
        ModelReport(name="a", source="a.keras", timings={"total": 1.0}),
        ModelReport(name="b", source="b.keras"),
    ]
    finding = cancelled_finding(Cancelled("SIGTERM"), report)
    assert finding.rule == "cancelled" and finding.model == "b"
    assert finding.message == "the run was cancelled by SIGTERM while checking b; complete: a"
    assert finding.details == {"signal": "SIGTERM", "finished_models": ["a"]}


def test_a_run_cancelled_in_several_models_names_no_one_model() -> None:
    report = new_report()
    report.models = [ModelReport(name=n, source=f"{n}.keras") for n in ("a", "b")]
    finding = cancelled_finding(Cancelled("SIGINT"), report)
    assert finding.model is None
    assert finding.message == (
        "the run was cancelled by SIGINT while checking a, b; no model finished"
    )


def test_a_run_cancelled_before_any_model_says_so() -> None:
    finding = cancelled_finding(Cancelled("SIGTERM"), new_report())
    assert finding.message == "the run was cancelled by SIGTERM; no model finished"


# --------------------------------------------------------------------------- special files


def test_a_regular_model_file_is_no_problem(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    (workspace / "m.keras").write_bytes(b"")
    assert special_file_problem("m.keras", workspace / "m.keras", _context(workspace, plan)) is None


def test_a_fifo_in_a_saved_model_is_refused_by_its_name(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    (workspace / "saved" / "variables").mkdir(parents=True)
    os.mkfifo(workspace / "saved" / "variables" / "variables.index")
    problem = special_file_problem("saved", workspace / "saved", _context(workspace, plan))
    assert problem is not None
    assert problem.startswith("saved/variables/variables.index is a named pipe (FIFO)")


def test_a_factorys_module_is_checked_too(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras}")
    (workspace / "nets").mkdir()
    os.mkfifo(workspace / "nets" / "zoo.py")
    problem = special_file_problem("nets.zoo:build", None, _context(workspace, plan))
    assert problem is not None and problem.startswith("zoo.py is a named pipe (FIFO)")


def test_a_data_generator_that_is_a_fifo_is_data_invalid_at_its_line(workspace: Path) -> None:
    [plan] = planned_models(
        workspace, "{name: m, source: m.keras, data: {calibration: 'gen:samples'}}"
    )
    os.mkfifo(workspace / "gen.py")
    [finding] = special_data_files(plan, _context(workspace, plan))
    assert (finding.rule, finding.model) == ("data-invalid", "m")
    assert finding.message.startswith("m: calibration data: gen.py is a named pipe (FIFO)")
    assert finding.location == Location(path=POLICY, line=3, column=52)
    assert finding.error is not None and finding.error.startswith("gen.py is a named pipe")


def test_data_that_is_no_generator_is_left_to_the_data_checks(workspace: Path) -> None:
    [plan] = planned_models(workspace, "{name: m, source: m.keras, data: {evaluation: data.npz}}")
    os.mkfifo(workspace / "data.npz")  # read in a worker, under its limits
    assert special_data_files(plan, _context(workspace, plan)) == []


# --------------------------------------------------------------------------- one failure once


def test_one_data_source_for_both_roles_fails_once() -> None:
    error = "x: expected shape [4], got [3]"
    calibration = make_finding("data-invalid", "m: calibration data: bad", error=error)
    other = make_finding("data-invalid", "m: calibration data: other", error="another")
    conversion = make_finding("conversion-failed", "m/int8: failed", error=error)
    evaluation = EvaluationResult(ok=False, error=error)
    kept = unless_reported([calibration, other, conversion], evaluation)
    assert kept == [other, conversion]


def test_without_a_failed_evaluation_every_finding_stays() -> None:
    findings = [make_finding("data-invalid", "m: calibration data: bad", error="e")]
    assert unless_reported(findings, None) == findings
    assert unless_reported(findings, EvaluationResult(ok=True)) == findings

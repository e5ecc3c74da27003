"""The status file: one JSON line per phase, on disk before the phase begins, so the
gate still knows where a worker that crashed or hung had got to."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tflite_gate.run.interpreter_worker.status import Status


def test_each_status_line_is_flushed_whole_with_its_sample_and_batch() -> None:
    handle = io.StringIO()
    status = Status(handle)
    status.mark("load")
    status.mark("invoke", 4)
    status.mark("invoke", 16, batch=16)
    lines = [json.loads(line) for line in handle.getvalue().splitlines()]
    assert lines == [
        {"phase": "load"},
        {"phase": "invoke", "sample": 4},
        {"phase": "invoke", "sample": 16, "batch": 16},
    ]
    assert (status.phase, status.sample) == ("invoke", 16)


def test_a_new_status_is_at_the_start_and_has_written_nothing() -> None:
    handle = io.StringIO()
    status = Status(handle)
    assert (status.phase, status.sample, handle.getvalue()) == ("start", None, "")


def test_a_line_is_on_disk_while_its_phase_runs(tmp_path: Path) -> None:
    """A crash right after `mark` loses nothing: another reader already sees the line."""
    path = tmp_path / "status.jsonl"
    with open(path, "a", encoding="utf-8") as handle:
        status = Status(handle)
        status.mark("allocate", 0)
        assert path.read_text(encoding="utf-8") == '{"phase": "allocate", "sample": 0}\n'
        status.mark("invoke")
        assert path.read_text(encoding="utf-8").splitlines()[-1] == '{"phase": "invoke"}'
    assert status.sample is None

"""Every reason a report file cannot be written where it was asked to be, found before the run.

Real paths in a temporary directory. The tests run as root, where permission bits stop
nothing, so unwritable places are ones that fail for root too. `tests/test_outputs.py`
checks the same through the command line, end to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tflite_gate.support.output_paths import (
    DEFAULT_REPORT,
    STDOUT,
    Output,
    output_path_problems,
    report_outputs,
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "tflite-gate.yml").write_text("version: 1\n")
    return root


def _problems(workspace: Path, *outputs: Output, inputs: tuple[Path, ...] = ()) -> list[str]:
    found = output_path_problems(
        outputs,
        policy=workspace / "tflite-gate.yml",
        artifacts=workspace / ".tflite-gate" / "artifacts",
        workspace=workspace,
        inputs=inputs,
    )
    return [problem.message for problem in found]


def test_the_json_report_always_and_the_others_when_asked(tmp_path: Path) -> None:
    names = {"json": "report", "sarif": "sarif", "junit": "junit"}
    assert report_outputs(
        json_path=tmp_path / DEFAULT_REPORT, sarif_path=None, junit_path=None, names=names
    ) == [Output("json", "report", tmp_path / DEFAULT_REPORT)]
    outputs = report_outputs(
        json_path=STDOUT, sarif_path=tmp_path / "s", junit_path=tmp_path / "j", names=names
    )
    assert [(o.format, o.option, o.to_stdout) for o in outputs] == [
        ("json", "report", True),
        ("sarif", "sarif", False),
        ("junit", "junit", False),
    ]


def test_usable_paths_have_no_problem(workspace: Path) -> None:
    outputs = [Output("json", "--report", workspace / "r.json"), Output("junit", "--junit", STDOUT)]
    assert _problems(workspace, *outputs) == []
    assert list(workspace.iterdir()) == [workspace / "tflite-gate.yml"]  # the probe is gone


def test_a_directory_is_not_a_file_path(workspace: Path) -> None:
    assert _problems(workspace, Output("json", "--report", workspace)) == [
        f"give --report a file path, not the directory {workspace}"
    ]


def test_the_policy_and_the_files_it_reads_are_never_overwritten(workspace: Path) -> None:
    model = workspace / "model.tflite"
    model.write_bytes(b"TFL3")
    [policy] = _problems(workspace, Output("json", "--report", workspace / "tflite-gate.yml"))
    [source] = _problems(workspace, Output("sarif", "--sarif", model), inputs=(model,))
    assert policy.startswith("give --report a path other than the policy file ")
    assert source.startswith(f"give --sarif a path other than {model}: the policy reads that file")


def test_a_converted_model_directory_is_no_place_for_a_report(workspace: Path) -> None:
    inside = workspace / ".tflite-gate" / "artifacts" / "relu" / "r.json"
    beside = workspace / ".tflite-gate" / "artifacts" / "r.json"
    beside.parent.mkdir(parents=True)
    [problem] = _problems(workspace, Output("json", "--report", inside))
    assert "could overwrite a converted model or reproducer" in problem
    assert _problems(workspace, Output("json", "--report", beside)) == []


def test_two_outputs_cannot_share_a_path_or_stdout(workspace: Path) -> None:
    same = workspace / "r.out"
    assert _problems(
        workspace, Output("json", "--report", same), Output("junit", "--junit", same)
    ) == [f"give --report and --junit different paths, not both {same}"]
    assert _problems(
        workspace, Output("json", "--report", STDOUT), Output("sarif", "--sarif", STDOUT)
    ) == ["give --sarif a file path: --report already writes to stdout (-)"]


def test_a_path_under_a_regular_file_cannot_be_written(workspace: Path) -> None:
    blocker = workspace / "file"
    blocker.write_text("")
    [problem] = _problems(workspace, Output("json", "--report", blocker / "r.json"))
    assert problem == f"give --report a path in a directory: {blocker} is not a directory"


def test_a_link_in_the_workspace_may_not_lead_out_of_it(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    link = workspace / "r.json"
    link.symlink_to(outside)
    [problem] = _problems(workspace, Output("json", "--report", link))
    assert problem.startswith("give --report a path whose link stays inside the workspace")
    inner = workspace / "real.json"
    inner.write_text("{}")
    link.unlink()
    link.symlink_to(inner)
    assert _problems(workspace, Output("json", "--report", link)) == []

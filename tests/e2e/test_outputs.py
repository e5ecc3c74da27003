"""Report outputs: paths checked before any model work, write failures that spare the rest.

Real processes throughout. The tests run as root, where permission bits stop
nothing, so unwritable places are ones that fail for root too: a path under a
regular file (ENOTDIR), `/proc`, and a file-size limit (RLIMIT_FSIZE, EFBIG) that
makes the large SARIF log fail at write time while the small JSON and JUnit
reports fit, as a disk that fills up during the write would.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.support.action_env import action_env, run_entrypoint
from tests.support.harness import REPO
from tests.support.tflite_builder import build_model, builtin

pytestmark = pytest.mark.slow  # every test here starts processes

POLICY = "version: 1\nmodels:\n  - {name: relu, source: relu.tflite}\n"
SCHEMA = json.loads((REPO / "tflite_gate" / "schemas" / "report.schema.json").read_text())
#: Well above the JSON report and JUnit XML of one tiny model, well below the SARIF log.
FILE_SIZE_LIMIT = 16_000
#: Above every file a check of one tiny model writes (model, samples, outputs) but its
#: JSON report (about 3.6 kB).
REPORT_ONLY = 2_500


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "relu.tflite").write_bytes(build_model([builtin("RELU")]))
    (root / "tflite-gate.yml").write_text(POLICY)
    return root


def _gate(
    workspace: Path, *args: str, report: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`tflite-gate check` in a subprocess; the report path is whatever the test gives."""
    return subprocess.run(
        [
            *(sys.executable, "-m", "tflite_gate", "check", "--quiet"),
            *("--workspace", str(workspace)),
            *("--report", str(report or workspace / "tflite-gate-report.json")),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _no_model_work(workspace: Path) -> None:
    assert not (workspace / ".tflite-gate").exists(), "models were checked before the refusal"


def test_directory_as_report_is_a_usage_error_before_any_model_work(workspace: Path) -> None:
    target = workspace / "out"
    target.mkdir()
    run = _gate(workspace, report=target)
    assert run.returncode == 2, run.stderr
    assert f"tflite-gate: error: give --report a file path, not the directory {target}" in (
        run.stderr
    )
    assert "Traceback" not in run.stdout + run.stderr
    _no_model_work(workspace)


def test_report_over_the_policy_leaves_the_policy_unchanged(workspace: Path) -> None:
    policy = workspace / "tflite-gate.yml"
    run = _gate(workspace, report=policy)
    assert run.returncode == 2, run.stderr
    assert policy.read_text() == POLICY
    assert f"give --report a path other than the policy file {policy}" in run.stderr
    _no_model_work(workspace)


def test_sarif_over_a_model_source_leaves_the_model_unchanged(workspace: Path) -> None:
    model = workspace / "relu.tflite"
    before = model.read_bytes()
    run = _gate(workspace, "--sarif", str(model))
    assert run.returncode == 2, run.stderr
    assert model.read_bytes() == before
    assert f"give --sarif a path other than {model}: the policy reads that file" in run.stderr
    report = json.loads((workspace / "tflite-gate-report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "error"
    [finding] = report["findings"]
    assert finding["rule"] == "usage-error"
    assert finding["message"].startswith(f"give --sarif a path other than {model}")


def test_no_usage_report_over_a_model_source(workspace: Path) -> None:
    model = workspace / "relu.tflite"
    before = model.read_bytes()
    run = _gate(workspace, "--only", "nope", report=model)
    assert run.returncode == 2, run.stderr
    assert model.read_bytes() == before
    assert f"give --report a path other than {model}" in run.stderr


def test_usage_error_still_writes_the_report_it_can(workspace: Path, tmp_path: Path) -> None:
    junit = tmp_path / "gate.xml"
    run = _gate(workspace, "--only", "nope", "--junit", str(junit))
    message = "--only names unknown model(s) nope; the policy has: relu"
    assert run.returncode == 2, run.stderr
    assert run.stderr == f"tflite-gate: error: {message}\n"
    report = json.loads((workspace / "tflite-gate-report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert (report["verdict"], report["policy"]) == ("error", "tflite-gate.yml")
    assert [(f["rule"], f["message"]) for f in report["findings"]] == [("usage-error", message)]
    assert 'name="usage"' in junit.read_text()
    assert 'type="usage-error"' in junit.read_text()
    _no_model_work(workspace)


def test_junit_inside_a_model_artifact_directory_is_refused(workspace: Path) -> None:
    target = workspace / ".tflite-gate" / "artifacts" / "relu" / "relu.tflite"
    run = _gate(workspace, "--junit", str(target))
    assert run.returncode == 2, run.stderr
    assert "give --junit a path outside the model directories of" in run.stderr
    assert not target.exists()


def test_path_under_a_regular_file_is_a_usage_error(workspace: Path) -> None:
    run = _gate(workspace, report=workspace / "relu.tflite" / "report.json")
    assert run.returncode == 2, run.stderr
    assert (
        f"give --report a path in a directory: {workspace / 'relu.tflite'} is not a directory"
        in run.stderr
    )
    assert "Traceback" not in run.stdout + run.stderr
    _no_model_work(workspace)


def test_directory_where_even_root_cannot_create_files(workspace: Path) -> None:
    run = _gate(workspace, "--junit", "/proc/tflite-gate.junit.xml")
    assert run.returncode == 2, run.stderr
    assert "give --junit a path in a writable directory: cannot create files in /proc" in (
        run.stderr
    )
    _no_model_work(workspace)


def test_special_file_is_never_replaced(workspace: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    run = _gate(workspace, "--sarif", str(fifo))
    assert run.returncode == 2, run.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert f"give --sarif a regular file path: {fifo} is a special file" in run.stderr


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_a_write_failure_spares_the_other_outputs_and_is_not_a_gate_failure(
    workspace: Path, tmp_path: Path
) -> None:
    report, sarif, junit = tmp_path / "r.json", tmp_path / "r.sarif", tmp_path / "r.xml"
    completed = subprocess.run(
        [
            sys.executable,
            *("-m", "tflite_gate", "check", "--quiet", "--workspace", str(workspace)),
            *("--report", str(report), "--sarif", str(sarif), "--junit", str(junit)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=_limit_file_size,
    )
    assert completed.returncode == 4, completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    assert f"tflite-gate: error: could not write --sarif {sarif}: File too large" in (
        completed.stderr
    )
    assert json.loads(report.read_text())["verdict"] == "pass"
    assert junit.read_text().startswith("<?xml")
    assert not sarif.exists()
    assert not list(tmp_path.glob(".r.sarif.*")), "a partial temporary file was left behind"


def test_cli_github_format_warns_like_the_action(workspace: Path, tmp_path: Path) -> None:
    sarif, summary = tmp_path / "r.sarif", tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "tflite_gate", "check", "--quiet", "--format", "github"),
            *("--workspace", str(workspace), "--sarif", str(sarif)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        preexec_fn=_limit_file_size,
    )
    assert completed.returncode == 4, completed.stderr
    warnings = [line for line in completed.stdout.splitlines() if line.startswith("::warning ")]
    assert warnings == [
        f"::warning title=tflite-gate output::could not write --sarif {sarif}: File too large; "
        "free space or fix permissions there and run again"
    ]
    assert summary.read_text().startswith("## tflite-gate: PASS")


def _action_env(repository: Path, tmp_path: Path, **inputs: str) -> dict[str, str]:
    return action_env(repository, tmp_path, {"comment": "off", **inputs})


def test_action_warns_about_the_output_it_could_not_write(workspace: Path, tmp_path: Path) -> None:
    env = _action_env(workspace, tmp_path, sarif="out.sarif", junit="out.xml")
    completed = run_entrypoint(workspace, env, preexec_fn=_limit_file_size)
    assert completed.returncode == 4, completed.stdout + completed.stderr
    warnings = [line for line in completed.stdout.splitlines() if line.startswith("::warning ")]
    assert warnings == [
        "::warning title=tflite-gate output::could not write sarif "
        f"{workspace / 'out.sarif'}: File too large; free space or fix permissions there "
        "and run again"
    ]
    assert json.loads((workspace / "tflite-gate-report.json").read_text())["verdict"] == "pass"
    assert (workspace / "out.xml").exists()
    assert "verdict<<" in (tmp_path / "output.txt").read_text()


def test_action_refuses_a_report_over_its_policy(workspace: Path, tmp_path: Path) -> None:
    env = _action_env(workspace, tmp_path, report="tflite-gate.yml")
    completed = run_entrypoint(workspace, env)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert (workspace / "tflite-gate.yml").read_text() == POLICY
    [error] = [line for line in completed.stdout.splitlines() if line.startswith("::error ")]
    assert error.startswith("::error title=usage-error")
    assert "::give report a path other than the policy file" in error


def test_action_input_error_still_writes_the_report(workspace: Path, tmp_path: Path) -> None:
    env = _action_env(workspace, tmp_path, **{"fail-on": "sometimes"})
    completed = run_entrypoint(workspace, env)
    message = "fail-on must be error, warning or never, got 'sometimes'"
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert completed.stdout == f"::error title=tflite-gate input::{message}\n"
    report = json.loads((workspace / "tflite-gate-report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "error"
    assert [(f["rule"], f["message"]) for f in report["findings"]] == [("usage-error", message)]
    _no_model_work(workspace)


def test_action_sarif_paths_start_at_the_repository_root(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    (repository / "ml").mkdir(parents=True)
    (repository / "ml" / "tflite-gate.yml").write_text("version: 1\nmodels: []\n")
    env = _action_env(repository, tmp_path, **{"working-directory": "ml", "sarif": "g.sarif"})
    completed = run_entrypoint(repository, env)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    sarif = json.loads((repository / "ml" / "g.sarif").read_text())
    [result] = sarif["runs"][0]["results"]
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert location == "ml/tflite-gate.yml"
    report = json.loads((repository / "ml" / "tflite-gate-report.json").read_text())
    assert report["findings"][0]["location"]["path"] == "tflite-gate.yml"


# --------------------------------------------------------------------------- links and stdout


def _report_json(run: subprocess.CompletedProcess[str]) -> dict[str, object]:
    report: dict[str, object] = json.loads(run.stdout)
    jsonschema.validate(report, SCHEMA)
    return report


def test_a_link_through_proc_is_refused_and_never_replaced(workspace: Path, tmp_path: Path) -> None:
    """`--report /dev/stdout > f`, without touching the machine's own /dev/stdout."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    redirected = tmp_path / "f"
    with redirected.open("w") as stdout:
        completed = subprocess.run(
            [
                *(sys.executable, "-m", "tflite_gate", "check", "--quiet"),
                *("--workspace", str(workspace), "--report", str(link)),
            ],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
    assert completed.returncode == 2, completed.stderr
    assert link.is_symlink() and str(link.readlink()) == "/proc/self/fd/1"
    assert f"give --report a file path, or - for stdout: {link} is a link through /proc" in (
        completed.stderr
    )
    assert redirected.read_text() == ""
    _no_model_work(workspace)


def test_a_link_in_the_workspace_to_a_file_outside_is_refused(
    workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me\n")
    link = workspace / "tflite-gate-report.json"
    link.symlink_to(outside)
    run = _gate(workspace, report=link)
    assert run.returncode == 2, run.stderr
    assert outside.read_text() == "keep me\n"
    assert link.is_symlink()
    assert f"give --report a path whose link stays inside the workspace: {link} is a link" in (
        run.stderr
    )
    _no_model_work(workspace)


def test_a_link_to_a_regular_file_is_written_through_and_stays_a_link(
    workspace: Path, tmp_path: Path
) -> None:
    (workspace / "reports").mkdir()
    target = workspace / "reports" / "latest.json"
    target.write_text("{}")
    link = workspace / "tflite-gate-report.json"
    link.symlink_to(Path("reports") / "latest.json")
    sarif_target = tmp_path / "elsewhere.sarif"  # a link the user made outside the workspace
    sarif_link = tmp_path / "gate.sarif"
    sarif_link.symlink_to(sarif_target)
    run = _gate(workspace, "--sarif", str(sarif_link), report=link)
    assert run.returncode == 0, run.stderr
    assert link.is_symlink() and sarif_link.is_symlink()
    assert json.loads(target.read_text())["verdict"] == "pass"
    assert json.loads(sarif_target.read_text())["version"] == "2.1.0"


def test_a_link_to_a_directory_is_refused(workspace: Path, tmp_path: Path) -> None:
    link = tmp_path / "junit.xml"
    link.symlink_to(tmp_path)
    run = _gate(workspace, "--junit", str(link))
    assert run.returncode == 2, run.stderr
    assert f"give --junit a link to a regular file, or a file path: {link} leads to" in run.stderr
    assert link.is_symlink()


def test_report_dash_is_json_on_stdout_and_the_summary_on_stderr(workspace: Path) -> None:
    run = _gate(workspace, report=Path("-"))
    assert run.returncode == 0, run.stderr
    report = _report_json(run)
    assert report["verdict"] == "pass"
    assert "Verdict: PASS" in run.stderr and "report: stdout" in run.stderr
    assert not (workspace / "-").exists()


def test_format_json_prints_only_the_report_and_still_writes_the_file(workspace: Path) -> None:
    run = _gate(workspace, "--format", "json")
    assert run.returncode == 0, run.stderr
    assert _report_json(run) == json.loads((workspace / "tflite-gate-report.json").read_text())
    assert "Verdict" not in run.stdout + run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--format", "json", "--sarif", "-"),
            "give --sarif a file path: --format json prints the JSON report on stdout",
        ),
        (
            ("--format", "github", "--report", "-"),
            "give --report a file path with --format github: its workflow commands go to stdout",
        ),
        (("--report", "-", "--junit", "-"), "give --junit a file path: --report already writes"),
    ],
)
def test_two_things_on_stdout_are_a_usage_error(
    workspace: Path, args: tuple[str, ...], message: str
) -> None:
    run = _gate(workspace, *args)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    _no_model_work(workspace)


def test_action_report_input_that_is_a_link_is_written_through(
    workspace: Path, tmp_path: Path
) -> None:
    (workspace / "out").mkdir()
    link = workspace / "gate.json"
    link.symlink_to(Path("out") / "gate.json")
    env = _action_env(workspace, tmp_path, report="gate.json")
    completed = run_entrypoint(workspace, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert link.is_symlink()
    assert json.loads((workspace / "out" / "gate.json").read_text())["verdict"] == "pass"


# --------------------------------------------------------------------------- reports at the edges


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--jobs", "abc"), "argument --jobs: expected a whole number above 0, got 'abc'"),
        (("--jobs", "0"), "argument --jobs: expected a whole number above 0, got '0'"),
        (("--format", "xml"), "argument --format: invalid choice: 'xml'"),
        (("--cache-max-mb", "-5"), "argument --cache-max-mb: expected a whole number above 0"),
    ],
)
def test_a_command_line_error_still_writes_the_report(
    workspace: Path, args: tuple[str, ...], complaint: str
) -> None:
    run = _gate(workspace, *args)
    assert run.returncode == 2, run.stderr
    assert f"tflite-gate check: error: {complaint}" in run.stderr
    assert run.stderr.startswith("usage: tflite-gate check")
    report = json.loads((workspace / "tflite-gate-report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "error"
    [finding] = report["findings"]
    assert finding["rule"] == "usage-error"
    assert finding["message"].startswith(complaint)
    _no_model_work(workspace)


def test_the_summary_never_names_a_report_that_was_not_written(
    workspace: Path, tmp_path: Path
) -> None:
    report = tmp_path / "r.json"
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "tflite_gate", "check", "--quiet"),
            *("--workspace", str(workspace), "--report", str(report)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (REPORT_ONLY, REPORT_ONLY)),
    )
    assert completed.returncode == 4, completed.stderr
    assert f"could not write --report {report}: File too large" in completed.stderr
    assert completed.stdout.rstrip().endswith("report: not written"), completed.stdout
    assert str(report) not in completed.stdout

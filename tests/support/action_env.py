"""The environment the GitHub runner gives a Docker action's entrypoint, for tests.

Inputs arrive as `INPUT_<NAME>` with the name upper-cased and hyphens kept
(`fail-on` → `INPUT_FAIL-ON`), and the file commands (`GITHUB_OUTPUT`,
`GITHUB_STEP_SUMMARY`) are files the step appends to. The caller's own `GITHUB_*` and
`INPUT_*` variables never leak in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.fake_github import PR, TOKEN, FakeGitHub
from tests.support.harness import REPO

ENTRYPOINT = REPO / "entrypoint.py"
NOWHERE = "http://127.0.0.1:9"  # a closed port: a test that must not reach the API fails fast


def action_env(
    repository: Path,
    files: Path,
    inputs: Mapping[str, str],
    *,
    event_name: str = "push",
    event_path: Path | None = None,
    api_url: str = NOWHERE,
) -> dict[str, str]:
    """Runner variables for a step in `repository`; `files` holds outputs and summary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))}
    outputs, summary = files / "output.txt", files / "summary.md"
    outputs.write_text("")
    summary.write_text("")
    env.update(
        GITHUB_WORKSPACE=str(repository),
        GITHUB_EVENT_NAME=event_name,
        GITHUB_REPOSITORY="octo-org/models",
        GITHUB_API_URL=api_url,
        GITHUB_OUTPUT=str(outputs),
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_ACTIONS="true",
        CI="true",
    )
    if event_path is not None:
        env["GITHUB_EVENT_PATH"] = str(event_path)
    env.update({f"INPUT_{name.replace(' ', '_').upper()}": value for name, value in inputs.items()})
    return env


def run_entrypoint(
    repository: Path,
    env: Mapping[str, str],
    *,
    prefix: tuple[str, ...] = (),
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`entrypoint.py` as the runner starts it: in the checkout, with `env` only."""
    return subprocess.run(
        [*prefix, sys.executable, str(ENTRYPOINT)],
        cwd=repository,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=preexec_fn,
    )


@dataclass
class ActionRun:
    returncode: int
    stdout: str
    outputs: dict[str, str]
    summary: str

    def commands(self) -> list[str]:
        """Workflow commands the runner would act on (outside stop-commands blocks)."""
        active: list[str] = []
        stopped_by: str | None = None
        for line in self.stdout.splitlines():
            if stopped_by is not None:
                if line == f"::{stopped_by}::":
                    stopped_by = None
                continue
            match = re.match(r"^::stop-commands::(.+)$", line)
            if match:
                stopped_by = match.group(1)
            elif line.startswith("::"):
                active.append(line)
        return active


def parse_outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT as the runner reads it: name<<DELIM ... DELIM."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if "<<" in lines[i]:
            name, delimiter = lines[i].split("<<", 1)
            end = lines.index(delimiter, i + 1)
            outputs[name] = "\n".join(lines[i + 1 : end])
            i = end
        i += 1
    return outputs


def event_file(tmp: Path, name: str) -> Path:
    payload = (
        {"action": "synchronize", "number": PR, "pull_request": {"number": PR}}
        if name == "pull_request"
        else {"ref": "refs/heads/main"}
    )
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(payload))
    return path


def run_action(
    repository: Path, github: FakeGitHub, tmp: Path, *, event: str = "pull_request", **inputs: str
) -> ActionRun:
    defaults = {
        "policy": "tflite-gate.yml",
        "working-directory": ".",
        "comment": "update",
        "github-token": TOKEN,
        "report": "tflite-gate-report.json",
    }
    env = action_env(
        repository,
        tmp,
        {**defaults, **inputs},
        event_name=event,
        event_path=event_file(tmp, event),
        api_url=github.base_url,
    )
    completed = run_entrypoint(repository, env, timeout=900)
    return ActionRun(
        completed.returncode,
        completed.stdout + completed.stderr,
        parse_outputs((tmp / "output.txt").read_text()),
        (tmp / "summary.md").read_text(),
    )

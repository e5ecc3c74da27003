"""The environment the GitHub runner gives a Docker action's entrypoint, for tests.

Inputs arrive as `INPUT_<NAME>` with the name upper-cased and hyphens kept
(`fail-on` → `INPUT_FAIL-ON`), and the file commands (`GITHUB_OUTPUT`,
`GITHUB_STEP_SUMMARY`) are files the step appends to. The caller's own `GITHUB_*` and
`INPUT_*` variables never leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from conftest import REPO

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

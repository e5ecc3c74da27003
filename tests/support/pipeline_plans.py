"""Run plans and run contexts for pipeline tests: a policy written, loaded and planned as
the gate does before any model work, and the context one run's stages share."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tflite_gate.pipeline.context import RunContext
from tflite_gate.pipeline.requests import model_requests
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.plan import ModelPlan, plan_run

POLICY = "tflite-gate.yml"


def planned_models(workspace: Path, *models: str) -> list[ModelPlan]:
    """The plans of a policy listing `models` (each a flow mapping, e.g. `{name: m, ...}`)."""
    text = "version: 1\nmodels:\n" + "".join(f"  - {model}\n" for model in models)
    (workspace / POLICY).write_text(textwrap.dedent(text), encoding="utf-8")
    return list(plan_run(load_policy(workspace / POLICY, workspace), workspace).models)


def planned(workspace: Path, model: str) -> ModelPlan:
    """The plan of a policy with this one model."""
    [plan] = planned_models(workspace, model)
    return plan


def run_context(
    workspace: Path,
    *plans: ModelPlan,
    progress: Callable[[str], None] = lambda _: None,
    **fields: Any,
) -> RunContext:
    """A run's context for `plans`, no runtime prepared; its places inside `workspace`
    unless `fields` put them elsewhere."""
    places = {
        "artifacts": workspace / "artifacts",
        "scratch": workspace / "scratch",
        "cache_dir": workspace / "cache",
    }
    return RunContext(
        workspace=workspace,
        progress=progress,
        requests={plan.name: model_requests(plan) for plan in plans},
        **{**places, **fields},
    )

"""The run's order from its plan: what it refuses before any model work starts.

Each of these stops before a worker or a thread starts, so they run in-process.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tflite_gate.pipeline.run import run_check, select_models
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.plan import RunPlan, plan_run
from tflite_gate.support.output_paths import report_outputs
from tflite_gate.support.run_options import CheckOptions, OutputPathError, UsageError

POLICY = "tflite-gate.yml"
TWO_MODELS = """\
    version: 1
    defaults:
      runtimes: [ai-edge-litert, "tflite-runtime==2.14.0"]
    models:
      - {name: a, source: a.keras}
      - {name: b, source: b.keras, runtimes: [ai-edge-litert]}
    """


def write(workspace: Path, text: str = TWO_MODELS) -> Path:
    (workspace / POLICY).write_text(textwrap.dedent(text), encoding="utf-8")
    return workspace / POLICY


def plan(workspace: Path) -> RunPlan:
    return plan_run(load_policy(write(workspace), workspace), workspace)


def test_the_selected_models_keep_the_policys_order(tmp_path: Path) -> None:
    run = plan(tmp_path)
    assert [model.name for model in select_models(run, [])] == ["a", "b"]
    assert [model.name for model in select_models(run, ["b", "a"])] == ["a", "b"]


def test_an_unknown_model_name_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        select_models(plan(tmp_path), ["c"], "only")
    assert str(caught.value) == "only names unknown model(s) c; the policy has: a, b"


def test_a_shard_of_a_runtime_a_model_does_not_list_is_refused(tmp_path: Path) -> None:
    options = CheckOptions(
        policy=write(tmp_path), workspace=tmp_path, runtimes=["tflite-runtime==2.14.0"]
    )
    with pytest.raises(UsageError) as caught:
        run_check(options, lambda _: None)
    assert str(caught.value) == (
        "--runtime names tflite-runtime==2.14.0, which model b does not list; its runtimes: "
        "ai-edge-litert"
    )


def test_a_report_written_over_a_model_is_refused(tmp_path: Path) -> None:
    outputs = report_outputs(
        json_path=tmp_path / "a.keras", sarif_path=None, junit_path=None, names={"json": "--report"}
    )
    options = CheckOptions(policy=write(tmp_path), workspace=tmp_path, outputs=outputs)
    with pytest.raises(OutputPathError):
        run_check(options, lambda _: None)


def test_a_policy_error_leaves_before_any_model_work(tmp_path: Path) -> None:
    policy = write(tmp_path, "version: 1\nmodels: []\n")
    with pytest.raises(PolicyError):
        run_check(CheckOptions(policy=policy, workspace=tmp_path), lambda _: None)
    assert not (tmp_path / ".tflite-gate").exists()  # no artifacts directory made

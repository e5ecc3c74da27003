"""A variant's runs go through the Runner protocol only: a runner of another kind plugs in.

The runner here is a real implementation of the protocol (as the GPU, microcontroller
and NPU runners will be), prepared ahead in the run's context the way `runtime_for`
leaves a prepared runtime there; the policy, the report, the comparison and the
checks are the gate's own.
"""

from __future__ import annotations

import textwrap
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.support.tflite_builder import (
    SIGNATURE_INPUT_NAME,
    SIGNATURE_OUTPUT_NAME,
    build_model,
    builtin,
)
from tflite_gate.pipeline.context import RunContext
from tflite_gate.pipeline.execution import execute_variant, runtime_run
from tflite_gate.pipeline.requests import ModelRequests, model_requests
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.plan import plan_run
from tflite_gate.policy.resolve import ModelConfig
from tflite_gate.report.model import EnvironmentInfo, Report, Tool, VariantReport
from tflite_gate.run.runner import Arrays, MemoryUse, RunJob, RunnerNeeds, RunOutcome, RunResult
from tflite_gate.tflite.facts import inspect_model

POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: m
        source: model.tflite
        budgets: {latency_runs: 3}
    """
)


@dataclass
class EchoRunner:
    """Gives each input back as the output, and remembers the jobs it was given."""

    needs: RunnerNeeds = field(default_factory=RunnerNeeds)
    name: str = "ai-edge-litert"
    version: str | None = "9.9-echo"
    reused: Path | None = None
    jobs: list[RunJob] = field(default_factory=list)

    def run(self, model: Path, inputs: Arrays, job: RunJob) -> RunResult:
        self.jobs.append(job)
        return RunResult(
            status="ok",
            phase=None,
            sample=None,
            signal=None,
            message=None,
            outputs={SIGNATURE_OUTPUT_NAME: inputs[SIGNATURE_INPUT_NAME]},
            latency_ms=0.5,
            memory=MemoryUse(peak_rss_mb=12.0),
        )


def _requests(tmp_path: Path) -> ModelRequests:
    (tmp_path / "tflite-gate.yml").write_text(POLICY)
    [model] = plan_run(load_policy(tmp_path / "tflite-gate.yml", tmp_path), tmp_path).models
    return model_requests(model)


@pytest.fixture
def config(tmp_path: Path) -> ModelConfig:
    (tmp_path / "tflite-gate.yml").write_text(POLICY)
    [model] = plan_run(load_policy(tmp_path / "tflite-gate.yml", tmp_path), tmp_path).models
    return model.config


def _context(tmp_path: Path, config: ModelConfig, runner: EchoRunner) -> RunContext:
    said: list[str] = []
    context = RunContext(
        workspace=tmp_path,
        artifacts=tmp_path / "artifacts",
        scratch=tmp_path / "scratch",
        cache_dir=tmp_path / "cache",
        progress=said.append,
    )
    requests = _requests(tmp_path)
    context.requests[config.name] = requests
    context.runtimes[requests.runtimes[0]] = runner
    return context


def _execute(
    tmp_path: Path, config: ModelConfig, runner: EchoRunner, *, dynamic: bool
) -> tuple[VariantReport, Report]:
    blob = build_model([builtin("RELU")], dynamic_batch=dynamic)
    model = tmp_path / "model.tflite"
    model.write_bytes(blob)
    variant = VariantReport(
        name="as-is",
        quantization="as-is",
        io="as-is",
        status="not-converted",
        inspection=inspect_model(blob),
    )
    samples = np.random.default_rng(0).uniform(0, 1, (3, 1, 4)).astype(np.float32)
    report = Report(
        tool=Tool(version="0.0.test"),
        started_at="",
        environment=EnvironmentInfo(python="3.11", platform="linux", packages={}),
    )
    reference = {SIGNATURE_OUTPUT_NAME: samples}
    context = _context(tmp_path, config, runner)
    inputs = {SIGNATURE_INPUT_NAME: samples}
    execute_variant(config, 0, variant, model, inputs, reference, report, context)
    return variant, report


def test_a_runner_runs_the_variant_and_the_comparison_judges_it(
    tmp_path: Path, config: ModelConfig
) -> None:
    runner = EchoRunner()
    variant, report = _execute(tmp_path, config, runner, dynamic=False)
    (run,) = variant.runs
    assert (run.runtime, run.status, run.runtime_version, run.samples) == (
        "ai-edge-litert",
        "passed",
        "9.9-echo",
        3,
    )
    assert run.latency_ms == 0.5 and run.latency_runs == 3
    (job,) = runner.jobs
    assert job.latency_runs == 3 and job.memory_mb == config.memory_mb.value
    assert job.pythonpath == (str(tmp_path.resolve()),)
    assert report.findings == []


def test_a_model_the_runner_cannot_take_is_not_run_and_says_why(
    tmp_path: Path, config: ModelConfig
) -> None:
    runner = EchoRunner(needs=RunnerNeeds(static_shapes=True))
    variant, _ = _execute(tmp_path, config, runner, dynamic=True)
    (run,) = variant.runs
    assert run.status == "unverifiable"
    assert run.message is not None
    assert run.message.startswith("not run on ai-edge-litert: it takes fixed input shapes only")
    assert runner.jobs == []


@pytest.mark.parametrize("outcome", typing.get_args(RunOutcome))
def test_every_outcome_a_runner_can_give_has_a_status_in_the_report(
    tmp_path: Path, config: ModelConfig, outcome: RunOutcome
) -> None:
    runner = EchoRunner()
    context = _context(tmp_path, config, runner)
    spec = context.requests_for(config).runtimes[0]
    variant = VariantReport(name="v", quantization="none", io="float32", status="converted")
    result = RunResult(status=outcome, phase=None, sample=None, signal=None, message="m")
    run = runtime_run(config, spec, runner, result, variant, context)
    assert run.runtime == "ai-edge-litert" and run.runtime_version == "9.9-echo"
    assert run.status == {"ok": "ran", "refused": "unverifiable"}.get(outcome, run.status)

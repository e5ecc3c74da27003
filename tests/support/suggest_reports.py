"""Reports for the tests of suggested thresholds, made as the pipeline makes them.

Runs are judged by the real comparison (`compare_run`) of arrays against the thresholds
a real policy resolves to, as the pipeline does after an interpreter run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from tflite_gate.judge.compare import OutputPlan, compare_run
from tflite_gate.judge.suggest import merge, policy_mapping
from tflite_gate.policy.load import LoadedPolicy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.report.model import (
    ModelReport,
    Report,
    RuntimeRun,
    ThresholdViolation,
    VariantReport,
)
from tflite_gate.report.model.stamp import new_report

RNG = np.random.default_rng(0)
REFERENCE = {"probs": RNG.random((8, 10)), "box": RNG.random((8, 4))}
"""The source model's outputs over 8 samples: class scores and a box."""


TWO_VARIANTS = """\
    version: 1
    models:
      - name: det
        source: det.keras
        max_divergence: {min_cosine: 0.99999, max_abs: 0.5}
        variants:
          - {name: float}
          - {name: int8, quantization: int8}
    """
"""One model, two variants; its min_cosine (line 5) breaks at a 1% error, max_abs does not."""


def judged_run(
    loaded: LoadedPolicy,
    model: str,
    variant: str,
    reference: dict[str, np.ndarray],
    actual: dict[str, np.ndarray],
    runtime: str,
    *,
    top1: bool = False,
) -> RuntimeRun:
    """A run with these outputs, compared as the pipeline does under the policy."""
    index = [m.name for m in loaded.policy.models].index(model)
    plan = resolve_model(loaded, index).thresholds[variant]
    judged = compare_run(
        reference,
        actual,
        by_order=False,
        plan_for=lambda name, _: OutputPlan(
            {k: s.value for k, s in plan.for_output(name).items()}, top1=top1
        ),
    )
    return RuntimeRun(
        runtime=runtime,
        status=judged.status,
        samples=8,
        metrics=judged.metrics,
        violations=judged.violations,
        tightest=judged.tightest,
    )


def noisy_run(
    loaded: LoadedPolicy, model: str, variant: str, noise: dict[str, float], runtime: str
) -> RuntimeRun:
    """A run whose outputs are `REFERENCE` plus `noise` (relative), judged by the policy."""
    actual = {
        name: ref + noise.get(name, 0.0) * np.abs(ref).max() * RNG.standard_normal(ref.shape)
        for name, ref in REFERENCE.items()
    }
    return judged_run(loaded, model, variant, REFERENCE, actual, runtime)


def break_max_abs_infinitely(run: RuntimeRun, output: str) -> None:
    """`output` of `run` off by an infinite error: TWO_VARIANTS' max_abs broken by it."""
    index = next(i for i, metrics in enumerate(run.metrics) if metrics.output == output)
    run.metrics[index] = run.metrics[index].model_copy(
        update={"max_abs": None, "infinite": {"max_abs": "inf"}}
    )
    run.violations.append(
        ThresholdViolation(
            output=output,
            threshold_key="max_abs",
            metric="max_abs",
            value=None,
            infinite="inf",
            threshold=0.5,
        )
    )
    run.status = "diverged"


def report_of(loaded: LoadedPolicy, runs: dict[tuple[str, str], list[RuntimeRun]]) -> Report:
    """A report of every model of the policy, with int8 variants holding these runs."""
    report = new_report()
    report.policy = loaded.display_path
    for model in loaded.policy.models:
        variants = [
            VariantReport(name=v, quantization="int8", io="float32", status="converted", runs=r)
            for (m, v), r in runs.items()
            if m == model.name
        ]
        report.models.append(ModelReport(name=model.name, source=model.source, variants=variants))
    return report


def pasted_mapping(loaded: LoadedPolicy, snippet: str) -> dict[str, object]:
    """The policy mapping with `snippet` merged in, as a user pastes it."""
    return merge(policy_mapping(loaded.policy), yaml.safe_load(snippet))


def write_report(tmp_path: Path, report: Report) -> Path:
    """The report as the gate writes it, for `tflite-gate suggest --report`."""
    path = tmp_path / "tflite-gate-report.json"
    path.write_text(report.model_dump_json(), encoding="utf-8")
    return path

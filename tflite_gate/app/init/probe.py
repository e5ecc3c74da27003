"""The probe: the model checked once, through the same pipeline as `check`.

The probe policy sets no limit (the variants asked for, any builtin op, no
thresholds), so what the run measures is what the model does; its conversions land
in the cache the next `check` reuses. `probe_problem` says why a probe's report
cannot become a policy: sizes to ask for, errors, or thresholds that would check
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tflite_gate.app.init.request import InitOutcome, InitRequest
from tflite_gate.app.init.starter import quoted, shapes_text
from tflite_gate.findings import Finding, Severity
from tflite_gate.judge.suggest import Defect, metrics_by_output, output_defect
from tflite_gate.report.model import ModelReport, Report, ThresholdKey
from tflite_gate.support.lifetime import owned_scratch
from tflite_gate.support.run_options import CheckOptions, Progress

STARTER_KEYS: tuple[ThresholdKey, ...] = ("rel_rmse", "min_cosine")


def probe_policy(
    name: str, source: str, variants: list[tuple[str, str]], shapes: dict[str, list[int]]
) -> str:
    """The policy `init` checks the model with: the variants, and no limit at all."""
    lines = [
        "version: 1",
        "models:",
        f"  - name: {quoted(name)}",
        f"    source: {quoted(source)}",
    ]
    if shapes:
        lines.append(f"    input_shapes: {shapes_text(shapes)}")
    if not source.endswith(".tflite"):
        lines.append("    variants:")
        lines += [f"      - {{name: {quoted(v)}, quantization: {quoted(q)}}}" for v, q in variants]
    return "\n".join(lines) + "\n"


def probe_problem(
    report: Report, margin: float, *, kept_thresholds: bool = False
) -> tuple[int, str] | None:
    """Why the probe's result cannot become a policy (exit code, message), or None.

    Besides sizes to ask for and error findings, a variant whose starting thresholds
    would check nothing (`suggest.output_defect`: a min_cosine at or below 0, a rel_rmse
    at or above 1, a collapsed output) is refused: the policy would pass it as written.
    With `kept_thresholds` (the probe kept the policy's own), a finite divergence is
    measured, to be loosened, and no problem.
    """
    shapes = [f for f in report.findings if f.rule == "policy-invalid" and f.key == "input_shapes"]
    if shapes:
        return 2, (
            "pass the sizes your app feeds as --input-shape NAME=1,D1,D2,... (repeat it per "
            f"input): {shapes[0].message}"
        )
    errors = [
        f
        for f in report.findings
        if f.severity is Severity.ERROR
        and not (kept_thresholds and f.rule == "divergence" and f.infinite is None)
    ]
    if errors:
        return 1, errors_text(errors)
    defects = [defect.text() for defect in _defects(report.models[0], margin)]
    if defects:
        listed = "\n".join(f"  {defect}" for defect in defects)
        return 1, (
            "fix these first (or choose other --variants): init writes thresholds that "
            f"check something, and none would for these:\n{listed}"
        )
    return None


def _defects(model: ModelReport, margin: float) -> Iterator[Defect]:
    for variant in model.variants:
        for output, measured in metrics_by_output(variant).items():
            why = output_defect(measured, margin, None, STARTER_KEYS)
            if why is not None:
                yield Defect(model.name, variant.name, output, why)
                break


def errors_text(errors: list[Finding]) -> str:
    """Why `init` stops on a model that did not convert or run: its error findings."""
    listed = "\n".join(f"  {f.rule}: {f.message}" for f in errors)
    return (
        "fix these first (or choose other --variants): init writes a policy for a model "
        f"that converts and runs, and this one did not:\n{listed}"
    )


def run_probe(
    request: InitRequest, policy_text: str, progress: Progress, *, kept_thresholds: bool = False
) -> Report | InitOutcome:
    """The probe's report, checked with `policy_text`; or why it cannot become a policy."""
    from tflite_gate.app.check import run_gate  # the pipeline: only once the request is sound

    with owned_scratch("tflite-gate-init-") as scratch:
        probe = Path(scratch) / "probe.yml"
        probe.write_text(policy_text, encoding="utf-8")
        options = CheckOptions(
            policy=probe, workspace=request.workspace, cache_dir=request.cache_dir
        )
        outcome = run_gate(options, progress)
    report = outcome.report
    if outcome.exit_code not in (0, 1) or not report.models:
        return InitOutcome(
            outcome.exit_code or 2, outcome.messages or [errors_text(report.findings)]
        )
    problem = probe_problem(report, request.margin, kept_thresholds=kept_thresholds)
    if problem:
        return InitOutcome(problem[0], [problem[1]])
    return report

"""Split one gate run over CI jobs, and merge their reports back into one.

GitHub Actions already schedules jobs: `matrix_entries` is what a
`strategy.matrix` needs (one entry per model, or per model and runtime), each job runs
`check --only MODEL [--runtime NAME]` and uploads its report, and `merge_reports`
turns those shard reports into the report one unsharded run would have written:
the same models, variants, runs and findings (a finding every shard repeats, such as
a policy-wide version check or a model's static checks, once), and the verdict
decided again from them. A matrix entry whose report is missing is an error at its
model's line, so a job that died before writing its report cannot turn into a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from tflite_gate.app.check import refused_outputs
from tflite_gate.app.outcome import (
    EXIT_FAIL,
    EXIT_INTERNAL,
    EXIT_PASS,
    EXIT_USAGE,
    GateOutcome,
    policy_error_outcome,
    usage_outcome,
)
from tflite_gate.findings import Finding, Location
from tflite_gate.policy.errors import PolicyError
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.policy.schema import runtime_name
from tflite_gate.report.json_report import ReportFileError, read_json_report
from tflite_gate.report.model import ModelReport, Report, Shard, VariantReport, first_stop
from tflite_gate.rules import make_finding
from tflite_gate.support.run_options import CheckOptions

SplitBy = Literal["model", "runtime"]


class ShardError(Exception):
    """Shard reports that cannot be merged (exit 2): unreadable, or not of one run."""


def plan_matrix(options: CheckOptions, by: SplitBy) -> list[dict[str, str]] | GateOutcome:
    """The matrix entries of the policy, or the outcome of a policy that cannot be loaded."""
    try:
        loaded = load_policy(options.policy, options.workspace, policy_option=options.names.policy)
    except PolicyError as error:
        return policy_error_outcome(error)
    return matrix_entries(loaded, by)


def run_merge(options: CheckOptions, reports: Sequence[Path]) -> GateOutcome:
    """Merge shard reports as if one run had checked every model; never raises for bad input.

    The policy orders the models and says which matrix entries must have a report.
    """
    refused = refused_outputs(options)
    if refused is not None:
        return refused
    try:
        loaded = load_policy(options.policy, options.workspace, policy_option=options.names.policy)
        shards = [(str(path), read_json_report(path)) for path in reports]
        report = merge_reports(shards, loaded)
    except PolicyError as error:
        return policy_error_outcome(error)
    except (ShardError, ReportFileError) as error:
        return usage_outcome([str(error)], options)
    if report.internal_error is not None:
        return GateOutcome(report, EXIT_INTERNAL, ["a shard hit an internal error (a bug)"])
    exit_code = {"pass": EXIT_PASS, "error": EXIT_USAGE}.get(report.verdict, EXIT_FAIL)
    return GateOutcome(report, exit_code)


def matrix_entries(loaded: LoadedPolicy, by: SplitBy) -> list[dict[str, str]]:
    """One entry per model (`by="model"`), or per model and each of its runtimes."""
    entries: list[dict[str, str]] = []
    for index, model in enumerate(loaded.policy.models):
        if by == "model":
            entries.append({"model": model.name})
            continue
        config = resolve_model(loaded, index)
        entries += [
            {"model": model.name, "runtime": runtime_name(item)} for item in config.runtimes.value
        ]
    return entries


def merge_reports(shards: Sequence[tuple[str, Report]], loaded: LoadedPolicy) -> Report:
    """The report of the whole run from its shards (`(name, report)`, name for messages)."""
    if not shards:
        raise ShardError("pass at least one shard report to merge")
    _same_run(shards)
    first = shards[0][1]
    merged = Report(
        tool=first.tool,
        started_at=min(report.started_at for _, report in shards),
        environment=first.environment,
        policy=first.policy,
        fail_on=first.fail_on,
    )
    order = [model.name for model in loaded.policy.models]
    merged.models = _merged_models(shards, order)
    merged.findings = _merged_findings(shards, order)
    merged.add(_missing(shards, loaded))
    errors = [report.internal_error for _, report in shards if report.internal_error]
    merged.internal_error = "".join(errors) or None
    merged.stopped = first_stop(report.stopped for _, report in shards)
    merged.duration_s = round(sum(report.duration_s for _, report in shards), 3)
    merged.timings["total"] = merged.duration_s
    from tflite_gate.judge.suggest import add_keep_float_snippets, suggestion_for  # numpy: lazily

    merged.suggestion = suggestion_for(merged, loaded)
    add_keep_float_snippets(merged, loaded)
    merged.finalize(first.fail_on)
    return merged


def _same_run(shards: Sequence[tuple[str, Report]]) -> None:
    """Shards of one run share the tool version, the policy and fail_on."""
    for field in ("policy", "fail_on"):
        values = {str(getattr(report, field)): name for name, report in shards}
        if len(values) > 1:
            listed = "; ".join(f"{name}: {value}" for value, name in values.items())
            raise ShardError(f"merge shards of one run only: their {field} differs ({listed})")
    versions = {report.tool.version: name for name, report in shards}
    if len(versions) > 1:
        listed = "; ".join(f"{name}: {version}" for version, name in versions.items())
        raise ShardError(f"merge shards of one tflite-gate version only ({listed})")


def _merged_models(shards: Sequence[tuple[str, Report]], order: list[str]) -> list[ModelReport]:
    """Each model once, in policy order; a model split by runtime gets all its runs."""
    models: dict[str, ModelReport] = {}
    for name, report in shards:
        for model in report.models:
            if model.name not in order:
                raise ShardError(
                    f"merge shards of this policy only: {name} checked {model.name!r}, which "
                    "the policy does not have"
                )
            if model.name not in models:
                models[model.name] = model.model_copy(deep=True)
            else:
                _add_runs(models[model.name], model, name)
    return sorted(models.values(), key=lambda m: order.index(m.name))


def _add_runs(into: ModelReport, other: ModelReport, shard: str) -> None:
    mine = {variant.name: variant for variant in into.variants}
    for variant in other.variants:
        target: VariantReport | None = mine.get(variant.name)
        if target is None:
            into.variants.append(variant.model_copy(deep=True))
            continue
        have = {run.runtime for run in target.runs}
        repeated = [run.runtime for run in variant.runs if run.runtime in have]
        if repeated:
            raise ShardError(
                f"merge each shard once: {shard} repeats the {into.name}/{variant.name} run on "
                f"{', '.join(repeated)}"
            )
        target.runs += [run.model_copy(deep=True) for run in variant.runs]


def _merged_findings(shards: Sequence[tuple[str, Report]], order: list[str]) -> list[Finding]:
    """Every shard's findings in policy order of its models; one copy of each repeat."""

    def position(shard: tuple[str, Report]) -> int:
        names = [model.name for model in shard[1].models]
        return min((order.index(n) for n in names if n in order), default=len(order))

    seen: set[str] = set()
    findings: list[Finding] = []
    for _, report in sorted(shards, key=position):
        for finding in report.findings:
            key = finding.model_dump_json()
            if key not in seen:
                seen.add(key)
                findings.append(finding)
    return findings


def _covered(report: Report, names: list[str]) -> set[tuple[str, str | None]]:
    """(model, runtime or None) pairs a shard checked; None: all the model's runtimes."""
    shard = report.shard or Shard(models=names, runtimes=None)
    runtimes: list[str | None] = [*shard.runtimes] if shard.runtimes else [None]
    return {(model, runtime) for model in shard.models for runtime in runtimes}


def _missing(shards: Sequence[tuple[str, Report]], loaded: LoadedPolicy) -> list[Finding]:
    """A finding per model no shard covers, or per runtime of a model no shard ran.

    Whether the matrix was split by model or by runtime, a shard says what it covered,
    so the merge needs no telling.
    """
    names = [model.name for model in loaded.policy.models]
    covered: set[tuple[str, str | None]] = set()
    for _, report in shards:
        covered |= _covered(report, names)
    findings = []
    for index, name in enumerate(names):
        if (name, None) in covered:
            continue
        config = resolve_model(loaded, index)
        runtimes = [runtime_name(item) for item in config.runtimes.value]
        missing = [runtime for runtime in runtimes if (name, runtime) not in covered]
        if missing == runtimes:
            findings.append(_missing_finding(name, None, config.source_location))
            continue
        findings += [
            _missing_finding(name, runtime, config.runtime_locations.get(runtime))
            for runtime in missing
        ]
    return findings


def _missing_finding(model: str, runtime: str | None, location: Location | None) -> Finding:
    what = f"{model} on {runtime}" if runtime else model
    return make_finding(
        "shard-missing",
        f"{what}: no shard report covers it; the matrix job for it did not upload a "
        "report (it failed before writing one, or its artifact has another name)",
        model=model,
        runtime=runtime,
        location=location,
    )

"""The Report and its models and variants: the one truth every reporter reads and
every check adds to.
"""

from __future__ import annotations

import traceback
from typing import Any, Literal

from pydantic import Field, model_validator

from tflite_gate.findings import Finding, Location, Severity
from tflite_gate.report.model.base import StrictModel
from tflite_gate.report.model.changes import BaselineComparison, ThresholdSuggestion
from tflite_gate.report.model.inspection import ConverterDiagnostics, Inspection, TensorInfo
from tflite_gate.report.model.runs import LayerDiagnosis, RuntimeRun
from tflite_gate.report.model.versions import REPORT_SCHEMA_VERSION, StopReason, upgrade_report
from tflite_gate.rules import make_finding

Verdict = Literal["pass", "fail", "error", "cancelled"]


SourceKind = Literal["keras", "h5", "saved_model", "tflite", "factory"]


VariantStatus = Literal["converted", "conversion-failed", "not-converted", "invalid"]


# Seconds per phase, by the names the pipeline writes and reporters read: a typo or a
# rename on one side is a type error (and a schema change), not a silently missing time.
GatePhase = Literal["policy", "total"]


ModelPhase = Literal["load+convert", "reference", "total"]


VariantPhase = Literal["convert", "inspect"]


class Tool(StrictModel):
    name: str = "tflite-gate"
    version: str


class EnvironmentInfo(StrictModel):
    python: str
    platform: str
    packages: dict[str, str | None] = Field(
        description="Installed versions of the packages the gate depends on; null if absent."
    )
    default_memory_mb: int | None = Field(
        default=None,
        description="The memory limit (MB) of every worker of a model whose policy sets no "
        "limits.memory_mb: a share of this machine's memory.",
    )
    jobs: int | None = Field(
        default=None,
        description="How many workers ran at once (--jobs, else from the cores and memory).",
    )


class VariantReport(StrictModel):
    name: str
    quantization: str
    io: str
    status: VariantStatus
    artifact: str | None = Field(
        default=None, description="Path of the converted .tflite, relative to the workspace."
    )
    inspection: Inspection | None = None
    converter: ConverterDiagnostics = Field(default_factory=ConverterDiagnostics)
    runs: list[RuntimeRun] = Field(default_factory=list)
    diagnosis: LayerDiagnosis | None = Field(
        default=None, description="For a quantized variant that broke a threshold."
    )
    timings: dict[VariantPhase, float] = Field(default_factory=dict)

    def status_label(self) -> str:
        """How reporters show the status: a .tflite source runs as-is, which is no failure."""
        return "as-is (not converted)" if self.status == "not-converted" else self.status


class WrittenBy(StrictModel):
    tensorflow: str | None = None
    keras: str | None = None


CacheStatus = Literal["reused", "stored", "not-stored", "disabled"]


class CacheUse(StrictModel):
    """Whether this model's TensorFlow work (conversion, reference outputs) was reused."""

    status: CacheStatus = Field(
        description="reused: results come from an earlier run with the same inputs (see "
        "converted_at), nothing was converted now; stored: converted now and kept; "
        "not-stored: converted now, not kept (see reason); disabled: --no-cache."
    )
    key: str | None = Field(default=None, description="The first 16 hex digits of the key.")
    converted_at: str | None = None
    original_s: float | None = Field(
        default=None, description="How long the reused conversion took when it ran."
    )
    reason: str | None = None


class ModelReport(StrictModel):
    name: str
    source: str
    source_kind: SourceKind | None = None
    loaded: bool = False
    written_by: WrittenBy | None = None
    inputs: list[TensorInfo] = Field(default_factory=list)
    variants: list[VariantReport] = Field(default_factory=list)
    cache: CacheUse | None = None
    timings: dict[ModelPhase, float] = Field(default_factory=dict)


class Summary(StrictModel):
    errors: int = 0
    warnings: int = 0
    notices: int = 0


class Shard(StrictModel):
    """What a `check --only` run covered: part of a run split over CI jobs."""

    models: list[str]
    runtimes: list[str] | None = Field(
        default=None, description="The runtimes it ran (--runtime); null: all of them."
    )


class Report(StrictModel):
    schema_version: int = Field(
        default=REPORT_SCHEMA_VERSION,
        ge=1,
        description="The version of the report's shape. Later versions only add fields; "
        "the gate reads every earlier version.",
    )
    tool: Tool
    verdict: Verdict = Field(
        default="pass",
        description="error: no verdict could be given (an internal error, a usage error, or "
        "a policy that could not be loaded); cancelled: the run was stopped by SIGTERM/SIGINT; "
        "the report holds what finished (the model being checked with what it had) and a "
        "`cancelled` finding.",
    )
    stopped: StopReason | None = Field(
        default=None,
        description="Why the run stopped before a verdict, set where it stopped: usage (an "
        "option it cannot use), policy (the policy could not be loaded), cancelled "
        "(SIGTERM/SIGINT). Null: the run went to its end.",
    )
    fail_on: Literal["error", "warning", "never"] = "error"
    policy: str | None = None
    started_at: str
    duration_s: float = 0.0
    environment: EnvironmentInfo
    timings: dict[GatePhase, float] = Field(default_factory=dict)
    shard: Shard | None = Field(
        default=None,
        description="Set by `check --only`/`--runtime`: this report covers only these; "
        "`tflite-gate merge` combines the shards of one run.",
    )
    models: list[ModelReport] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    summary: Summary = Field(default_factory=Summary)
    baseline: BaselineComparison | None = Field(
        default=None, description="With `check --baseline`: the changes since that report."
    )
    suggestion: ThresholdSuggestion | None = Field(
        default=None,
        description="When a divergence threshold was broken: values that pass on this data.",
    )
    internal_error: str | None = Field(
        default=None, description="Set when the gate itself failed; the report is still written."
    )

    @model_validator(mode="before")
    @classmethod
    def _read_earlier_versions(cls, data: Any) -> Any:
        """A report file of an earlier version reads as the current shape."""
        return upgrade_report(data) if isinstance(data, dict) else data

    def add(self, findings: list[Finding]) -> None:
        """Checks add findings here; nothing else decides verdicts."""
        self.findings.extend(findings)

    def add_internal_error(self, error: BaseException, *, model: str | None = None) -> None:
        """A bug in the gate: a finding (the model's, if only its check broke) and the
        traceback, appended so that a second bug in another model keeps the first."""
        trace = "".join(traceback.format_exception(error))
        self.internal_error = trace if self.internal_error is None else self.internal_error + trace
        where = f"{model}: " if model else ""
        self.add(
            [make_finding("internal-error", f"{where}{type(error).__name__}: {error}", model=model)]
        )

    def with_path_prefix(self, prefix: str) -> Report:
        """A copy whose finding locations are relative to `prefix`'s parent repository.

        The gate reports paths relative to its workspace; when that workspace is a
        sub-directory of the repository, annotations and SARIF need repository paths.
        """
        if not prefix:
            return self
        copy = self.model_copy(deep=True)
        for finding in copy.findings:
            finding.location = _prefixed(finding.location, prefix)
        for suggested in copy.suggestion.thresholds if copy.suggestion else []:
            suggested.location = _prefixed(suggested.location, prefix)
        if copy.policy and not copy.policy.startswith("/"):
            copy.policy = f"{prefix.rstrip('/')}/{copy.policy}"
        return copy

    def with_paths_relative_to(self, root: str) -> Report:
        """A copy in which the absolute directory `root` appears nowhere, not even in text.

        The Action runs in a container: `/github/workspace/ml/zoo.py` in a message is a
        path no user can open, `ml/zoo.py` is one they can click. Messages, details and
        paths all get the repository-relative spelling.
        """
        base = root.rstrip("/")
        if not base:  # the file system's root: every path is "relative" to it
            return self.model_copy(deep=True)
        text = self.model_dump_json().replace(f"{base}/", "").replace(base, ".")
        return Report.model_validate_json(text)

    def finalize(self, fail_on: Literal["error", "warning", "never"]) -> None:
        """Count findings and set the verdict from `fail_on` (exit code follows it).

        A run that stopped (`stopped`, `internal_error`) has no pass or fail: the
        verdict comes from that state, set where the run stopped, never from findings.
        """
        self.fail_on = fail_on
        self.summary = Summary(
            errors=sum(f.severity is Severity.ERROR for f in self.findings),
            warnings=sum(f.severity is Severity.WARNING for f in self.findings),
            notices=sum(f.severity is Severity.NOTICE for f in self.findings),
        )
        if self.internal_error is not None or self.stopped in ("usage", "policy"):
            self.verdict = "error"  # the gate could not check what the user meant it to
            return
        if self.stopped == "cancelled":  # partial: neither pass nor fail
            self.verdict = "cancelled"
            return
        threshold = {"error": Severity.ERROR.rank, "warning": Severity.WARNING.rank}.get(fail_on)
        failing = threshold is not None and any(f.severity.rank >= threshold for f in self.findings)
        self.verdict = "fail" if failing else "pass"


def _prefixed(location: Location | None, prefix: str) -> Location | None:
    """`location` with its workspace-relative path under `prefix`; absolute ones as they are."""
    if location is None or location.path.startswith("/"):
        return location
    return location.model_copy(update={"path": f"{prefix.rstrip('/')}/{location.path}"})

"""The Report: the one truth every reporter reads and every check adds to.

Its JSON Schema (generated from these models) ships in `tflite_gate/schemas/`
so scripts can validate reports; bump `REPORT_SCHEMA_VERSION` on breaking change.
"""

from __future__ import annotations

import math
import traceback
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tflite_gate.findings import Finding, Location, Severity
from tflite_gate.rules import make_finding

REPORT_SCHEMA_VERSION = 1

Verdict = Literal["pass", "fail", "error", "cancelled"]
OpKind = Literal["builtin", "flex", "custom"]
SourceKind = Literal["keras", "h5", "saved_model", "tflite", "factory"]
VariantStatus = Literal["converted", "conversion-failed", "not-converted", "invalid"]
# Seconds per phase, by the names the pipeline writes and reporters read: a typo or a
# rename on one side is a type error (and a schema change), not a silently missing time.
GatePhase = Literal["policy", "total"]
ModelPhase = Literal["load+convert", "reference", "total"]
VariantPhase = Literal["convert", "inspect"]
RunPhase = Literal["execute", "compare"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tool(_Model):
    name: str = "tflite-gate"
    version: str


class EnvironmentInfo(_Model):
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


class OpInfo(_Model):
    name: str = Field(description="Builtin op name, Flex op name (FlexXxx) or custom op name.")
    kind: OpKind
    version: int
    count: int
    min_runtime: str | None = Field(
        default=None, description="Oldest runtime that has this op version (TF's table)."
    )


class Quantization(_Model):
    scale: list[float]
    zero_point: list[int]


class TensorInfo(_Model):
    name: str
    shape: list[int]
    dtype: str
    quantization: Quantization | None = None
    producer: str | None = Field(
        default=None,
        description="For a converted model's output: the op that computes it, looking "
        "through (de)quantize and reshape ops (SOFTMAX marks a classification).",
    )


class ConversionMetadata(_Model):
    converter_version: str | None = None
    model_type: str | None = None
    optimization_modes: list[str] = Field(default_factory=list)
    allow_custom_ops: bool = False
    enable_select_tf_ops: bool = False
    force_select_tf_ops: bool = False


class Inspection(_Model):
    size_bytes: int
    schema_version: int
    subgraphs: int
    ops: list[OpInfo]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    signatures: list[str]
    metadata_min_runtime: str | None = Field(
        default=None, description="The `min_runtime_version` metadata the converter wrote."
    )
    required_runtime: str | None = Field(
        default=None, description="Highest min runtime over the model's ops (TF's table)."
    )
    conversion: ConversionMetadata | None = None
    metadata_names: list[str] = Field(default_factory=list)


class ConverterError(_Model):
    code: str | None = None
    op: str | None = None
    message: str
    advice: list[str] = Field(
        default_factory=list,
        description="The converter's own suggestions and further lines of its message.",
    )
    location: Location | None = Field(
        default=None, description="First frame of the op's creation stack inside the workspace."
    )


class ConverterDiagnostics(_Model):
    errors: list[ConverterError] = Field(default_factory=list)
    log_lines: list[str] = Field(
        default_factory=list, description="Converter log lines worth a look, noise removed."
    )


MetricName = Literal["max_abs", "mean_abs", "rmse", "rel_rmse", "cosine", "snr_db", "top1"]
ThresholdKey = Literal[
    "max_abs", "mean_abs", "rmse", "rel_rmse", "min_cosine", "min_snr_db", "min_top1"
]
Infinity = Literal["inf", "-inf"]

FLOAT_ROUNDING_REL_RMSE = 1e-5
"""A relative RMSE this small is float rounding: the float kernels of two CPUs (or two
builds of one runtime) differ by about this much where neither loses accuracy."""


class OutputMetrics(_Model):
    """Divergence of one output from the reference, worst sample for each metric.

    Metrics cover only the values that were compared (finite in both outputs). A metric
    is null when nothing was compared, or when it is infinite; `infinite` then says which
    way (JSON has no infinity, and a stand-in number would read as a measurement).
    """

    output: str
    samples: int
    compared: int = Field(
        description="Values compared: positions finite in both outputs, over all samples."
    )
    max_abs: float | None
    mean_abs: float | None
    rmse: float | None
    rel_rmse: float | None = Field(description="rmse / rms of the reference")
    cosine: float | None
    snr_db: float | None
    top1: float | None = Field(
        default=None,
        description="Share of samples whose argmax agrees; only for outputs gated as "
        "classifications.",
    )
    infinite: dict[MetricName, Infinity] = Field(
        default_factory=dict,
        description="Metrics whose value is infinite (e.g. snr_db of identical outputs, "
        "rel_rmse against an all-zero reference); their value above is null.",
    )
    non_finite: int = Field(
        default=0,
        description="NaN/Inf values where the reference is finite, or finite values where "
        "it is not.",
    )
    collapsed: bool = Field(
        default=False,
        description="The converted output is the same for every sample while the source "
        "model's varies (e.g. a quantized output stuck at one value).",
    )
    collapsed_to: float | None = Field(
        default=None, description="The one value every position holds, when it collapsed so."
    )
    worst_sample: dict[str, int] = Field(
        default_factory=dict, description="Per metric, the index of the sample that set its value."
    )

    def value(self, metric: MetricName) -> float | None:
        """The metric as a number, ±inf included; None when it was not measured."""
        direction = self.infinite.get(metric)
        if direction is not None:
            return math.inf if direction == "inf" else -math.inf
        found: float | None = getattr(self, metric)
        return found


class ThresholdViolation(_Model):
    """One policy threshold a run broke, decided where the metrics were computed."""

    output: str
    threshold_key: ThresholdKey
    metric: MetricName
    value: float | None = Field(description="The measured value; null when infinite.")
    infinite: Infinity | None = None
    threshold: float
    worst_sample: int | None = None


class SkippedThreshold(_Model):
    """A model-wide threshold that was not applied to one output, and why."""

    output: str
    threshold_key: ThresholdKey
    reason: str
    explicit: bool = Field(
        default=False,
        description="Written for this very output (per_output or the classification list): "
        "a policy error, not a default that does not fit.",
    )


RunStatus = Literal[
    "passed",
    "ran",
    "diverged",
    "non-finite",
    "error",
    "crash",
    "timeout",
    "unverifiable",
    "unavailable",
    "mismatch",
]
FAILING_RUN_STATUSES = frozenset(
    {"diverged", "non-finite", "error", "crash", "timeout", "unavailable", "mismatch"}
)
"""Run statuses that mean the variant did not pass on that runtime.

`ran`: executed without error, with no reference to compare against (a .tflite source
without `reference:`); `passed`: executed and compared within every threshold.
"""
EXECUTED_RUN_STATUSES = frozenset({"passed", "ran", "diverged", "non-finite", "mismatch"})
"""Run statuses of an interpreter that finished every sample (a phase says nothing more)."""


class RuntimeRun(_Model):
    """One variant executed on one runtime."""

    runtime: str
    runtime_version: str | None = None
    status: RunStatus
    compared_with: str | None = Field(
        default=None,
        description="The runtime (and version) whose outputs this run was compared with: a "
        ".tflite source without `reference:` on several runtimes is compared with its first "
        "runtime. Null when compared with the source model or the reference, or not compared.",
    )
    phase: str | None = Field(
        default=None, description="start, import, load, allocate, invoke or read"
    )
    sample: int | None = None
    signal: str | None = None
    message: str | None = None
    samples: int = 0
    metrics: list[OutputMetrics] = Field(default_factory=list)
    violations: list[ThresholdViolation] = Field(
        default_factory=list, description="Thresholds broken, in policy order per output."
    )
    skipped_thresholds: list[SkippedThreshold] = Field(default_factory=list)
    tightest: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per output, the tightest thresholds that would have passed.",
    )
    reproducer: str | None = Field(
        default=None,
        description="Directory with model, inputs and a script, relative to the workspace.",
    )
    timings: dict[RunPhase, float] = Field(default_factory=dict)
    latency_ms: float | None = Field(
        default=None,
        description="Median milliseconds per invoke of one sample (budgets.latency_runs "
        "timed invokes after a warm-up); null when latency was not measured.",
    )
    latency_runs: int | None = None
    latency_threads: int | None = None
    custom_op_registerers: list[str] = Field(
        default_factory=list,
        description="Custom-op registerers the policy loaded into this run (none: the "
        "runtime resolved every custom op it executed by itself).",
    )
    custom_ops_executed: list[str] = Field(
        default_factory=list,
        description="The model's custom ops that executed in this run.",
    )
    unresolved_custom_ops: list[str] = Field(
        default_factory=list,
        description="Custom ops the runtime had no kernel for (it names the first it meets).",
    )

    @property
    def label(self) -> str:
        """The runtime and its version, unless the name already pins that version."""
        version = self.runtime_version
        return (
            self.runtime if not version or version in self.runtime else f"{self.runtime} {version}"
        )

    @property
    def custom_ops_resolver(self) -> str:
        """Who supplied the kernels of the executed custom ops, as far as the gate knows."""
        if not self.custom_op_registerers:
            return "resolved by the runtime itself"
        return "with the policy's registerers " + ", ".join(self.custom_op_registerers)


class LayerStat(_Model):
    """One op output of a quantized variant against its float twin."""

    tensor: str = Field(description="The op's output tensor: the name keep_float.nodes takes.")
    op: str
    rel_rmse: float | None = Field(description="Relative error that reached this tensor.")
    added: float = Field(
        description="Relative error the op made itself: for int8 its output against its "
        "float op on the same quantized inputs (output requantization included); for other "
        "variants rel_rmse minus the worst rel_rmse of the op's inputs."
    )
    share: float = Field(
        description="Its part of the error at the model outputs (what reaches an output is "
        "split, going upstream, into what each op made and what its inputs brought)."
    )
    rmse_over_scale: float | None = Field(
        default=None,
        description="rmse in quantization steps of the tensor (about 0.3 is rounding).",
    )


class KeepFloatTrial(_Model):
    """The variant quantized again with `nodes` and `ops` left in float, run and compared."""

    nodes: list[str] = Field(description="keep_float.nodes of the trial: op output tensors.")
    ops: list[str] = Field(
        default_factory=list, description="keep_float.ops of the trial: op types."
    )
    runtime: str
    status: RunStatus
    message: str | None = None
    metrics: list[OutputMetrics] = Field(default_factory=list)
    violations: list[ThresholdViolation] = Field(default_factory=list)


class LayerDiagnosis(_Model):
    """Where a quantized variant that broke a threshold loses its accuracy, and (int8) a
    fix that was verified (converted, run and compared) before it is suggested."""

    runtime: str = Field(description="The runtime whose run broke the threshold.")
    before: list[OutputMetrics] = Field(description="That run's metrics.")
    layers: list[LayerStat] = Field(default_factory=list)
    trials: list[KeepFloatTrial] = Field(default_factory=list)
    keep_float: list[str] | None = Field(
        default=None,
        description="keep_float.nodes of the first trial that passes (None: none passed).",
    )
    keep_float_ops: list[str] | None = Field(
        default=None, description="keep_float.ops of that trial (None: none passed)."
    )
    snippet: str | None = Field(default=None, description="That fix as policy YAML.")
    error: str | None = Field(default=None, description="Why the layers could not be measured.")

    def fix(self) -> KeepFloatTrial | None:
        """The trial that passed: its keep_float is the fix the report offers."""
        if self.keep_float is None:
            return None
        ops = self.keep_float_ops or []
        return next((t for t in self.trials if t.nodes == self.keep_float and t.ops == ops), None)


class VariantReport(_Model):
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


class WrittenBy(_Model):
    tensorflow: str | None = None
    keras: str | None = None


CacheStatus = Literal["reused", "stored", "not-stored", "disabled"]


class CacheUse(_Model):
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


class ModelReport(_Model):
    name: str
    source: str
    source_kind: SourceKind | None = None
    loaded: bool = False
    written_by: WrittenBy | None = None
    inputs: list[TensorInfo] = Field(default_factory=list)
    variants: list[VariantReport] = Field(default_factory=list)
    cache: CacheUse | None = None
    timings: dict[ModelPhase, float] = Field(default_factory=dict)


class SuggestedThreshold(_Model):
    """One broken threshold and a value that passes on this run's data, with the margin."""

    model: str
    variant: str
    output: str | None = Field(
        description="The output it is written for (under `per_output`); null: every output "
        "of the variant."
    )
    key: ThresholdKey
    threshold: float = Field(description="The threshold that was broken.")
    measured: float = Field(
        description="The worst value measured, over the outputs and runtimes it covers."
    )
    value: float = Field(description="The suggested threshold: the measured value, loosened.")
    location: Location | None = Field(description="Where the broken threshold is written.")
    placed_at: str = Field(
        description="The policy block the snippet writes it in, e.g. "
        "`models[1].variants[0].max_divergence`."
    )


class ThresholdSuggestion(_Model):
    """Thresholds that make the broken ones pass, as a snippet to merge into the policy."""

    margin: float = Field(
        description="How much larger the measured error may grow (1.0: twice as large); "
        "cosine's distance from 1 and the SNR follow from the same error."
    )
    thresholds: list[SuggestedThreshold]
    snippet: str = Field(
        description="YAML to merge into the policy (list entries matched by `name`), checked "
        "before it is suggested: with it, every threshold above passes on this run's metrics."
    )


class OpVersionChange(_Model):
    op: str
    before: int
    after: int


class OpCountChange(_Model):
    """How often an op that both sides use occurs (all versions together)."""

    op: str
    before: int
    after: int


class MetricChange(_Model):
    """A metric whose value reads differently (at six significant digits) than in the baseline."""

    runtime: str
    output: str
    metric: MetricName
    before: float | None
    after: float | None


class LatencyChange(_Model):
    runtime: str
    before_ms: float
    after_ms: float


class VariantChange(_Model):
    """One variant against the same model and variant in the baseline report."""

    model: str
    variant: str
    presence: Literal["both", "new", "gone"] = Field(
        default="both", description="new: not in the baseline; gone: only in the baseline."
    )
    size_before: int | None = None
    size_after: int | None = None
    ops_added: list[str] = Field(default_factory=list)
    ops_removed: list[str] = Field(default_factory=list)
    versions: list[OpVersionChange] = Field(default_factory=list)
    counts: list[OpCountChange] = Field(default_factory=list)
    runtime_before: str | None = None
    runtime_after: str | None = None
    metrics: list[MetricChange] = Field(default_factory=list)
    latency: list[LatencyChange] = Field(default_factory=list)


class BaselineComparison(_Model):
    """This run against an earlier report (`check --baseline`): what changed, per variant."""

    report: str = Field(description="The baseline report, as given.")
    started_at: str = Field(description="When the baseline run started.")
    tool_version: str
    variants: list[VariantChange] = Field(default_factory=list)


class Summary(_Model):
    errors: int = 0
    warnings: int = 0
    notices: int = 0


class Shard(_Model):
    """What a `check --only` run covered: part of a run split over CI jobs."""

    models: list[str]
    runtimes: list[str] | None = Field(
        default=None, description="The runtimes it ran (--runtime); null: all of them."
    )


class Report(_Model):
    schema_version: Literal[1] = 1
    tool: Tool
    verdict: Verdict = Field(
        default="pass",
        description="error: no verdict could be given (an internal error, a usage error, or "
        "a policy that could not be loaded); cancelled: the run was stopped by SIGTERM/SIGINT; "
        "the report holds what finished (the model being checked with what it had) and a "
        "`cancelled` finding.",
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
        """Count findings and set the verdict from `fail_on` (exit code follows it)."""
        self.fail_on = fail_on
        self.summary = Summary(
            errors=sum(f.severity is Severity.ERROR for f in self.findings),
            warnings=sum(f.severity is Severity.WARNING for f in self.findings),
            notices=sum(f.severity is Severity.NOTICE for f in self.findings),
        )
        if self.internal_error is not None or any(
            f.rule == "usage-error" or (f.rule == "policy-invalid" and not self.models)
            for f in self.findings
        ):  # the gate could not start checking what the user meant it to
            self.verdict = "error"
            return
        if any(f.rule == "cancelled" for f in self.findings):  # partial: neither pass nor fail
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

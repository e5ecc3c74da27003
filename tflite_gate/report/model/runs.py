"""One variant run on one runtime: status, metrics per output, the thresholds it
broke or skipped, and a quantized variant's layer diagnosis.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from tflite_gate.report.model.base import StrictModel

MetricName = Literal["max_abs", "mean_abs", "rmse", "rel_rmse", "cosine", "snr_db", "top1"]


ThresholdKey = Literal[
    "max_abs", "mean_abs", "rmse", "rel_rmse", "min_cosine", "min_snr_db", "min_top1"
]


Infinity = Literal["inf", "-inf"]


FLOAT_ROUNDING_REL_RMSE = 1e-5
"""A relative RMSE this small is float rounding: the float kernels of two CPUs (or two
builds of one runtime) differ by about this much where neither loses accuracy."""


class OutputMetrics(StrictModel):
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


class ThresholdViolation(StrictModel):
    """One policy threshold a run broke, decided where the metrics were computed."""

    output: str
    threshold_key: ThresholdKey
    metric: MetricName
    value: float | None = Field(description="The measured value; null when infinite.")
    infinite: Infinity | None = None
    threshold: float
    worst_sample: int | None = None


class SkippedThreshold(StrictModel):
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


RunPhase = Literal["execute", "compare"]


class RuntimeRun(StrictModel):
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


class LayerStat(StrictModel):
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


class KeepFloatTrial(StrictModel):
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


class LayerDiagnosis(StrictModel):
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

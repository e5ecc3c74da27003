"""What a report offers beyond its findings: suggested thresholds, and the changes
against a baseline report.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tflite_gate.findings import Location
from tflite_gate.report.model.base import StrictModel
from tflite_gate.report.model.runs import MetricName, ThresholdKey


class SuggestedThreshold(StrictModel):
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


class ThresholdSuggestion(StrictModel):
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


class OpVersionChange(StrictModel):
    op: str
    before: int
    after: int


class OpCountChange(StrictModel):
    """How often an op that both sides use occurs (all versions together)."""

    op: str
    before: int
    after: int


class MetricChange(StrictModel):
    """A metric whose value reads differently (at six significant digits) than in the baseline."""

    runtime: str
    output: str
    metric: MetricName
    before: float | None
    after: float | None


class LatencyChange(StrictModel):
    runtime: str
    before_ms: float
    after_ms: float


class VariantChange(StrictModel):
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


class BaselineComparison(StrictModel):
    """This run against an earlier report (`check --baseline`): what changed, per variant."""

    report: str = Field(description="The baseline report, as given.")
    started_at: str = Field(description="When the baseline run started.")
    tool_version: str
    variants: list[VariantChange] = Field(default_factory=list)

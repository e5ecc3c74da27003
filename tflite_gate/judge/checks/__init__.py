"""Facts → findings: one small function per rule, in modules by family.

Checks read a model's resolved policy (`ModelConfig`) and what the pipeline
recorded in the report, and return findings. They never print and never
decide the verdict. A finding caused by a policy setting points at that
setting; one caused by model code points at the code.

Families: `load` (versions, loading, source keys, references), `conversion`,
`inspection` (ops, runtime, size), `execution` (runs, latency), `divergence`
(non-finite outputs, thresholds), `data`, `regression` (against a baseline),
`environment` (disk and permissions); `common` holds what they share.
"""

from tflite_gate.judge.checks.common import (
    crash_location,
    fixed_batch_hint,
    limit_action,
    raise_limit,
    setting_location,
    version_less,
)
from tflite_gate.judge.checks.conversion import check_conversion, check_converter_warnings
from tflite_gate.judge.checks.data import check_evaluation, data_location
from tflite_gate.judge.checks.divergence import (
    check_classification_names,
    check_divergence,
    check_skipped_thresholds,
    check_uncompared_thresholds,
)
from tflite_gate.judge.checks.environment import FULL_OR_READ_ONLY, check_environment_error
from tflite_gate.judge.checks.execution import (
    FLEX_RUNTIME_SUGGESTION,
    check_custom_op_run,
    check_flex_runs,
    check_latency_budget,
    check_run,
    check_unavailable_runtime,
)
from tflite_gate.judge.checks.inspection import (
    DYNAMIC_SHAPE_OPS,
    INTEGER_IO,
    QUANTIZE_OPS,
    RESOURCE_VARIABLE_OPS,
    UNFROZEN_FIX,
    VARIANT_CHECKS,
    check_custom_ops,
    check_flex_ops,
    check_ops_allowed,
    check_runtime,
    check_size_budget,
    check_unfrozen_variables,
    uninitialised_variable_ops,
)
from tflite_gate.judge.checks.load import (
    check_input_pairing,
    check_load,
    check_reference,
    check_source_keys,
    check_version_spec,
)
from tflite_gate.judge.checks.regression import check_regressions, metric_worsening

__all__ = [
    "DYNAMIC_SHAPE_OPS",
    "FLEX_RUNTIME_SUGGESTION",
    "FULL_OR_READ_ONLY",
    "INTEGER_IO",
    "QUANTIZE_OPS",
    "RESOURCE_VARIABLE_OPS",
    "UNFROZEN_FIX",
    "VARIANT_CHECKS",
    "check_classification_names",
    "check_conversion",
    "check_converter_warnings",
    "check_custom_op_run",
    "check_custom_ops",
    "check_divergence",
    "check_environment_error",
    "check_evaluation",
    "check_flex_ops",
    "check_flex_runs",
    "check_input_pairing",
    "check_latency_budget",
    "check_load",
    "check_ops_allowed",
    "check_reference",
    "check_regressions",
    "check_run",
    "check_runtime",
    "check_size_budget",
    "check_skipped_thresholds",
    "check_source_keys",
    "check_unavailable_runtime",
    "check_uncompared_thresholds",
    "check_unfrozen_variables",
    "check_version_spec",
    "crash_location",
    "data_location",
    "fixed_batch_hint",
    "limit_action",
    "metric_worsening",
    "raise_limit",
    "setting_location",
    "uninitialised_variable_ops",
    "version_less",
]

"""Thresholds that pass on the measured data, with a margin, as a snippet for the policy.

A divergence finding already names the tightest value that would have passed; a
threshold set to exactly that fails on the next machine, whose float kernels round
differently. This module loosens measured values by a stated margin and writes them
where they take effect: the variant's own entry (or the model's, for a `.tflite`
source's run), under `per_output` when only some outputs need it or the broken value
was written there. It serves `tflite-gate suggest`, the collapsed section of a failing
run's summary and comment (the pipeline stores the suggestion in the report), and
`tflite-gate init` (the thresholds of a first policy).

A variant no threshold should pass (`output_defect`) gets none: a value that would
also pass an unrelated output switches the check off. `tflite-gate suggest` also
writes the `ops.allow` additions and the `target_runtime` the variants need, each
marked as the loosening it is.

Every snippet is checked before it is offered: merged into the policy as a user would
paste it and resolved again, each threshold it writes must pass on the metrics of the
report it came from, and the ops and runtime checks must no longer fire for what it
allows.

Modules: `measure` (what broke, by how much, loosened), `defects`, `snippet`
(placing and merging YAML), `thresholds`, `policy` (the whole `suggest` snippet).
"""

from tflite_gate.judge.suggest.defects import Defect, find_defects, metrics_by_output, output_defect
from tflite_gate.judge.suggest.measure import (
    DIGITS,
    Broken,
    SuggestionError,
    broken_in,
    configured_models,
    loosened,
    measured_text,
    metric_value,
    worse,
)
from tflite_gate.judge.suggest.policy import (
    Loosening,
    PolicySuggestion,
    annotated_snippet,
    policy_loosenings,
    suggest_policy,
)
from tflite_gate.judge.suggest.snippet import (
    block_in,
    dotted,
    merge,
    pasted_policy,
    policy_mapping,
    variant_entry,
    yaml_text,
)
from tflite_gate.judge.suggest.thresholds import (
    add_keep_float_snippets,
    still_broken,
    suggest_thresholds,
    suggestion_for,
    verify,
)

__all__ = [
    "DIGITS",
    "Broken",
    "Defect",
    "Loosening",
    "PolicySuggestion",
    "SuggestionError",
    "add_keep_float_snippets",
    "annotated_snippet",
    "block_in",
    "broken_in",
    "configured_models",
    "dotted",
    "find_defects",
    "loosened",
    "measured_text",
    "merge",
    "metric_value",
    "metrics_by_output",
    "output_defect",
    "pasted_policy",
    "policy_loosenings",
    "policy_mapping",
    "still_broken",
    "suggest_policy",
    "suggest_thresholds",
    "suggestion_for",
    "variant_entry",
    "verify",
    "worse",
    "yaml_text",
]

"""`tflite-gate init`: a first policy, measured on the model, that passes as written.

The model is checked once with a probe policy that sets no limit (the variants asked
for, any builtin op, no thresholds), through the same pipeline as `check`, so the
conversions land in the cache the next `check` reuses. The starter policy then
writes down what was measured: the builtin ops used as `ops.allow`, the newest
runtime they need as `target_runtime`, and per variant the measured divergence,
loosened by the margin, as `max_divergence`. Nothing is guessed: an input whose
sizes are unknown stops `init` with the question, and a model that does not convert
or run stops it with the findings. The text is loaded and its thresholds checked
against the probe's metrics before it replaces anything.
"""

from tflite_gate.app.init.command import run_init
from tflite_gate.app.init.request import InitOutcome, InitRequest

__all__ = ["InitOutcome", "InitRequest", "run_init"]

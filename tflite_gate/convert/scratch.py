"""The files a conversion worker leaves in its scratch: what the two sides agree on.

The worker writes them as it goes; the gate reads them back after the worker ended
(or died), joins those of workers that shared the variants, and the cache keeps the
result files. A `.started` file without its `.json` names what the worker was doing
when it died.
"""

from __future__ import annotations

import re

LOAD_FILE = "load.json"
EVALUATION_FILE = "evaluation.json"
EVALUATION_STARTED = "evaluation.started"
EVALUATION_INPUTS_FILE = "evaluation-inputs.npz"
REFERENCE_OUTPUTS_FILE = "reference-outputs.npz"
# What a finished worker leaves in its scratch, and all a cached conversion keeps.
DEPENDENCIES_FILE = "dependencies.json"
DIAGNOSIS_FILE = "diagnosis.json"

# The files of a worker's results (what the gate reads back), as opposed to its logs,
# requests and intermediate SavedModel.
RESULT_FILE = re.compile(
    r"^(load\.json|evaluation\.json|evaluation-inputs\.npz|reference-outputs\.npz"
    r"|variant-.+\.(json|tflite))$"
)


def variant_file(variant: str, suffix: str) -> str:
    """`variant-NAME.SUFFIX`: its result (json), model (tflite), log, or started mark."""
    return f"variant-{variant}.{suffix}"

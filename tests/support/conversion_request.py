"""Conversion requests for the convert/ tests, built as the pipeline builds them.

`prepared_model` loads the request's source in this process, as the worker does
(TensorFlow: only for slow tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tflite_gate.model.loader import PreparedModel, load_as_saved_model
from tflite_gate.model.sources import classify
from tflite_gate.run.protocol import ConversionRequest, VariantRequest

QUANTIZATION = {"float": "none", "dynamic": "dynamic", "int8": "int8", "int16x8": "int16x8"}

# A factory whose op has no builtin kernel: the converter needs Flex for it, and its
# error carries the line that made the op (line 5).
FLEX_FACTORY = """\
import tensorflow as tf

@tf.function(input_signature=[tf.TensorSpec([3, 3], tf.float32)])
def det(x):
    return tf.linalg.det(tf.linalg.matmul(x, x, transpose_b=True))

def build():
    return det
"""


def conversion_request(
    workspace: Path, source: str = "tiny.keras", *variants: str, **changes: Any
) -> ConversionRequest:
    """A request for `source` in `workspace` (scratch inside it), one variant per name."""
    path = None if ":" in source else workspace / source
    request = ConversionRequest(
        workspace=str(workspace),
        scratch=str(workspace / "scratch"),
        source_kind=classify(source, path) or "keras",
        source=source,
        source_path=str(path) if path else None,
        input_shapes={},
        signature=None,
        safe_mode=True,
        select_tf_ops=False,
        allow_custom_ops=False,
        variants=[VariantRequest(name=name, quantization=QUANTIZATION[name]) for name in variants],
    )
    return request.model_copy(update=changes)


def prepared_model(request: ConversionRequest) -> PreparedModel:
    """The request's source loaded and exported as the worker does it, in this process."""
    scratch = Path(request.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    return load_as_saved_model(
        kind=request.source_kind,
        source=request.source,
        path=Path(request.source_path) if request.source_path else None,
        workspace=Path(request.workspace),
        scratch=scratch,
        input_shapes=request.input_shapes,
        signature=request.signature,
        safe_mode=request.safe_mode,
    )

"""What a conversion worker saved, read back for the runs (the conversion itself is e2e)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tflite_gate.pipeline.conversion import load_evaluation
from tflite_gate.run.protocol import EvaluationResult


def test_the_saved_inputs_and_reference_outputs_are_read_by_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "inputs.npz", x=np.ones((2, 4), np.float32))
    np.savez(tmp_path / "reference.npz", probs=np.zeros((2, 3), np.float32))
    # The worker names its files bare; the gate reads them from the worker's scratch.
    evaluation = EvaluationResult(
        ok=True, inputs_path="inputs.npz", reference_path="reference.npz", samples=2
    )
    evaluation.inputs_path = str(tmp_path / "inputs.npz")
    evaluation.reference_path = str(tmp_path / "reference.npz")
    inputs, reference = load_evaluation(evaluation)
    assert inputs is not None and reference is not None
    assert inputs["x"].shape == (2, 4)
    assert reference["probs"].shape == (2, 3)


def test_no_evaluation_or_a_failed_one_gives_nothing_to_run() -> None:
    assert load_evaluation(None) == (None, None)
    assert load_evaluation(EvaluationResult(ok=False, error="no data")) == (None, None)

"""A real runner that runs a .tflite with LiteRT inside the test process.

It implements the gate's `PreparedRunner` protocol, as the GPU, microcontroller and NPU
runners will: put in a run's context where a prepared runtime belongs, it lets
pipeline tests execute real models (built by `tflite_builder`, or converted) in-process,
where the gate's own runner would start an interpreter worker. Inputs and outputs are
keyed by signature names when the model has a signature, else by tensor names, as the
interpreter worker keys them; a failure is a result that names its phase, never a raise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tflite_gate.run.runner import Arrays, RunJob, RunnerNeeds, RunResult


@dataclass
class LiteRTInProcess:
    """Every sample through the model, one invoke each, in this process."""

    name: str = "ai-edge-litert"
    version: str | None = "in-process"
    reused: Path | None = None
    needs: RunnerNeeds = field(default_factory=RunnerNeeds)
    models: list[Path] = field(default_factory=list)  # what it was asked to run, in order

    def run(self, model: Path, inputs: Arrays, job: RunJob) -> RunResult:
        self.models.append(model)
        started = time.monotonic()
        phase = "load"
        try:
            interpreter = Interpreter(model_path=str(model), num_threads=job.num_threads)
            phase = "allocate"
            interpreter.allocate_tensors()
            phase = "invoke"
            outputs = _outputs(interpreter, inputs)
        except (RuntimeError, ValueError, KeyError) as error:
            return RunResult(
                status="error", phase=phase, sample=None, signal=None, message=str(error)
            )
        return RunResult(
            status="ok",
            phase=None,
            sample=None,
            signal=None,
            message=None,
            outputs=outputs,
            runtime_version=self.version,
            duration_s=time.monotonic() - started,
        )


def _outputs(interpreter: Interpreter, inputs: Arrays) -> Arrays:
    """Each output stacked over the samples, keyed as the interpreter worker keys them."""
    count = len(next(iter(inputs.values())))
    if interpreter.get_signature_list():
        signature = interpreter.get_signature_runner()
        runs = [signature(**{k: v[i] for k, v in inputs.items()}) for i in range(count)]
    else:
        runs = [_invoke_by_tensor_names(interpreter, inputs, i) for i in range(count)]
    return {name: np.stack([run[name] for run in runs]) for name in runs[0]}


def _invoke_by_tensor_names(interpreter: Interpreter, inputs: Arrays, sample: int) -> Any:
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], inputs[detail["name"]][sample])
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}

"""A failed run's reproducer: the model, the failing sample and a plain script.

A user attaches it to a bug report for the runtime; it needs numpy and the runtime
only, not tflite-gate, and feeds the model the way the interpreter worker does.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tflite_gate.run.arrays import save_npz
from tflite_gate.run.runner import RunResult
from tflite_gate.support.files import write_directory_atomic

_SCRIPT = '''\
"""Reproduce what tflite-gate saw: {summary}

Run `python reproduce.py [MODULE]` next to {model!r} and inputs.npz; MODULE defaults to
{module!r} (any module with an `Interpreter` class, e.g. tflite_runtime.interpreter).
Needs numpy and the runtime only, not tflite-gate.
"""

import importlib
import sys
from pathlib import Path

import numpy as np

here = Path(__file__).resolve().parent
module = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else {module!r})
interpreter = module.Interpreter(model_path=str(here / {model!r}), num_threads={threads})
signatures = interpreter._get_full_signature_list()  # the gate feeds by signature names
key = "serving_default" if "serving_default" in signatures else next(iter(signatures), None)
details = {{d["index"]: d for d in interpreter.get_input_details()}}
names = signatures[key]["inputs"] if key else {{d["name"]: i for i, d in details.items()}}
interpreter.allocate_tensors()
feeds = np.load(here / "inputs.npz")
for sample in range(len(feeds[feeds.files[0]])):
    for name, index in names.items():
        value, detail = feeds[name][sample], details[index]
        scale, zero_point = detail["quantization"]
        if scale and value.dtype.kind == "f" and np.dtype(detail["dtype"]).kind in "iu":
            info = np.iinfo(detail["dtype"])  # the gate quantizes float data for int I/O
            value = np.clip(np.round(value / scale + zero_point), info.min, info.max)
        value = value.astype(detail["dtype"])
        if list(value.shape) != list(detail["shape"]):
            interpreter.resize_tensor_input(index, list(value.shape), strict=False)
            interpreter.allocate_tensors()
            details = {{d["index"]: d for d in interpreter.get_input_details()}}
        interpreter.set_tensor(index, value)
    interpreter.invoke()
    print(f"sample {{sample}}: invoke returned", flush=True)
'''


def write_reproducer(
    directory: Path,
    model: Path,
    inputs: dict[str, np.ndarray[Any, Any]],
    module: str,
    result: RunResult,
    *,
    num_threads: int = 2,
) -> Path:
    """Model copy, the failing sample (all samples if unknown) and a plain script.

    Written whole or not at all: a reproducer missing its model or inputs would send
    a user chasing the wrong bug.
    """
    count = min((len(v) for v in inputs.values()), default=0)
    sample = result.sample
    if sample is not None and 0 <= sample < count:
        inputs = {name: value[sample : sample + 1] for name, value in inputs.items()}
    what = result.signal or result.status
    where = f" in {result.phase}" if result.phase else ""
    at = f" of sample {sample}" if sample is not None else ""
    script = _SCRIPT.format(
        summary=f"{what}{where}{at}.", model=model.name, module=module, threads=num_threads
    )

    def fill(partial: Path) -> None:
        shutil.copyfile(model, partial / model.name)
        save_npz(partial / "inputs.npz", inputs)
        (partial / "reproduce.py").write_text(script)

    write_directory_atomic(directory, fill)
    return directory

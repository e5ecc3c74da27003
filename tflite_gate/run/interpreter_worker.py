"""Run a .tflite model on samples in a worker process: `python interpreter_worker.py REQUEST`.

Self-contained on purpose: the gate runs this file by path under other
environments' Pythons (e.g. one with `tflite-runtime==2.14.0` and numpy 1.x)
where tflite_gate is not installed, so it imports only the standard library,
numpy and the runtime module named in the request, and keeps to Python 3.8 /
numpy 1.x syntax and APIs at runtime.

Before each phase it appends a line to the status file and flushes it, so when
the runtime segfaults, aborts, hangs or is killed for memory, the parent still
knows the phase and sample it died in. Python exceptions are caught and written
to the result file; the exit code is 0 whenever a result was written.

The request and the result are the dataclasses `InterpreterRequest` and
`InterpreterResult`: the gate validates them with pydantic, and this worker, which
has no pydantic, checks its request against the same fields with `checked`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run by path, Python puts this file's directory first on sys.path, where the
# package's own modules (`inspect.py`, `data.py`, ...) would shadow the standard
# library and site-packages. Drop it before importing anything else.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != _HERE]

import ctypes  # noqa: E402
import dataclasses  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import IO, Any, ClassVar  # noqa: E402

try:
    import numpy as np
except Exception as _exc:  # reported as an import failure, like a missing runtime
    _NUMPY_ERROR: Exception | None = _exc
else:
    _NUMPY_ERROR = None

ERROR_LINES = 20
FLEX_MARKERS = ("Select TensorFlow op", "Flex")
# "Encountered unresolved custom op: GateAddOne." (LiteRT, tflite-runtime, TF's interpreter)
UNRESOLVED_CUSTOM_OP = re.compile(r"Encountered unresolved custom op: (.+?)\.(?=\s|$)")
QUANTIZED_KINDS = ("int8", "uint8", "int16")
SIGNATURE_KEY = "serving_default"


# --------------------------------------------------------------------------- protocol


@dataclass
class InterpreterRequest:
    """What the gate asks for: a model, the runtime module, and where each file goes."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}  # for the gate

    model: str
    module: str
    inputs: str
    outputs: str
    result: str
    status: str
    num_threads: int = 1
    batch: int = 1
    latency_runs: int = 0  # timed invokes on the first sample after the outputs; 0: none
    latency_threads: int = 0  # threads for the timed invokes; 0: num_threads
    custom_op_registerers: list[str] = field(default_factory=list)
    custom_op_libraries: list[str] = field(default_factory=list)
    pythonpath: list[str] = field(default_factory=list)


@dataclass
class InterpreterResult:
    """What the worker found: outputs written (`ok`), or the phase and sample that failed."""

    __pydantic_config__: ClassVar[dict[str, str]] = {"extra": "forbid"}

    ok: bool
    samples: int = 0
    runtime_version: str | None = None
    outputs: list[str] = field(default_factory=list)
    input_names: list[str] = field(default_factory=list)
    ragged: dict[str, list[str]] = field(default_factory=dict)
    batched: bool = False
    latency_ms: float | None = None  # median of the timed invokes
    phase: str | None = None
    sample: int | None = None
    error: str | None = None
    kind: str | None = None
    unresolved_custom_ops: list[str] = field(default_factory=list)


class SchemaError(ValueError):
    """A message that does not fit its dataclass: which field, and what was expected."""


class _Check:
    """A field's annotation as a check; `a | None` and `list[...]` build bigger ones."""

    def __init__(self, name: str, test: Any) -> None:
        self.name, self.test = name, test

    def __or__(self, other: _Check | None) -> _Check:
        right = _NONE if other is None else other
        return _Check(f"{self.name} | {right.name}", lambda v: self.test(v) or right.test(v))

    def __getitem__(self, arguments: Any) -> _Check:
        if self.name == "list":
            item = arguments
            return _Check(f"list[{item.name}]", lambda v: _is_list(v, item))
        key, value = arguments
        return _Check(f"dict[{key.name}, {value.name}]", lambda v: _is_dict(v, key, value))


def _is_list(value: Any, item: _Check) -> bool:
    return isinstance(value, list) and all(item.test(v) for v in value)


def _is_dict(value: Any, key: _Check, item: _Check) -> bool:
    return isinstance(value, dict) and all(key.test(k) and item.test(v) for k, v in value.items())


_NONE = _Check("None", lambda v: v is None)
# bool is an int in Python, not in JSON's schema: an int field refuses true and false.
_ANNOTATIONS = {
    "str": _Check("str", lambda v: isinstance(v, str)),
    "int": _Check("int", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "bool": _Check("bool", lambda v: isinstance(v, bool)),
    "float": _Check("float", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    "list": _Check("list", lambda v: isinstance(v, list)),
    "dict": _Check("dict", lambda v: isinstance(v, dict)),
}


def checked(kind: Any, raw: Any) -> Any:
    """`raw` (parsed JSON) as a `kind` dataclass, or SchemaError naming the field at fault.

    The annotations are strings (postponed evaluation); they are read with the checks
    above, which needs neither pydantic nor a Python that can subscript `list`.
    """
    if not isinstance(raw, dict):
        raise SchemaError(f"{kind.__name__}: expected an object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SchemaError(f"{kind.__name__}: unknown field(s) {', '.join(unknown)}")
    for name, spec in fields.items():
        required = (
            spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        )
        if name not in raw:
            if required:
                raise SchemaError(f"{kind.__name__}.{name}: required")
            continue
        check = eval(str(spec.type), {"__builtins__": {}}, _ANNOTATIONS)
        if not check.test(raw[name]):
            got = type(raw[name]).__name__
            raise SchemaError(f"{kind.__name__}.{name}: expected {check.name}, got {got}")
    return kind(**raw)


# --------------------------------------------------------------------------- running


class PhaseError(Exception):
    """A failure the worker reports as a result (not a crash): phase, sample and message."""

    def __init__(self, phase: str, sample: int | None, message: str, kind: str = "error"):
        super().__init__(message)
        self.phase, self.sample, self.message, self.kind = phase, sample, message, kind


def _message(exc: BaseException) -> str:
    """The runtime's own words, cut to `ERROR_LINES` lines (some messages run long)."""
    text = str(exc).strip()
    half = len(text) // 2
    if text and text[:half] == text[half:]:  # tflite-runtime 2.14 repeats some messages
        text = text[:half]
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines[:ERROR_LINES]) or type(exc).__name__


def _exception_line(exc: BaseException) -> str:
    """`ModuleNotFoundError: No module named 'numpy'`: the type and the last line say it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return type(exc).__name__ + (": " + lines[-1] if lines else "")


def _kind(message: str) -> str:
    """Failures that are not a runtime bug get their own kind, so the parent can say why.

    Select TF ops need the Flex delegate, which most Python interpreters do not link;
    a custom op needs a kernel registered by the application (or the policy).
    """
    if UNRESOLVED_CUSTOM_OP.search(message):
        return "unresolved-custom-op"
    return "unsupported-flex" if any(m in message for m in FLEX_MARKERS) else "error"


def unresolved_custom_ops(message: str) -> list[str]:
    """The custom ops the runtime names as unresolved, in order, each once."""
    names: list[str] = []
    for name in UNRESOLVED_CUSTOM_OP.findall(message):
        if name not in names:
            names.append(name)
    return names


def _runtime_version(module_name: str, module: Any) -> str | None:
    """The runtime package's version: its `__version__`, else its distribution's metadata."""
    top_name = module_name.split(".")[0]
    top = sys.modules.get(top_name)
    for candidate in (module, top):
        version = getattr(candidate, "__version__", None)
        if isinstance(version, str):
            return version
    try:
        from importlib import metadata

        # packages_distributions is Python 3.10+; older Pythons guess dist = package.
        mapping: dict[str, list[str]] = getattr(metadata, "packages_distributions", dict)()
        for dist in mapping.get(top_name, [top_name]):
            return str(metadata.version(dist))
    except Exception:
        return None
    return None


def _io_maps(interpreter: Any) -> tuple[dict[str, int], dict[str, int]]:
    """Input and output name → tensor index, by signature names when the model has any."""
    get_signatures = getattr(interpreter, "_get_full_signature_list", None)
    signatures = get_signatures() if get_signatures is not None else {}
    if signatures:
        key = SIGNATURE_KEY if SIGNATURE_KEY in signatures else next(iter(signatures))
        chosen = signatures[key]
        return dict(chosen["inputs"]), dict(chosen["outputs"])
    inputs = {d["name"]: int(d["index"]) for d in interpreter.get_input_details()}
    outputs = {d["name"]: int(d["index"]) for d in interpreter.get_output_details()}
    return inputs, outputs


def _quantization(detail: dict[str, Any]) -> tuple[Any, Any] | None:
    """(scale, zero_point) broadcastable to the tensor, or None if not quantized I/O."""
    if np.dtype(detail["dtype"]).name not in QUANTIZED_KINDS:
        return None
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), dtype=np.float32)
    zeros = np.asarray(params.get("zero_points", []), dtype=np.float32)
    if scales.size == 0:
        scale, zero = detail.get("quantization", (0.0, 0))
        scales, zeros = np.asarray([scale], np.float32), np.asarray([zero], np.float32)
    if not np.any(scales):
        return None
    if scales.size == 1:
        return scales[0], (zeros[0] if zeros.size else np.float32(0))
    shape = [1] * len(detail["shape"])
    shape[int(params.get("quantized_dimension", 0))] = -1
    return scales.reshape(shape), zeros.reshape(shape)


def prepare_feed(value: Any, detail: dict[str, Any]) -> Any:
    """The array set_tensor gets: float feeds to quantized inputs are quantized, else cast."""
    dtype = np.dtype(detail["dtype"])
    value = np.asarray(value)
    if value.dtype == dtype:
        return value
    quant = _quantization(detail)
    if quant is not None and value.dtype.kind == "f":
        info = np.iinfo(dtype)
        scaled = np.round(value.astype(np.float32) / quant[0] + quant[1])
        return np.clip(scaled, info.min, info.max).astype(dtype)
    return value.astype(dtype)


def read_output(value: Any, detail: dict[str, Any]) -> Any:
    """Quantized outputs come back as real float32 values so comparisons are in real units."""
    quant = _quantization(detail)
    if quant is None:
        return np.array(value)
    return ((np.asarray(value, np.float32) - quant[1]) * quant[0]).astype(np.float32)


class _Status:
    """JSON lines, flushed before each phase: the last line survives a crash."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.phase = "start"
        self.sample: int | None = None

    def mark(self, phase: str, sample: int | None = None, batch: int = 1) -> None:
        self.phase, self.sample = phase, sample
        entry: dict[str, Any] = {"phase": phase}
        if sample is not None:
            entry["sample"] = sample
        if batch > 1:  # samples `sample` .. `sample + batch - 1` in one invoke
            entry["batch"] = batch
        self.handle.write(json.dumps(entry) + "\n")
        self.handle.flush()


def _load_feeds(path: str, names: dict[str, int]) -> tuple[dict[str, Any], int]:
    with np.load(path) as archive:
        feeds = {key: archive[key] for key in archive.files}
    missing = [name for name in names if name not in feeds]
    if missing:
        raise PhaseError(
            "load",
            None,
            f"no data for model input(s) {missing}; model inputs: {list(names)}, "
            f"data has: {list(feeds)}",
        )
    counts = {name: int(feeds[name].shape[0]) for name in names}
    if len(set(counts.values())) > 1:
        raise PhaseError("load", None, f"inputs have different sample counts: {counts}")
    return {name: feeds[name] for name in names}, next(iter(counts.values()), 0)


def _run_sample(
    interpreter: Any, status: _Status, sample: int, feed: dict[str, Any], inputs: dict[str, int]
) -> None:
    """Resize and re-allocate if this sample's shapes differ, then set the inputs and invoke."""
    details = {int(d["index"]): d for d in interpreter.get_input_details()}
    values = {inputs[name]: prepare_feed(feed[name], details[i]) for name, i in inputs.items()}
    resize = [i for i, v in values.items() if list(v.shape) != list(details[i]["shape"])]
    if resize:
        status.mark("allocate", sample)
        for index in resize:
            interpreter.resize_tensor_input(index, list(values[index].shape), strict=False)
        interpreter.allocate_tensors()
    status.mark("invoke", sample)
    for index, value in values.items():
        interpreter.set_tensor(index, value)
    interpreter.invoke()


def _resize_to_first_sample(
    interpreter: Any, feeds: dict[str, Any], inputs: dict[str, int], always: bool = False
) -> None:
    """Allocate for the data's shapes, not the model's placeholders.

    An input declared [-1, -1] is stored as [1, 1]; a model that reshapes it fails
    its first allocation at that size, before any sample could resize it.
    """
    details = {int(d["index"]): d for d in interpreter.get_input_details()}
    for name, index in inputs.items():
        shape = list(feeds[name].shape[1:])
        if feeds[name].shape[0] and (always or shape != list(details[index]["shape"])):
            interpreter.resize_tensor_input(index, shape, strict=False)


def run(request: InterpreterRequest, status: _Status) -> InterpreterResult:
    """Import, load, allocate, then per sample (resize+allocate), invoke, read."""
    status.mark("import")
    if _NUMPY_ERROR is not None:
        raise PhaseError("import", None, _exception_line(_NUMPY_ERROR), "import")
    try:
        module = importlib.import_module(request.module)
        interpreter_class = module.Interpreter
    except Exception as exc:
        raise PhaseError("import", None, _exception_line(exc), "import") from exc
    registerers = _custom_op_registerers(request)
    if registerers:
        interpreter_class = _with_custom_ops_class(module, request.module)
    status.mark("load")
    interpreter = _create(interpreter_class, request.model, request.num_threads, registerers)
    inputs, outputs = _io_maps(interpreter)
    feeds, count = _load_feeds(request.inputs, inputs)
    status.mark("allocate")
    _resize_to_first_sample(interpreter, feeds, inputs)
    interpreter.allocate_tensors()
    results: dict[str, list[Any]] | None = None
    if request.batch > 1 and count > 1 and _batchable(interpreter, feeds, inputs):
        results = _run_batched(interpreter, status, feeds, inputs, outputs, request.batch)
        if results is None:  # not batch-wise after all: start again, one sample at a time
            _resize_to_first_sample(interpreter, feeds, inputs, always=True)
            interpreter.allocate_tensors()
    batched = results is not None
    if results is None:
        results = _run_one_by_one(interpreter, status, feeds, inputs, outputs, count)
    arrays, ragged = _stack(results)
    np.savez(request.outputs, **arrays)
    latency = None
    if request.latency_runs > 0 and count > 0:
        first = {name: feed[0] for name, feed in feeds.items()}
        if request.latency_threads and request.latency_threads != request.num_threads:
            status.mark("load")
            interpreter = _create(
                interpreter_class, request.model, request.latency_threads, registerers
            )
        latency = _median_invoke_ms(interpreter, status, first, inputs, request.latency_runs)
    return InterpreterResult(
        ok=True,
        samples=count,
        runtime_version=_runtime_version(request.module, module),
        outputs=list(outputs),
        input_names=list(inputs),
        ragged=ragged,
        batched=batched,
        latency_ms=latency,
    )


def _median_invoke_ms(
    interpreter: Any, status: _Status, feed: dict[str, Any], inputs: dict[str, int], runs: int
) -> float:
    """Milliseconds per invoke of one sample: the median of `runs`, after one warm-up.

    The median, not the mean: a CI runner's neighbours make single invokes slow, and
    the first invoke pays for lazy set-up (XNNPACK packs its weights then).
    """
    status.mark("latency")
    details = {int(d["index"]): d for d in interpreter.get_input_details()}
    for name, index in inputs.items():
        interpreter.resize_tensor_input(index, list(feed[name].shape), strict=False)
    interpreter.allocate_tensors()
    for name, index in inputs.items():
        interpreter.set_tensor(index, prepare_feed(feed[name], details[index]))
    interpreter.invoke()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - started) * 1000.0)
    return float(statistics.median(times))


def _read_outputs(interpreter: Any, outputs: dict[str, int]) -> dict[str, Any]:
    details = {int(d["index"]): d for d in interpreter.get_output_details()}
    read = {}
    for name, index in outputs.items():
        value = interpreter.get_tensor(index)
        read[name] = read_output(value, details.get(index, {"dtype": value.dtype}))
    return read


def _run_one_by_one(
    interpreter: Any,
    status: _Status,
    feeds: dict[str, Any],
    inputs: dict[str, int],
    outputs: dict[str, int],
    count: int,
) -> dict[str, list[Any]]:
    results: dict[str, list[Any]] = {name: [] for name in outputs}
    for sample in range(count):
        _run_sample(interpreter, status, sample, {n: f[sample] for n, f in feeds.items()}, inputs)
        status.mark("read", sample)
        for name, value in _read_outputs(interpreter, outputs).items():
            results[name].append(value)
    return results


def _batchable(interpreter: Any, feeds: dict[str, Any], inputs: dict[str, int]) -> bool:
    """Every input takes any batch (signature -1) and every sample is a batch of one."""
    details = {int(d["index"]): d for d in interpreter.get_input_details()}
    for name, index in inputs.items():
        signature = list(details[index].get("shape_signature", []))
        if not signature or signature[0] != -1:
            return False
        if feeds[name].ndim < 2 or feeds[name].shape[1] != 1:
            return False
    return True


def _run_batched(
    interpreter: Any,
    status: _Status,
    feeds: dict[str, Any],
    inputs: dict[str, int],
    outputs: dict[str, int],
    size: int,
) -> dict[str, list[Any]] | None:
    """Samples `size` at a time, split back per sample; None when the model is not batch-wise.

    A model whose outputs do not come back with one row per sample mixes samples (or
    ignores the batch), and an invoke that raises must be named by its sample: both
    go back to one sample at a time, so results and errors stay what they would be.
    """
    count = next(iter(feeds.values())).shape[0]
    results: dict[str, list[Any]] = {name: [] for name in outputs}
    details = {int(d["index"]): d for d in interpreter.get_input_details()}
    allocated: int | None = None
    for start in range(0, count, size):
        rows = min(size, count - start)
        values = {
            index: prepare_feed(np.concatenate(feeds[name][start : start + rows]), details[index])
            for name, index in inputs.items()
        }
        try:
            if rows != allocated:
                status.mark("allocate", start, rows)
                for index, value in values.items():
                    interpreter.resize_tensor_input(index, list(value.shape), strict=False)
                interpreter.allocate_tensors()
                allocated = rows
            status.mark("invoke", start, rows)
            for index, value in values.items():
                interpreter.set_tensor(index, value)
            interpreter.invoke()
        except Exception:
            return None
        status.mark("read", start, rows)
        read = _read_outputs(interpreter, outputs)
        if any(np.ndim(value) == 0 or np.shape(value)[0] != rows for value in read.values()):
            return None
        for name, value in read.items():
            results[name].extend(value[i : i + 1] for i in range(rows))
    return results


def _custom_op_registerers(request: InterpreterRequest) -> list[Any]:
    """Load the custom-op libraries, then resolve each registerer to what LiteRT takes.

    A bare name is a C symbol LiteRT looks up in the process, so its library is loaded
    with RTLD_GLOBAL first; `package.module:function` is a Python callable that gets the
    op resolver's address. Any failure here is the runtime set-up's, not the model's.
    """
    for library in request.custom_op_libraries:
        try:
            ctypes.CDLL(library, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise PhaseError(
                "import", None, f"cannot load custom-op library {library}: {exc}", "import"
            ) from exc
    resolved: list[Any] = []
    for name in request.custom_op_registerers:
        if ":" not in name:
            resolved.append(name)
            continue
        for entry in request.pythonpath:  # the workspace, after site-packages
            if entry not in sys.path:
                sys.path.append(entry)
        module_name, _, function = name.partition(":")
        try:
            resolved.append(getattr(importlib.import_module(module_name), function))
        except Exception as exc:
            message = f"custom-op registerer {name}: {_message(exc)}"
            raise PhaseError("import", None, message, "import") from exc
    return resolved


def _with_custom_ops_class(module: Any, module_name: str) -> Any:
    interpreter_class = getattr(module, "InterpreterWithCustomOps", None)
    if interpreter_class is None:
        message = (
            f"{module_name} has no InterpreterWithCustomOps, so it cannot take "
            "custom_op_registerers; use ai-edge-litert, tflite-runtime or tensorflow"
        )
        raise PhaseError("import", None, message, "import")
    return interpreter_class


def _create(interpreter_class: Any, model: str, threads: int, registerers: list[Any]) -> Any:
    """The interpreter; a registerer LiteRT cannot find is a set-up failure, not the model's."""
    if not registerers:
        return interpreter_class(model_path=model, num_threads=threads)
    try:
        return interpreter_class(
            model_path=model, num_threads=threads, custom_op_registerers=registerers
        )
    except ValueError as exc:
        message = _message(exc)
        if "Looking up symbol" not in message:
            raise
        hint = "; load the library that defines it with custom_op_libraries"
        raise PhaseError("load", None, message + hint, "import") from exc


def _stack(results: dict[str, list[Any]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One [N, *shape] array per output; outputs whose shape varies by sample get one key each."""
    arrays: dict[str, Any] = {}
    ragged: dict[str, list[str]] = {}
    for position, (name, values) in enumerate(results.items()):
        if len({v.shape for v in values}) <= 1:
            arrays[name] = np.stack(values) if values else np.zeros((0,), np.float32)
            continue
        ragged[name] = [f"__ragged_{position}_{i}" for i in range(len(values))]
        arrays.update({key: value for key, value in zip(ragged[name], values)})  # noqa: B905
    return arrays, ragged


def _write_result(path: str, result: InterpreterResult) -> None:
    temporary = Path(path + ".tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(result), indent=1), encoding="utf-8")
    temporary.replace(path)


def _failure(phase: str, sample: int | None, message: str, kind: str) -> InterpreterResult:
    return InterpreterResult(
        ok=False,
        phase=phase,
        sample=sample,
        error=message,
        kind=kind,
        unresolved_custom_ops=(
            unresolved_custom_ops(message) if kind == "unresolved-custom-op" else []
        ),
    )


def main(argv: list[str]) -> int:
    """Entry point; returns 0 whenever a result (ok or not) was written.

    A request that does not fit `InterpreterRequest` is the gate's bug: it is named on
    stderr (the parent shows the worker's last output) and the exit code is 2.
    """
    with open(argv[1], encoding="utf-8") as handle:
        try:
            request: InterpreterRequest = checked(InterpreterRequest, json.load(handle))
        except (SchemaError, ValueError) as exc:
            print(f"{argv[1]}: not a valid request: {exc}", file=sys.stderr)
            return 2
    with open(request.status, "a", encoding="utf-8") as status_file:
        status = _Status(status_file)
        try:
            result = run(request, status)
        except PhaseError as exc:
            result = _failure(exc.phase, exc.sample, exc.message, exc.kind)
        except Exception as exc:  # the runtime's error in whatever phase was marked last
            message = _message(exc)
            result = _failure(status.phase, status.sample, message, _kind(message))
    _write_result(request.result, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

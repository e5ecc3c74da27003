"""What the gate and its TensorFlow-side workers send each other, validated at both ends.

Conversion and data workers run with tflite_gate installed, so their requests and
results are pydantic models: the parent writes a request with `write_message`, the
worker reads it with `read_message` (a request that does not validate is a gate bug
and raises), and the parent reads each result back the same way. A result that does
not validate is no result (a worker killed mid-write, a damaged cache entry), never a
traceback and never half-trusted fields.

The interpreter worker runs under other environments' Pythons without pydantic; its
schema is the dataclasses in `interpreter_worker/messages.py`, which the parent
validates with pydantic and the worker with a checker of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from tflite_gate.report.model import ConverterError, SourceKind, WrittenBy
from tflite_gate.support.files import write_text_atomic

DEFAULT_LOW, DEFAULT_HIGH = -1.0, 1.0

# A workspace file and a line in it (a generator that raised, a model factory's frame).
Place = tuple[str, int]
DataRole = Literal["calibration", "evaluation"]
DataKind = Literal["npz", "dir", "generate", "generator"]


def _bare(name: str) -> str:
    if Path(name).name != name or name in {"", ".", ".."}:
        raise ValueError(f"not a file name in the worker's scratch: {name!r}")
    return name


# A file the worker left in its scratch, named bare so results can move (the cache);
# a path or `..` (a damaged or tampered entry) must not point the gate elsewhere.
ScratchFile = Annotated[str, AfterValidator(_bare)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TensorSpec(_Message):
    """A model input as every stage sees it: the source loader, the data, the workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    shape: list[int | None] = Field(description="None for a dynamic dimension.")
    dtype: str

    @classmethod
    def from_dims(cls, name: str, dims: list[int], dtype: str) -> TensorSpec:
        """From a shape that marks dynamic dimensions with -1 (the report's, the .tflite's)."""
        return cls(name=name, shape=[d if d >= 0 else None for d in dims], dtype=dtype)

    def dims(self) -> list[int]:
        """The shape with -1 for dynamic dimensions, as the report writes it."""
        return [d if d is not None else -1 for d in self.shape]


class SourceSpec(_Message):
    """A representative-data source (the policy's `calibration` or `evaluation`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DataKind
    path: str | None = None
    factory: str | None = None
    seed: int = 0
    count: int | None = None
    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH


class KeepFloat(_Message):
    """Ops of a full-integer variant left in float: by output tensor name, or by op type."""

    nodes: list[str] = Field(default_factory=list)
    ops: list[str] = Field(default_factory=list)


class VariantRequest(_Message):
    name: str
    quantization: str
    io: str = "float32"
    keep_float: KeepFloat | None = None


class DiagnosisRequest(_Message):
    """Where a quantized variant's error comes from, and (int8) keep_float sets to try.

    The worker compares every op output of `model` (the variant as it was checked)
    with its float twin on `inputs` (an .npz of evaluation inputs); for int8 it then
    quantizes the calibrated twin again with the output activation kept in float, then
    with the top layers, one candidate per `candidates` entry (how many of them).
    """

    variant: VariantRequest
    model: str
    inputs: str
    top: int = 5
    candidates: list[int] = Field(default_factory=lambda: [1, 2, 3])


class ConversionRequest(_Message):
    """All a conversion worker is told: it never sees the policy."""

    workspace: str
    scratch: str
    source_kind: SourceKind
    source: str
    source_path: str | None
    input_shapes: dict[str, list[int]]
    signature: str | None
    safe_mode: bool
    select_tf_ops: bool
    allow_custom_ops: bool
    variants: list[VariantRequest]
    calibration: SourceSpec | None = None
    evaluation: SourceSpec | None = None
    samples: int = 16
    reference: bool = True
    # Only for a .tflite's reference: `input_shapes` then names the .tflite's inputs,
    # paired with this model's by name, this map (.tflite name → ours) or position.
    input_map: dict[str, str] | None = None
    skip: list[str] = Field(default_factory=list)
    diagnose: DiagnosisRequest | None = None


class PoolJob(_Message):
    """One line on a pooled worker's stdin: where its output goes, and its request."""

    log: str
    job: str


class LoadResult(_Message):
    ok: bool
    error: str | None = None
    location: Place | None = None
    policy_key: str | None = None
    crash_cause: str | None = None
    missing_module: str | None = None  # what a ModuleNotFoundError named
    errno: int | None = None  # of a failed load: the system's number, never parsed from text
    written_by: WrittenBy | None = None
    inputs: list[TensorSpec] = Field(default_factory=list)
    log_lines: list[str] = Field(default_factory=list)


class VariantResult(_Message):
    name: str
    ok: bool
    tflite_path: ScratchFile | None = None
    errors: list[ConverterError] = Field(default_factory=list)
    log_lines: list[str] = Field(default_factory=list)
    data_error: str | None = None
    data_location: Place | None = None
    crash: str | None = None
    crash_cause: str | None = None
    duration_s: float = 0.0


class LayerError(_Message):
    """One op output of a quantized model against the same tensor of its float model.

    `rel_rmse` is the error that reached this tensor; `added` the relative error this op
    made itself; `share` its part of the error at the model outputs.
    """

    tensor: str
    op: str
    rel_rmse: float | None
    added: float
    share: float
    rmse_over_scale: float | None = None
    readers: list[str] = Field(default_factory=list)


class Candidate(_Message):
    """A keep_float set (tensor names and op types) and the variant quantized with it."""

    nodes: list[str]
    ops: list[str] = Field(default_factory=list)
    tflite_path: ScratchFile


class DiagnosisResult(_Message):
    ok: bool
    error: str | None = None
    layers: list[LayerError] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    duration_s: float = 0.0


class EvaluationResult(_Message):
    """Evaluation inputs and the source model's outputs on them (sample-major .npz)."""

    ok: bool
    error: str | None = None
    location: Place | None = None
    inputs_path: ScratchFile | None = None
    reference_path: ScratchFile | None = None
    samples: int = 0
    outputs: list[str] = Field(default_factory=list)
    duration_s: float = 0.0
    crash_cause: str | None = None


class Dependencies(_Message):
    """What a finished conversion worker used: workspace files and package versions."""

    files: list[str] = Field(default_factory=list)
    packages: dict[str, str] = Field(default_factory=dict)


class DataRequest(_Message):
    role: DataRole
    calibration: SourceSpec | None
    evaluation: SourceSpec | None
    inputs: list[TensorSpec]
    samples: int
    workspace: str
    scratch: str


class DataFailure(_Message):
    error: str
    location: Place | None = None


Message = TypeVar("Message", bound=BaseModel)


def read_message(path: Path, kind: type[Message]) -> Message | None:
    """`kind` as written at `path`; None when the file is missing, partial or not valid."""
    try:
        return kind.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def read_request(path: Path, kind: type[Message]) -> Message:
    """A worker's request: written by the gate itself, so anything wrong raises."""
    return kind.model_validate_json(path.read_bytes())


def write_message(path: Path, message: BaseModel) -> None:
    """Atomically: a reader sees the whole message or none."""
    write_text_atomic(path, message.model_dump_json(indent=1))

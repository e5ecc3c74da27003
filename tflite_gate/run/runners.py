"""The runners there are, and which one runs a policy's runtime.

Both run the classic LiteRT/TFLite `Interpreter` in an interpreter worker; they
differ in where that worker's Python and runtime module come from:
- `InstalledInterpreterRunner`: the runtime installed next to the gate (by default
  `ai-edge-litert`), run under the gate's own Python;
- `VirtualEnvRunner`: any other runtime (`tflite-runtime==2.14.0`, `tensorflow==2.18.1`
  for Flex ops, a local build), installed into a cached virtual environment of its own.
A new kind of run (a GPU delegate, a microcontroller interpreter, an NPU compiler) is
one more runner here and one more branch in `runner_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tflite_gate.run.interpreter import run_interpreter
from tflite_gate.run.runner import Arrays, PreparedRunner, RunJob, Runner, RunnerNeeds, RunResult
from tflite_gate.run.runtimes import (
    RuntimeEnvironment,
    RuntimeSpec,
    cached_runtime,
    installed_runtime,
)


@dataclass(frozen=True)
class WorkerInterpreter:
    """A prepared interpreter runtime: each run is one interpreter worker under its Python."""

    environment: RuntimeEnvironment

    @property
    def name(self) -> str:
        return self.environment.spec.name

    @property
    def version(self) -> str | None:
        return self.environment.version

    @property
    def reused(self) -> Path | None:
        return self.environment.cached

    @property
    def needs(self) -> RunnerNeeds:
        """Nothing up front: a model this runtime cannot take fails in the worker, which
        names the reason (a Flex op, an unregistered custom op, an op version)."""
        return RunnerNeeds()

    def run(self, model: Path, inputs: Arrays, job: RunJob) -> RunResult:
        """Every sample through `model` in one worker (two if a batch crashed it)."""
        spec = self.environment.spec
        return run_interpreter(
            model,
            inputs,
            python=self.environment.python,
            module=self.environment.module,
            scratch=job.scratch,
            reproducer_dir=job.reproducer,
            timeout_s=job.timeout_s,
            memory_mb=job.memory_mb,
            num_threads=job.num_threads,
            custom_op_registerers=spec.custom_op_registerers,
            custom_op_libraries=spec.custom_op_libraries,
            pythonpath=job.pythonpath,
            latency_runs=job.latency_runs,
            latency_threads=job.latency_threads,
        )


@dataclass(frozen=True)
class InstalledInterpreterRunner:
    """The interpreter of the runtime installed next to the gate, under the gate's Python."""

    spec: RuntimeSpec

    @property
    def name(self) -> str:
        return self.spec.name

    def prepare(self, cache_dir: Path) -> PreparedRunner:
        """Found by its metadata, not imported: the worker imports it (no cache involved)."""
        return WorkerInterpreter(installed_runtime(self.spec))


@dataclass(frozen=True)
class VirtualEnvRunner:
    """The interpreter of a runtime pip installs into a cached virtual environment."""

    spec: RuntimeSpec
    requirement: str

    @property
    def name(self) -> str:
        return self.spec.name

    def prepare(self, cache_dir: Path) -> PreparedRunner:
        """Reuse the cached environment, or build it (pip, then a one-op model as a check)."""
        return WorkerInterpreter(cached_runtime(self.spec, self.requirement, cache_dir=cache_dir))


def runner_for(spec: RuntimeSpec) -> Runner:
    """The runner for a runtime the policy lists (`spec`, with paths already resolved)."""
    if spec.requirement is None:
        return InstalledInterpreterRunner(spec)
    return VirtualEnvRunner(spec, spec.requirement)

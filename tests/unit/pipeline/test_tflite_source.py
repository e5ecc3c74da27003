"""A `.tflite` source: read as it is, run on its evaluation data, and compared with its
`reference` (another .tflite here; a model TensorFlow loads, in the slow test).

Models are real flatbuffers from `tflite_builder` (RELU, TANH and LOGISTIC run without
weights); they run on LiteRT inside the test process (`tests/support/litert_in_process`),
prepared in the run's context where the gate's own runner would start a worker.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from tests.support.litert_in_process import LiteRTInProcess
from tests.support.pipeline_plans import POLICY, planned, run_context
from tests.support.tflite_builder import build_model, build_model_object, builtin, pack
from tflite_gate.findings import Finding, Location
from tflite_gate.pipeline.context import RunContext
from tflite_gate.pipeline.tflite_source import Reference, reference_source, run_tflite
from tflite_gate.policy.plan import ModelPlan
from tflite_gate.policy.resolve import AS_IS_VARIANT
from tflite_gate.report.model import ModelReport, VariantReport
from tflite_gate.report.model.stamp import new_report
from tflite_gate.run.runner import RuntimeUnavailable

OLD_RUNTIME = "tflite-runtime==2.14.0"


def _context(workspace: Path, plan: ModelPlan, said: list[str]) -> RunContext:
    """The run's context with every runtime of the model prepared in-process."""
    context = run_context(workspace, plan, progress=said.append)
    for spec in context.requests[plan.name].runtimes:
        context.runtimes[spec] = LiteRTInProcess(name=spec.name)
    return context


class Checked:
    """One .tflite source checked: its report, its model's report and the progress said."""

    def __init__(self, workspace: Path, model: str, **runtimes: object) -> None:
        self.said: list[str] = []
        self.plan = planned(workspace, model)
        self.context = _context(workspace, self.plan, self.said)
        for spec in self.context.requests[self.plan.name].runtimes:
            if spec.name in runtimes:
                self.context.runtimes[spec] = runtimes[spec.name]  # type: ignore[assignment]
        self.report = new_report()
        self.model = ModelReport(name=self.plan.name, source=self.plan.source.written)
        self.reference: Reference | None = reference_source(self.plan, self.report, self.context)
        assert self.plan.source.path is not None
        run_tflite(
            self.plan, self.plan.source.path, self.reference, self.model, self.report, self.context
        )

    @property
    def variant(self) -> VariantReport:
        [variant] = self.model.variants
        return variant

    @property
    def rules(self) -> list[str]:
        return [finding.rule for finding in self.report.findings]


def _write(workspace: Path, name: str, op: str, **options: bool) -> None:
    (workspace / name).write_bytes(build_model([builtin(op)], **options))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the reference


def _reference(workspace: Path, model: str) -> tuple[Reference | None, list[Finding]]:
    plan = planned(workspace, model)
    report = new_report()
    return reference_source(plan, report, _context(workspace, plan, [])), report.findings


def test_no_reference_is_nothing_to_report(tmp_path: Path) -> None:
    assert _reference(tmp_path, "{name: m, source: m.tflite}") == (None, [])


@pytest.mark.parametrize(
    ("written", "kind"),
    [("float.tflite", "tflite"), ("float.keras", "keras"), ("ref", "saved_model")],
)
def test_a_reference_is_classified_by_what_it_is(tmp_path: Path, written: str, kind: str) -> None:
    (tmp_path / "float.tflite").write_bytes(b"")
    (tmp_path / "float.keras").write_bytes(b"")
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "saved_model.pb").write_bytes(b"")
    reference, findings = _reference(
        tmp_path, f"{{name: m, source: m.tflite, reference: {written}}}"
    )
    assert findings == []
    assert reference == (kind, tmp_path / written)


def test_a_factory_reference_has_no_path(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text("def build(): ...\n")
    reference, findings = _reference(
        tmp_path, "{name: m, source: m.tflite, reference: 'nets:build'}"
    )
    assert (reference, findings) == (("factory", None), [])


def test_a_reference_that_is_a_fifo_is_refused_unread_at_its_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "float.keras")
    reference, [finding] = _reference(
        tmp_path, "{name: m, source: m.tflite, reference: float.keras}"
    )
    assert reference is None
    assert finding.rule == "model-load-failed"
    assert "float.keras is a named pipe (FIFO)" in finding.message
    assert finding.location == Location(path=POLICY, line=3, column=44)


# --------------------------------------------------------------------------- the run


def test_without_a_reference_the_model_runs_as_it_is(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    checked = Checked(tmp_path, "{name: m, source: m.tflite}")
    variant = checked.variant
    assert (variant.name, variant.quantization) == (AS_IS_VARIANT, "as-is")
    assert (variant.status, variant.artifact) == ("not-converted", "m.tflite")
    assert checked.model.loaded and [t.name for t in checked.model.inputs] == ["x"]
    [run] = variant.runs
    assert (run.runtime, run.status, run.samples) == ("ai-edge-litert", "ran", 16)
    assert checked.rules == []
    assert "reference" not in checked.model.timings


def test_a_single_variant_entry_names_the_as_is_variant(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    checked = Checked(tmp_path, "{name: m, source: m.tflite, variants: [{name: shipped}]}")
    assert checked.variant.name == "shipped"


def test_a_tflite_reference_runs_on_the_same_inputs_and_is_compared(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    _write(tmp_path, "float.tflite", "RELU")
    checked = Checked(tmp_path, "{name: m, source: m.tflite, reference: float.tflite}")
    [run] = checked.variant.runs
    assert run.status == "passed" and run.compared_with is None
    assert [m.output for m in run.metrics] == ["output_0"]
    assert checked.rules == []
    assert "reference" in checked.model.timings
    assert "[m] reference outputs from float.tflite" in checked.said
    runner = checked.context.runtimes[checked.context.requests["m"].runtimes[0]]
    assert isinstance(runner, LiteRTInProcess)
    assert [p.name for p in runner.models] == ["float.tflite", "m.tflite"]


def test_a_model_that_computes_something_else_diverges(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "TANH")
    _write(tmp_path, "float.tflite", "LOGISTIC")
    checked = Checked(
        tmp_path,
        "{name: m, source: m.tflite, reference: float.tflite, max_divergence: {max_abs: 0.01}}",
    )
    [run] = checked.variant.runs
    assert run.status == "diverged"
    [violation] = run.violations
    assert (violation.threshold_key, violation.threshold) == ("max_abs", 0.01)
    assert "divergence" in checked.rules


def test_a_reference_with_other_input_names_is_paired_by_position(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    reference = build_model_object([builtin("RELU")], signature=False)
    reference.subgraphs[0].tensors[0].name = "image"  # a name no rule pairs with `x`
    (tmp_path / "float.tflite").write_bytes(pack(reference))
    checked = Checked(tmp_path, "{name: m, source: m.tflite, reference: float.tflite}")
    assert checked.variant.runs[0].status == "passed"
    assert (
        "[m] the reference's input 'image' is fed as the .tflite's 'x' "
        "(one input each, paired by position)"
    ) in checked.said


def test_a_reference_that_does_not_run_is_an_error_at_its_line(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    (tmp_path / "float.tflite").write_bytes(build_model([builtin("CONV_2D")]))  # no weights
    checked = Checked(tmp_path, "{name: m, source: m.tflite, reference: float.tflite}")
    [finding] = [f for f in checked.report.findings if "reference" in f.message]
    assert finding.rule == "model-load-failed"
    assert "the reference run on ai-edge-litert failed in allocate: " in finding.message
    assert finding.location == Location(path=POLICY, line=3, column=44)
    [run] = checked.variant.runs
    assert run.status == "ran"  # run without reference outputs: nothing to compare with


def test_a_reference_that_is_no_flatbuffer_is_reported(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    (tmp_path / "float.tflite").write_bytes(b"not a flatbuffer at all")
    checked = Checked(tmp_path, "{name: m, source: m.tflite, reference: float.tflite}")
    assert checked.rules == ["model-load-failed"]
    assert checked.variant.runs == []  # no inputs for it without its reference


def test_without_a_reference_the_first_runtime_is_the_others_reference(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    checked = Checked(
        tmp_path, f'{{name: m, source: m.tflite, runtimes: [ai-edge-litert, "{OLD_RUNTIME}"]}}'
    )
    first, second = checked.variant.runs
    assert (first.status, first.compared_with) == ("ran", None)
    assert (second.status, second.compared_with) == ("passed", "ai-edge-litert in-process")


def test_an_unavailable_runtime_is_reported_once_and_the_model_is_not_run(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    _write(tmp_path, "float.tflite", "RELU")
    unavailable = RuntimeUnavailable("install it: no wheel for this Python")
    checked = Checked(
        tmp_path,
        "{name: m, source: m.tflite, reference: float.tflite}",
        **{"ai-edge-litert": unavailable},
    )
    assert checked.rules == ["runtime-unavailable"]
    [run] = checked.variant.runs
    assert run.status == "unavailable"


def test_a_source_that_is_no_flatbuffer_is_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "m.tflite").write_bytes(b"\x00" * 64)
    checked = Checked(tmp_path, "{name: m, source: m.tflite}")
    assert checked.rules == ["model-load-failed"]
    assert not checked.model.loaded and checked.variant.runs == []


def test_a_fifo_source_is_refused_unread(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "m.tflite")
    checked = Checked(tmp_path, "{name: m, source: m.tflite}")
    [finding] = checked.report.findings
    assert finding.rule == "model-load-failed" and finding.variant == AS_IS_VARIANT
    assert finding.message.startswith("m: m.tflite: m.tflite is a named pipe (FIFO)")
    assert finding.location == Location(path=POLICY, line=3, column=23)
    assert checked.variant.status == "invalid"


def test_input_shapes_for_an_input_the_model_lacks_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    checked = Checked(tmp_path, "{name: m, source: m.tflite, input_shapes: {image: [1, 4]}}")
    assert checked.rules == ["policy-invalid"]
    assert "image" in checked.report.findings[0].message
    assert checked.variant.runs == []


def test_evaluation_data_that_does_not_fit_is_data_invalid(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    checked = Checked(tmp_path, "{name: m, source: m.tflite, data: {evaluation: data.npz}}")
    assert checked.rules == ["data-invalid"]
    assert checked.variant.runs == []


REFERENCE_FACTORY = """\
    import keras


    def build():
        inputs = keras.Input((4,), batch_size=1, name="x")
        return keras.Model(inputs, keras.layers.ReLU(name="relu")(inputs))
    """


@pytest.mark.slow
def test_a_reference_tensorflow_loads_gives_the_outputs_in_a_worker(tmp_path: Path) -> None:
    _write(tmp_path, "m.tflite", "RELU")
    (tmp_path / "nets.py").write_text(textwrap.dedent(REFERENCE_FACTORY))
    checked = Checked(tmp_path, "{name: m, source: m.tflite, reference: 'nets:build'}")
    assert checked.reference == ("factory", None)
    [run] = checked.variant.runs
    assert run.status == "passed", run
    assert checked.rules == []
    assert "reference" in checked.model.timings
    assert checked.model.cache is not None and checked.model.cache.status == "disabled"
    assert "[m] converting reference outputs" in checked.said

"""A `.tflite` source: read as it is, fed its evaluation data, and compared with its
`reference` (another .tflite, or a model converted for its reference outputs)."""

from __future__ import annotations

import time
from pathlib import Path

from tflite_gate.findings import Finding
from tflite_gate.judge import checks
from tflite_gate.model.data import (
    DataError,
    InputSignature,
    representative_samples,
    sample_shape,
    stack,
)
from tflite_gate.model.data_worker import needs_worker, samples_in_worker
from tflite_gate.model.input_pairing import (
    INPUT_MAP_KEY,
    InputPairs,
    PairingError,
    check_map_keys,
    pair_inputs,
)
from tflite_gate.model.sources import (
    SourceError,
    apply_input_shapes,
    classify,
)
from tflite_gate.pipeline.context import Arrays, RunContext, special_file_problem
from tflite_gate.pipeline.conversion import (
    convert,
    inspect_and_check,
    load_evaluation,
)
from tflite_gate.pipeline.execution import (
    custom_op_status,
    execute_variant,
    interpret,
    runtime_for,
)
from tflite_gate.pipeline.requests import reference_request
from tflite_gate.policy.plan import ModelPlan
from tflite_gate.policy.resolve import AS_IS_VARIANT, ModelConfig
from tflite_gate.report.model import (
    ModelReport,
    Report,
    SourceKind,
    TensorInfo,
    VariantReport,
)
from tflite_gate.rules import make_finding
from tflite_gate.run.protocol import (
    EvaluationResult,
    LoadResult,
    TensorSpec,
)
from tflite_gate.run.runner import RunResult
from tflite_gate.support.workspace_files import (
    read_tflite,
    unreadable_message,
)
from tflite_gate.tflite.facts import InvalidModelError, inspect_model

Reference = tuple[SourceKind, Path | None]  # (source kind, resolved path; None for a factory)


def reference_source(plan: ModelPlan, report: Report, context: RunContext) -> Reference | None:
    """The kind and path of a .tflite source's `reference`; None (reported) if unusable."""
    if plan.reference is None:
        return None
    config, raw, path = plan.config, plan.reference.written, plan.reference.path
    if path is not None and not path.exists():
        report.add(
            checks.check_reference(
                config, "does not exist in the workspace", rule="model-not-found"
            )
        )
        return None
    kind = classify(raw, path)
    if kind is None:
        report.add(
            checks.check_reference(
                config,
                "is not a supported model file; expected .tflite, .keras, .h5, a SavedModel "
                "directory or a module:function factory",
            )
        )
        return None
    special = special_file_problem(raw, path, context) if kind != "tflite" else None
    if special is not None:
        report.add(checks.check_reference(config, special))
        return None
    return kind, path


def run_tflite(
    plan: ModelPlan,
    path: Path,
    reference: Reference | None,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> None:
    """An already-converted model: inspect, check, run it, and compare with its reference."""
    config = plan.config
    own = "variants" in config.key_locations  # a single as-is variant (checked before)
    variant = VariantReport(
        name=plan.variants[0].spec.name if own else AS_IS_VARIANT,
        quantization="as-is",
        io="as-is",
        status="not-converted",
        artifact=context.relative(path),
    )
    model_report.variants.append(variant)
    data = _read_tflite_source(config, variant, path, report)
    if data is None or not inspect_and_check(
        config, variant, data, report, "model-load-failed", config.source
    ):
        return
    assert variant.inspection is not None
    model_report.loaded = True
    model_report.inputs = list(variant.inspection.inputs)
    signature = _declared_inputs(config, variant.inspection.inputs, model_report, report)
    if signature is None:
        return
    if reference is None:
        inputs = _tflite_evaluation_inputs(config, signature, report, context)
        outputs = None
    else:
        inputs, outputs = _reference_run(
            plan, reference, variant, signature, model_report, report, context
        )
    if inputs is not None:  # without reference outputs the model still runs: status `ran`
        compare_runtimes = reference is None  # then the first runtime's outputs are one
        execute_variant(
            config,
            0,
            variant,
            path,
            inputs,
            outputs,
            report,
            context,
            compare_runtimes=compare_runtimes,
        )


def _read_tflite_source(
    config: ModelConfig, variant: VariantReport, path: Path, report: Report
) -> bytes | None:
    """The source's bytes; None (reported) for a FIFO, a device or an oversized file."""
    try:
        return read_tflite(path)
    except OSError as error:
        variant.status = "invalid"
        message = unreadable_message(error)
        report.add(
            [
                make_finding(
                    "model-load-failed",
                    f"{config.name}: {config.source}: {message}",
                    model=config.name,
                    variant=variant.name,
                    location=config.source_location,
                )
            ]
        )
        return None


def _declared_inputs(
    config: ModelConfig, inputs: list[TensorInfo], model_report: ModelReport, report: Report
) -> InputSignature | None:
    """The .tflite's inputs with `input_shapes` applied; None (reported) when unusable.

    The interpreter resizes its inputs to the data's shapes, so the data is generated
    and checked against these declared shapes.
    """
    specs = [TensorSpec.from_dims(t.name, t.shape, t.dtype) for t in inputs]
    try:
        return apply_input_shapes(specs, config.input_shapes)
    except SourceError as error:
        load = LoadResult(ok=False, error=error.message, policy_key=error.policy_key)
        report.add(checks.check_load(config, load, model_report))
        return None


def _input_map(config: ModelConfig) -> dict[str, str]:
    """The policy's `input_map`: the .tflite's input name → the reference's."""
    return {entry.tflite: entry.reference for entry in config.input_map}


def _reference_run(
    plan: ModelPlan,
    reference: Reference,
    variant: VariantReport,
    signature: InputSignature,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> tuple[Arrays | None, Arrays | None]:
    """Evaluation inputs (keyed by the .tflite's input names) and the reference's outputs."""
    config, (kind, path) = plan.config, reference
    try:
        check_map_keys([spec.name for spec in signature], _input_map(config))
    except PairingError as error:
        report.add(checks.check_input_pairing(config, error))
        return None, None
    started = time.monotonic()
    if kind == "tflite" and path is not None:
        found = _tflite_reference(config, path, signature, report, context)
    else:
        found = _converted_reference(plan, reference, signature, model_report, report, context)
    model_report.timings["reference"] = round(time.monotonic() - started, 3)
    if found is None:
        return None, None
    inputs, signed, outputs = found
    if outputs is None:
        return inputs, None
    assert variant.inspection is not None
    return inputs, _paired_outputs(variant.inspection.outputs, signed, outputs)


def _paired_outputs(ours: list[TensorInfo], signed: bool, outputs: Arrays) -> Arrays:
    """Reference outputs keyed as the comparison pairs them: by name, else by position.

    `signed`: the reference's outputs carry signature names. Names pair when every one
    of ours is among them; otherwise the reference's i-th output becomes our i-th.
    """
    names = [t.name for t in ours]
    if signed and set(names) <= set(outputs):
        return outputs
    if len(names) != len(outputs):
        return outputs  # the comparison reports the count mismatch
    return dict(zip(names, outputs.values(), strict=True))


def _tflite_reference(
    config: ModelConfig,
    path: Path,
    signature: InputSignature,
    report: Report,
    context: RunContext,
) -> tuple[Arrays, bool, Arrays | None] | None:
    """Run a .tflite reference on the model's first runtime (its registerers too), same inputs."""
    try:
        inspection = inspect_model(read_tflite(path))
    except InvalidModelError as error:
        report.add(checks.check_reference(config, str(error)))
        return None
    except OSError as error:
        report.add(checks.check_reference(config, unreadable_message(error)))
        return None
    ours, theirs = [spec.name for spec in signature], [t.name for t in inspection.inputs]
    try:
        pairs = pair_inputs(ours, theirs, _input_map(config))
    except PairingError as error:
        report.add(checks.check_input_pairing(config, error))
        return None
    names = pairs.names
    if pairs.by_position:
        _say_paired_by_position(config, pairs, context)
    # Data in the reference's dtypes: a float reference of an int8 model gets real values,
    # which the int8 model's run quantizes with its own scale.
    dtypes = {t.name: t.dtype for t in inspection.inputs}
    signature = [spec.model_copy(update={"dtype": dtypes[names[spec.name]]}) for spec in signature]
    inputs = _tflite_evaluation_inputs(config, signature, report, context)
    if inputs is None:
        return None
    spec = context.requests_for(config).runtimes[0]
    runtime = runtime_for(spec, config, report, context)
    if runtime is None:
        return inputs, bool(inspection.signatures), None
    context.progress(f"[{config.name}] reference outputs from {config.reference.value}")
    feeds = {names[name]: value for name, value in inputs.items()}
    result = interpret(config, runtime, path, feeds, None, 0, context)
    if not result.ok:
        report.add(_reference_run_failed(config, spec.name, result))
        return inputs, bool(inspection.signatures), None
    return inputs, bool(inspection.signatures), result.outputs


def _reference_run_failed(config: ModelConfig, runtime: str, result: RunResult) -> list[Finding]:
    """A .tflite reference that did not run: a notice when only its ops' kernels are missing.

    Flex ops or declared custom ops are unverifiable here, like the same ops in the
    model under test; anything else (a crash, an error) is an error.
    """
    where = f" in {result.phase}" if result.phase else ""
    first = (result.message or result.status).splitlines()[0]
    unverifiable = result.status == "unsupported-flex" or (
        result.status == "unresolved-custom-op"
        and custom_op_status(config, result.unresolved_custom_ops) == "unverifiable"
    )
    if unverifiable:
        return checks.check_reference(
            config,
            f"not executable on {runtime}, which lacks a kernel its ops need ({first}); list a "
            "runtime that has them first in `runtimes`",
            rule="threshold-not-applied",
        )
    return checks.check_reference(config, f"the reference run on {runtime} failed{where}: {first}")


def _converted_reference(
    plan: ModelPlan,
    reference: Reference,
    signature: InputSignature,
    model_report: ModelReport,
    report: Report,
    context: RunContext,
) -> tuple[Arrays, bool, Arrays | None] | None:
    """Evaluation inputs and reference outputs from TensorFlow, in a worker (no variants).

    The worker pairs the .tflite's inputs with the reference's: only it loads them.
    """
    config = plan.config
    request = reference_request(
        plan,
        context.requests_for(config),
        reference,
        context.workspace,
        context.places(config).reference_conversion,
        input_shapes={spec.name: sample_shape(spec.shape) for spec in signature},
    )
    result = convert(config, request, "reference outputs", model_report, context)
    if not result.load.ok:
        report.add(_reference_not_loaded(config, result.load))
        return None
    report.add(checks.check_evaluation(config, result.evaluation))
    feeds, outputs = load_evaluation(result.evaluation)
    if feeds is None or outputs is None:
        return None
    ours = [spec.name for spec in signature]
    pairs = pair_inputs(ours, [spec.name for spec in result.load.inputs], _input_map(config))
    if pairs.by_position:  # paired so by the worker, which loaded the reference
        _say_paired_by_position(config, pairs, context)
    return {name: feeds[name] for name in ours}, True, outputs


def _reference_not_loaded(config: ModelConfig, load: LoadResult) -> list[Finding]:
    """Why the worker could not load the reference: its inputs, or the model itself."""
    if load.policy_key is not None and load.policy_key.startswith(INPUT_MAP_KEY):
        pairing = PairingError.from_policy_key(load.error or "", load.policy_key)
        return checks.check_input_pairing(config, pairing)
    if load.policy_key == "input_shapes":
        error = f"it does not take the .tflite's inputs: {load.error}"
        return checks.check_reference(config, error, rule="policy-invalid")
    return checks.check_reference(config, f"cannot load it: {load.error}")


def _say_paired_by_position(config: ModelConfig, pairs: InputPairs, context: RunContext) -> None:
    ((ours, theirs),) = pairs.names.items()
    context.progress(
        f"[{config.name}] the reference's input {theirs!r} is fed as the .tflite's {ours!r} "
        "(one input each, paired by position)"
    )


def _tflite_evaluation_inputs(
    config: ModelConfig, signature: InputSignature, report: Report, context: RunContext
) -> Arrays | None:
    """Evaluation data for a .tflite source, which needs no TensorFlow.

    Files and `generate` are read in this process; a generator is workspace code, so
    it runs in a worker under the model's limits.
    """
    requests = context.requests_for(config)
    calibration, evaluation = requests.calibration, requests.evaluation
    try:
        if needs_worker(calibration, evaluation):
            return samples_in_worker(
                "evaluation",
                calibration,
                evaluation,
                signature,
                samples=config.samples.value,
                workspace=context.workspace,
                scratch=context.places(config).data,
                timeout_s=config.timeout_s.value,
                memory_mb=config.memory_mb.value,
            )
        feeds = representative_samples(
            "evaluation",
            calibration,
            evaluation,
            signature,
            samples=config.samples.value,
            workspace=context.workspace,
        )
    except DataError as error:
        report.add(
            checks.check_evaluation(
                config, EvaluationResult(ok=False, error=error.message, location=error.location)
            )
        )
        return None
    return stack(feeds)

"""Checks of loading a model: installed versions, the load itself, keys that cannot
apply to the kind of source, a reference and its input pairing.
"""

from __future__ import annotations

import os
import re
import tempfile

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from tflite_gate.findings import Finding, Location, RuleId
from tflite_gate.judge.checks.common import crash_location, limit_action, setting_location
from tflite_gate.judge.checks.environment import FULL_OR_READ_ONLY, check_environment_error
from tflite_gate.model.input_pairing import PairingError
from tflite_gate.policy.resolve import ModelConfig, Setting
from tflite_gate.policy.schema import is_factory
from tflite_gate.report.model import ModelReport
from tflite_gate.rules import make_finding
from tflite_gate.run.protocol import LoadResult
from tflite_gate.support.environment import installed_version


def check_version_spec(name: str, spec: Setting[str], model: str | None) -> list[Finding]:
    """`versions: {dist: specifier}` against what is installed where the gate runs."""
    installed = installed_version(name)
    if installed is None:
        return [
            make_finding(
                "version-mismatch",
                f"{name} is not installed, but the policy requires {name}{spec.value}",
                model=model,
                location=spec.location,
                details={"specifier": spec.value, "installed": None},
                package=name,
            )
        ]
    try:
        satisfied = SpecifierSet(spec.value).contains(Version(installed), prereleases=True)
    except InvalidVersion:
        satisfied = False
    if satisfied:
        return []
    return [
        make_finding(
            "version-mismatch",
            f"{name} {installed} is installed, the policy requires {name}{spec.value}",
            model=model,
            location=spec.location,
            details={"specifier": spec.value, "installed": installed},
            package=name,
        )
    ]


def check_load(config: ModelConfig, load: LoadResult, report: ModelReport) -> list[Finding]:
    """A model that cannot be loaded, with the versions that wrote it and that read it."""
    if load.ok:
        return []
    limit = limit_action(load.crash_cause, config, "loading the model")
    if limit is not None:  # a valid model may just be slow to load: no "cannot load"
        return [
            make_finding(
                "model-load-failed",
                f"{config.name}: {limit}: {load.error}",
                model=config.name,
                location=crash_location(load.crash_cause, config),
                details={"cause": load.crash_cause},
                error=load.error,
            )
        ]
    if load.policy_key:
        return [
            make_finding(
                "policy-invalid",
                f"{config.name}: {load.error}",
                model=config.name,
                location=config.key_locations.get(load.policy_key, config.source_location),
                key=load.policy_key,
            )
        ]
    if load.errno in FULL_OR_READ_ONLY:  # the worker's disk: TF saves the model to scratch
        return check_environment_error(
            config,
            OSError(load.errno, os.strerror(load.errno)),
            place=f"a temporary file in {tempfile.gettempdir()}",
            elsewhere="set TMPDIR to a directory with room",
            error_text=load.error,
        )
    location = (
        Location(path=load.location[0], line=load.location[1])
        if load.location
        else crash_location(load.crash_cause, config)
    )
    message = f"{config.name}: cannot load {config.source}: {load.error}"
    if load.missing_module:
        message = (
            f"{config.name}: install the package that provides the module "
            f"{load.missing_module!r} where the gate runs, or stop importing it: {config.source} "
            f"needs it ({load.error})"
        )
    written = report.written_by
    if written and (written.tensorflow or written.keras):
        wrote = ", ".join(
            f"{lib} {version}"
            for lib, version in (("TensorFlow", written.tensorflow), ("Keras", written.keras))
            if version
        )
        now = ", ".join(
            f"{lib} {installed_version(dist) or 'not installed'}"
            for lib, dist in (
                ("TensorFlow", "tensorflow"),
                ("Keras", "keras"),
                ("tf-keras", "tf-keras"),
            )
        )
        message += f" (written by {wrote}; installed: {now})"
    return [
        make_finding(
            "model-load-failed",
            message,
            model=config.name,
            location=location,
            error=load.error,
            details={
                "written_by": written.model_dump() if written else None,
            },
        )
    ]


_NOT_CONVERTED = "a .tflite source runs as-is (it is not converted)"


def _tflite_key_problem(
    key: str, reference_kind: str | None, generated: bool, compared: bool
) -> str | None:
    """What to do about a key written on a .tflite source's entry, or None if it applies.

    `reference_kind` is the kind of the model's `reference` (None: it has none);
    `generated`: its data comes from a generator; `compared`: its outputs are compared
    with a reference, or (several runtimes, no reference) with its first runtime's.
    """
    if re.fullmatch(r"variants\[[1-9]\d*\]", key) or re.fullmatch(
        r"variants\[\d+\]\.(quantization|io)", key
    ):
        return (
            "keep at most one variant, with only a name and max_divergence, or remove "
            f"`variants`: {_NOT_CONVERTED}"
        )
    if key == "signature":
        return (
            f"remove `signature`: {_NOT_CONVERTED} on its serving_default signature "
            "(else its first); choosing another one is not supported"
        )
    if key == "data.calibration":
        return f"use data.evaluation: {_NOT_CONVERTED}, so nothing is calibrated"
    if reference_kind == "unusable":
        return None  # the reference is reported; what depends on its kind cannot be judged
    if key == "safe_mode" and reference_kind != "keras":
        return (
            "remove `safe_mode`: it applies to loading .keras files, here only a .keras reference"
        )
    if not compared and key == "classification":
        return (
            "add `reference:` (the model this .tflite was made from), or remove it: without "
            "a reference no output is compared, so no top1 is gated"
        )
    if reference_kind is None and key == "input_map":
        return (
            "add `reference:` (the model this .tflite was made from), or remove it: "
            "input_map pairs the .tflite's inputs with the reference's"
        )
    if not compared and re.fullmatch(r"(variants\[0\]\.)?max_divergence", key):
        return (
            "add `reference:` (the model this .tflite was made from: a .tflite, .keras, "
            ".h5, SavedModel or module:function), or remove it: there is nothing to compare with"
        )
    if key == "limits.timeout_s" and reference_kind in {None, "tflite"} and not generated:
        return (
            "use limits.interpreter_timeout_s: limits.timeout_s bounds the TensorFlow worker, "
            "which a .tflite source without a Keras/SavedModel/factory reference or a data "
            "generator does not use"
        )
    return None


def _generated_data(config: ModelConfig) -> bool:
    """The data comes from a `module:function` generator, run in a worker under timeout_s."""
    values = (config.calibration.value, config.evaluation.value)
    return any(isinstance(value, str) and is_factory(value) for value in values)


def _converted_key_problem(key: str, kind: str) -> str | None:
    """What to do about a key written on a converted source's entry, or None if it applies."""
    if key == "reference":
        return (
            "remove `reference`: it gives a .tflite source something to compare with; a "
            "converted model is compared with its own source"
        )
    if key == "input_map":
        return (
            "remove `input_map`: it pairs a .tflite source's inputs with its reference's; a "
            "converted model is fed its own inputs"
        )
    if key == "signature" and kind != "saved_model":
        return f"remove `signature`: it selects a SavedModel signature; a {kind} source has none"
    if key == "safe_mode" and kind != "keras":
        return f"remove `safe_mode`: it applies to loading .keras files, not a {kind} source"
    return None


def check_source_keys(config: ModelConfig, kind: str, reference_kind: str | None) -> list[Finding]:
    """Keys written for a model that cannot apply to its kind of source.

    A key that is accepted and then ignored is a check silently switched off, so each
    one is refused at its own line.
    """
    findings = []
    by_line = sorted(config.key_locations.items(), key=lambda item: _line_order(item[1]))
    for key, location in by_line:
        if kind == "tflite":
            compared = reference_kind is not None or len(config.runtimes.value) > 1
            problem = _tflite_key_problem(key, reference_kind, _generated_data(config), compared)
        else:
            problem = _converted_key_problem(key, kind)
        if problem is not None:
            findings.append(
                make_finding(
                    "policy-invalid",
                    f"{config.name}: {key}: {problem}",
                    model=config.name,
                    location=location,
                    details={"source_kind": kind},
                    key=key,
                )
            )
    return findings


def _line_order(location: Location) -> tuple[int, int]:
    return location.line or 0, location.column or 0


def check_reference(
    config: ModelConfig, error: str, *, rule: RuleId = "model-load-failed"
) -> list[Finding]:
    """A reference model that cannot give reference outputs: the outputs are not compared."""
    return [
        make_finding(
            rule,
            f"{config.name}: reference {config.reference.value}: {error}; outputs not compared",
            model=config.name,
            location=setting_location(config.reference, config),
            details={"reference": config.reference.value},
            error=error,
        )
    ]


def check_input_pairing(config: ModelConfig, error: PairingError) -> list[Finding]:
    """Inputs of a .tflite and its reference that cannot be paired, at the line to change.

    An `input_map` entry at fault is pointed at (its key, or its value when the
    reference lacks that input); otherwise the map, or the reference, when none is written.
    """
    entry = next((e for e in config.input_map if e.tflite == error.entry), None)
    if entry is not None:
        location = entry.reference_location if error.in_value else entry.tflite_location
    else:
        location = config.key_locations.get("input_map") or setting_location(
            config.reference, config
        )
    return [
        make_finding(
            "policy-invalid",
            f"{config.name}: {error.message}; outputs not compared",
            model=config.name,
            location=location,
            details={"reference": config.reference.value},
            error=error.message,
        )
    ]

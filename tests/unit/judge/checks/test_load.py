"""Checks of loading a model: the installed versions the policy asks for, a load that
failed (and whose fault it was), keys that cannot apply to the kind of source, and a
reference that gives nothing to compare with."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.support.check_facts import line_of, resolved_model
from tflite_gate.findings import Location
from tflite_gate.judge import checks
from tflite_gate.model.input_pairing import PairingError
from tflite_gate.policy.resolve import ModelConfig, Setting
from tflite_gate.report.model import ModelReport, WrittenBy
from tflite_gate.run.protocol import LoadResult
from tflite_gate.support.environment import installed_version

SOMEWHERE = Location(path="tflite-gate.yml", line=9, column=3)


def test_version_specs(configs: list[ModelConfig]) -> None:
    specs = configs[0].version_specs
    assert checks.check_version_spec("numpy", specs["numpy"], None) == []
    [missing] = checks.check_version_spec(
        "not-a-real-distribution", specs["not-a-real-distribution"], None
    )
    assert missing.message.startswith("not-a-real-distribution is not installed")
    assert missing.location is not None and missing.location.line == line_of("not-a-real")


def test_an_installed_version_outside_the_spec_is_a_mismatch() -> None:
    numpy = installed_version("numpy")
    [finding] = checks.check_version_spec("numpy", Setting("<1", SOMEWHERE), "m")
    assert (finding.rule, finding.model, finding.package) == ("version-mismatch", "m", "numpy")
    assert finding.message == f"numpy {numpy} is installed, the policy requires numpy<1"
    assert finding.details == {"specifier": "<1", "installed": numpy}
    assert finding.location == SOMEWHERE


def test_load_failure_message_names_versions(configs: list[ModelConfig]) -> None:
    report = ModelReport(name="m", source="x.keras", written_by=WrittenBy(keras="9.9.9"))
    [finding] = checks.check_load(configs[0], LoadResult(ok=False, error="boom"), report)
    assert finding.rule == "model-load-failed"
    assert "written by Keras 9.9.9; installed: TensorFlow" in finding.message


def test_a_load_that_worked_says_nothing(configs: list[ModelConfig]) -> None:
    assert (
        checks.check_load(configs[0], LoadResult(ok=True), ModelReport(name="m", source="s")) == []
    )


def test_a_load_past_the_time_limit_never_says_the_model_cannot_load(
    configs: list[ModelConfig],
) -> None:
    """A valid model may just be slow to load: the limit is what to change."""
    load = LoadResult(ok=False, error="no result within 900 s", crash_cause="timeout")
    [finding] = checks.check_load(configs[0], load, ModelReport(name="m", source="s"))
    assert finding.message == (
        "m: raise limits.timeout_s (900 s, the default) if loading the model just takes "
        "longer: no result within 900 s"
    )
    assert "cannot load" not in finding.message


def test_a_load_that_names_a_policy_key_is_a_policy_error_at_that_key(tmp_path: Path) -> None:
    text = "version: 1\nmodels:\n  - name: m\n    source: m.keras\n    signature: nope\n"
    config = resolved_model(tmp_path, text)
    load = LoadResult(ok=False, error="no signature 'nope'", policy_key="signature")
    [finding] = checks.check_load(config, load, ModelReport(name="m", source="m.keras"))
    assert (finding.rule, finding.key, finding.message) == (
        "policy-invalid",
        "signature",
        "m: no signature 'nope'",
    )
    assert finding.location is not None and finding.location.line == 5


def test_a_missing_module_leads_with_installing_it_at_the_line_that_imports_it(
    configs: list[ModelConfig],
) -> None:
    load = LoadResult(
        ok=False,
        error="ModuleNotFoundError: No module named 'sentencepiece'",
        missing_module="sentencepiece",
        location=("pkg/mod.py", 3),
    )
    [finding] = checks.check_load(configs[0], load, ModelReport(name="m", source="s"))
    assert finding.message == (
        "m: install the package that provides the module 'sentencepiece' where the gate runs, "
        "or stop importing it: pkg.mod:build needs it (ModuleNotFoundError: No module named "
        "'sentencepiece')"
    )
    assert finding.location == Location(path="pkg/mod.py", line=3)


def test_a_load_that_failed_on_a_full_disk_is_an_environment_error_by_its_errno(
    configs: list[ModelConfig],
) -> None:
    load = LoadResult(ok=False, error="ResourceExhaustedError: could not write", errno=28)
    [finding] = checks.check_load(configs[0], load, ModelReport(name="m", source="s"))
    assert finding.rule == "environment-error"
    assert finding.errno == "ENOSPC"
    assert finding.message.startswith("free disk space, or set TMPDIR to a directory with room")
    assert f"a temporary file in {tempfile.gettempdir()}" in finding.message


def test_an_errno_is_never_read_out_of_the_error_text(configs: list[ModelConfig]) -> None:
    """The text may quote anything (a model's own message); only the errno field counts."""
    load = LoadResult(ok=False, error="ValueError: No space left on device, says the model")
    [finding] = checks.check_load(configs[0], load, ModelReport(name="m", source="s"))
    assert finding.rule == "model-load-failed"
    assert finding.error == load.error


def test_a_load_errno_that_is_not_the_disk_stays_a_load_failure(
    configs: list[ModelConfig],
) -> None:
    load = LoadResult(ok=False, error="FileNotFoundError: gone", errno=2)
    [finding] = checks.check_load(configs[0], load, ModelReport(name="m", source="s"))
    assert finding.rule == "model-load-failed"


def test_a_second_runtime_gives_thresholds_something_to_compare(two_runtimes: ModelConfig) -> None:
    assert checks.check_source_keys(two_runtimes, "tflite", None) == []


TFLITE_KEYS = """\
    version: 1
    models:
      - name: q
        source: q.tflite
        signature: serving_default
        safe_mode: false
        classification: [probs]
        max_divergence: {max_abs: 0.1}
        input_map: {x: x}
        limits: {timeout_s: 10}
        data: {calibration: c.npz}
        variants: [{name: a}, {name: b}]
    """


def test_keys_a_tflite_source_cannot_use_are_refused_at_their_lines(tmp_path: Path) -> None:
    """Accepted and then ignored, each would be a check switched off without a word."""
    config = resolved_model(tmp_path, TFLITE_KEYS)
    findings = checks.check_source_keys(config, "tflite", None)
    assert [f.key for f in findings] == [
        "signature",
        "safe_mode",
        "classification",
        "max_divergence",
        "input_map",
        "limits.timeout_s",
        "data.calibration",
        "variants[1]",
    ]
    assert {f.rule for f in findings} == {"policy-invalid"}
    assert [f.location.line if f.location else None for f in findings] == [
        line_of(key, TFLITE_KEYS)
        for key in ("signature", "safe_mode", "classification", "max_div", "input_map")
    ] + [line_of("limits", TFLITE_KEYS), line_of("calibration", TFLITE_KEYS)] + [
        line_of("variants", TFLITE_KEYS)
    ]
    assert findings[3].message.startswith("q: max_divergence: add `reference:`")
    assert findings[5].message.startswith("q: limits.timeout_s: use limits.interpreter_timeout_s")


def test_a_reference_makes_the_comparison_keys_of_a_tflite_source_apply(tmp_path: Path) -> None:
    config = resolved_model(
        tmp_path,
        TFLITE_KEYS.replace("source: q.tflite", "source: q.tflite\n        reference: q.h5"),
    )
    refused = [f.key for f in checks.check_source_keys(config, "tflite", "h5")]
    assert refused == ["signature", "safe_mode", "data.calibration", "variants[1]"]
    keras = [f.key for f in checks.check_source_keys(config, "tflite", "keras")]
    assert "safe_mode" not in keras and "limits.timeout_s" not in keras
    unusable = [f.key for f in checks.check_source_keys(config, "tflite", "unusable")]
    assert unusable == ["signature", "data.calibration", "variants[1]"]  # the rest depends on it


CONVERTED_KEYS = """\
    version: 1
    models:
      - name: c
        source: saved
        reference: other.keras
        input_map: {x: y}
        signature: serving_default
        safe_mode: false
    """


def test_keys_of_a_tflite_source_are_refused_on_a_converted_one(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, CONVERTED_KEYS)
    saved = checks.check_source_keys(config, "saved_model", None)
    assert [f.message for f in saved] == [
        "c: reference: remove `reference`: it gives a .tflite source something to compare "
        "with; a converted model is compared with its own source",
        "c: input_map: remove `input_map`: it pairs a .tflite source's inputs with its "
        "reference's; a converted model is fed its own inputs",
        "c: safe_mode: remove `safe_mode`: it applies to loading .keras files, not a "
        "saved_model source",
    ]
    assert saved[0].details == {"source_kind": "saved_model"}
    keras = [f.key for f in checks.check_source_keys(config, "keras", None)]
    assert keras == ["reference", "input_map", "signature"]


REFERENCED = """\
    version: 1
    models:
      - name: q
        source: q.tflite
        reference: q.keras
        input_map: {serving_x: x}
    """


def test_a_reference_that_gives_no_outputs_points_at_the_reference(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, REFERENCED)
    [finding] = checks.check_reference(config, "cannot load q.keras")
    assert (finding.rule, finding.message) == (
        "model-load-failed",
        "q: reference q.keras: cannot load q.keras; outputs not compared",
    )
    assert finding.location is not None
    assert finding.location.line == line_of("reference", REFERENCED)
    [other] = checks.check_reference(config, "its outputs differ", rule="output-mismatch")
    assert other.rule == "output-mismatch"


def test_inputs_that_cannot_be_paired_point_at_the_entry_at_fault(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, REFERENCED)
    line = line_of("input_map", REFERENCED)
    key = checks.check_input_pairing(config, PairingError("no input serving_x", "serving_x"))
    value = checks.check_input_pairing(
        config, PairingError("the reference has no input x", "serving_x", in_value=True)
    )
    whole = checks.check_input_pairing(config, PairingError("3 inputs for 2"))
    unknown = checks.check_input_pairing(config, PairingError("no input z", "z"))
    assert key[0].message == "q: no input serving_x; outputs not compared"
    assert [str(f[0].location) for f in (key, value, whole, unknown)] == [
        f"tflite-gate.yml:{line}:17",
        f"tflite-gate.yml:{line}:28",
        f"tflite-gate.yml:{line}:16",
        f"tflite-gate.yml:{line}:16",
    ]


def test_unpaired_inputs_without_a_map_point_at_the_reference(tmp_path: Path) -> None:
    config = resolved_model(tmp_path, REFERENCED.split("    input_map")[0])
    [finding] = checks.check_input_pairing(config, PairingError("3 inputs for 2"))
    assert finding.location is not None
    assert finding.location.line == line_of("reference", REFERENCED)

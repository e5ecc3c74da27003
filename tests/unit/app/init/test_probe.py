"""The probe and why its report cannot become a policy."""

from __future__ import annotations

from pathlib import Path

from tests.support.probe_report import measured_report
from tflite_gate.app.init.probe import probe_policy, probe_problem
from tflite_gate.policy.load import load_policy
from tflite_gate.rules import make_finding


def test_a_variant_no_threshold_should_pass_gets_no_starter_policy() -> None:
    problem = probe_problem(measured_report(5e-16, 1.0), margin=1.0)
    assert problem is not None
    code, message = problem
    assert code == 1
    assert message.startswith("fix these first (or choose other --variants): ")
    assert (
        "  tiny/float: fix the variant, no threshold should pass it: output 'probs' cosine "
        "5e-16: a min_cosine that passes it with the 100% margin is -1.0, at or below 0"
    ) in message
    collapsed = probe_problem(
        measured_report(0.99, 0.01, collapsed=True, collapsed_to=0.5), margin=0
    )
    assert collapsed is not None and "(collapsed)" in collapsed[1]
    assert probe_problem(measured_report(0.9825, 0.0123), margin=1.0) is None


def test_the_probe_policy_is_a_policy_with_no_limit(tmp_path: Path) -> None:
    text = probe_policy(
        "true", "models/a b.keras", [("float", "none"), ("int8", "int8")], {"x": [1, 3]}
    )
    (tmp_path / "probe.yml").write_text(text)
    [model] = load_policy(tmp_path / "probe.yml", tmp_path).policy.models
    assert (model.name, model.source, model.input_shapes) == (
        "true",
        "models/a b.keras",
        {"x": [1, 3]},
    )
    assert model.variants is not None
    assert [(v.name, v.quantization) for v in model.variants] == [
        ("float", "none"),
        ("int8", "int8"),
    ]
    assert model.ops is None and model.versions is None


def test_sizes_the_model_needs_are_asked_for_as_options() -> None:
    report = measured_report(0.99, 0.01)
    report.findings.append(
        make_finding(
            "policy-invalid",
            "input 'x' has dynamic dimensions [None, None, 3]",
            key="input_shapes",
        )
    )
    problem = probe_problem(report, margin=1.0)
    assert problem is not None and problem[0] == 2
    assert problem[1].startswith("pass the sizes your app feeds as --input-shape NAME=1,D1,D2,...")

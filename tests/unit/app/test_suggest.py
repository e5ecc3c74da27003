"""`tflite-gate suggest` as the app runs it: a finished run's report and its policy in,
a commented snippet (or what stands in the way) and an exit code out.

Reports are made as the pipeline makes them: outputs compared by the real comparison
under the thresholds the real policy resolves to, and judged by the real checks.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from tflite_gate.app.outcome import EXIT_PASS, EXIT_USAGE
from tflite_gate.app.suggest import run_suggest
from tflite_gate.judge.checks import check_divergence
from tflite_gate.judge.compare import OutputPlan, compare_run
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.report.json_report import write_json_report
from tflite_gate.report.model import ModelReport, Report, RuntimeRun, VariantReport
from tflite_gate.report.model.stamp import new_report
from tflite_gate.rules import make_finding
from tflite_gate.support.run_options import CheckOptions

POLICY = """\
    version: 1
    models:
      - name: det
        source: det.keras
        max_divergence: {min_cosine: 0.99999}
        variants:
          - {name: int8, quantization: int8}
    """
REFERENCE = {"probs": np.random.default_rng(0).random((8, 10))}


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedPolicy:
    (tmp_path / "tflite-gate.yml").write_text(textwrap.dedent(POLICY), encoding="utf-8")
    return load_policy(tmp_path / "tflite-gate.yml", tmp_path)


def _checked(loaded: LoadedPolicy, actual: dict[str, np.ndarray]) -> Report:
    """The report of a run whose int8 variant computed `actual`, judged as the gate does."""
    config = resolve_model(loaded, 0)
    thresholds = config.thresholds["int8"]
    judged = compare_run(
        REFERENCE,
        actual,
        by_order=False,
        plan_for=lambda name, _: OutputPlan(
            {key: setting.value for key, setting in thresholds.for_output(name).items()}
        ),
    )
    run = RuntimeRun(
        runtime="ai-edge-litert",
        status=judged.status,
        samples=8,
        metrics=judged.metrics,
        violations=judged.violations,
        tightest=judged.tightest,
    )
    variant = VariantReport(
        name="int8", quantization="int8", io="float32", status="converted", runs=[run]
    )
    report = new_report()
    report.policy = loaded.display_path
    report.models.append(ModelReport(name="det", source="det.keras", variants=[variant]))
    report.add(check_divergence(config, variant, run))
    report.finalize("error")
    return report


def _noisy(scale: float) -> dict[str, np.ndarray]:
    noise = np.random.default_rng(1).standard_normal(REFERENCE["probs"].shape)
    return {"probs": REFERENCE["probs"] + scale * noise}


def _suggest(workspace: Path, report: Report, margin: float = 1.0) -> tuple[int, str, list[str]]:
    path = workspace / "tflite-gate-report.json"
    write_json_report(report, path)
    options = CheckOptions(policy=workspace / "tflite-gate.yml", workspace=workspace)
    outcome = run_suggest(options, path, margin)
    return outcome.exit_code, outcome.text, outcome.messages


def test_a_broken_threshold_is_loosened_into_a_snippet_that_passes(
    tmp_path: Path, loaded: LoadedPolicy
) -> None:
    report = _checked(loaded, _noisy(0.01))
    assert report.verdict == "fail"
    code, text, messages = _suggest(tmp_path, report, margin=0.25)
    assert (code, messages) == (EXIT_PASS, [])
    assert text.startswith("# Merge into tflite-gate.yml (list entries by name). Margin 25%")
    written = yaml.safe_load(text)["models"][0]["variants"][0]["max_divergence"]["min_cosine"]
    [violation] = report.models[0].variants[0].runs[0].violations
    assert violation.value is not None and written < violation.value < 0.99999
    assert "not a threshold" not in text


def test_a_run_that_broke_nothing_has_nothing_to_loosen(
    tmp_path: Path, loaded: LoadedPolicy
) -> None:
    code, text, _ = _suggest(tmp_path, _checked(loaded, REFERENCE))
    assert code == EXIT_PASS
    assert text == f"# Nothing in {tmp_path / 'tflite-gate-report.json'} can be loosened to pass.\n"


def test_errors_no_threshold_fixes_are_listed_by_their_first_line(
    tmp_path: Path, loaded: LoadedPolicy
) -> None:
    report = _checked(loaded, _noisy(0.01))
    long_line = "det/int8 on ai-edge-litert: the interpreter crashed " + "x" * 300
    report.add([make_finding("interpreter-crash", f"{long_line}\nsecond line", model="det")])
    report.add([make_finding("converter-warning", "det/int8: a warning", model="det")])
    _, text, _ = _suggest(tmp_path, report)
    [line] = [line for line in text.splitlines() if "not a threshold" in line]
    assert line == f"# not a threshold (interpreter-crash): {long_line[:160]}"
    assert "divergence" not in line  # answered by the snippet above it
    assert "converter-warning" not in text  # a warning fails nothing to answer


def test_a_collapsed_output_is_a_defect_no_threshold_should_pass(
    tmp_path: Path, loaded: LoadedPolicy
) -> None:
    collapsed = {"probs": np.full_like(REFERENCE["probs"], 0.5)}
    code, text, _ = _suggest(tmp_path, _checked(loaded, collapsed))
    assert code == EXIT_PASS
    assert text.startswith("# Nothing in ")
    assert (
        "# not a threshold (defect): det/int8: fix the variant, no threshold should pass it: "
        in (text)
    )


def test_a_report_of_another_policy_is_a_usage_error(tmp_path: Path, loaded: LoadedPolicy) -> None:
    report = _checked(loaded, _noisy(0.01))
    report.policy = "ml/other.yml"
    code, text, messages = _suggest(tmp_path, report)
    assert (code, text) == (EXIT_USAGE, "")
    assert messages == [
        f"pass --policy ml/other.yml: {tmp_path / 'tflite-gate-report.json'} was made with it, "
        "not with tflite-gate.yml"
    ]


def test_a_report_of_models_the_policy_lacks_is_a_usage_error(
    tmp_path: Path, loaded: LoadedPolicy
) -> None:
    report = _checked(loaded, _noisy(0.01))
    report.models[0].name = "gone"
    code, _, [message] = _suggest(tmp_path, report)
    assert code == EXIT_USAGE
    assert message.endswith("checked 'gone', which the policy does not have")


def test_a_file_that_is_no_report_is_a_usage_error(tmp_path: Path, loaded: LoadedPolicy) -> None:
    path = tmp_path / "notes.json"
    path.write_text('{"hello": 1}')
    options = CheckOptions(policy=tmp_path / "tflite-gate.yml", workspace=tmp_path)
    outcome = run_suggest(options, path, 1.0)
    assert outcome.exit_code == EXIT_USAGE
    assert outcome.messages[0].startswith(f"pass tflite-gate JSON reports only: {path}")


def test_a_policy_that_does_not_load_is_a_usage_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "tflite-gate.yml").write_text("version: 1\nmodels: []\n")
    code, text, messages = _suggest(tmp_path, new_report())
    assert (code, text) == (EXIT_USAGE, "")
    assert len(messages) == 1 and messages[0].startswith("tflite-gate.yml:2")

"""`tflite-gate suggest` refuses, with a usage error, what it cannot place in the policy:
a report of another policy, a model the policy does not have, a file that is no
report, a margin out of range. (The command's module is app/suggest.py; these tests
came with the suggestions they drive.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.check_facts import loaded_policy
from tests.support.suggest_reports import (
    TWO_VARIANTS,
    noisy_run,
    report_of,
    write_report,
)
from tflite_gate.cli import main


def test_suggest_command_refuses_what_it_cannot_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = loaded_policy(tmp_path, TWO_VARIANTS)
    report = report_of(loaded, {("det", "float"): [noisy_run(loaded, "det", "float", {}, "x")]})
    report_path = write_report(tmp_path, report)
    args = ["suggest", "--workspace", str(tmp_path), "--report", str(report_path)]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("# Nothing in ")

    report.policy = "other.yml"
    write_report(tmp_path, report)
    assert main(args) == 2
    assert "pass --policy other.yml: " in capsys.readouterr().err

    report.policy = "tflite-gate.yml"
    report.models[0].name = "gone"
    write_report(tmp_path, report)
    assert main(args) == 2
    assert "checked 'gone', which the policy does not have" in capsys.readouterr().err

    report_path.write_text(json.dumps({"not": "a report"}), encoding="utf-8")
    assert main(args) == 2
    assert "pass tflite-gate JSON reports only" in capsys.readouterr().err

    assert main([*args, "--margin=-5%"]) == 2
    assert "the margin must be between 0 and 100" in capsys.readouterr().err

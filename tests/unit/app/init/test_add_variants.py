"""`init --variants` on an existing policy: what it asks for instead of deciding."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tflite_gate.app.init.add_variants import add_variants_to_policy
from tflite_gate.app.init.request import InitRequest

TWO_MODELS = """\
    version: 1
    models:
      - name: a
        source: a.keras
      - name: q
        source: q.tflite
    """


@pytest.mark.parametrize(
    ("name", "variants", "says"),
    [
        (None, ["int8"], "pass --name with the model to add variants to, one of: a, q"),
        ("c", ["int8"], "pass --name with one of a, q: tflite-gate.yml has no model 'c'"),
        (
            "a",
            ["float"],
            "pass --variants with a variant a does not have yet: tflite-gate.yml lists float",
        ),
        ("q", ["int8"], "leave out --variants for q: a .tflite source is checked as it is"),
        ("a", ["int4"], "pass --variants with some of float, dynamic, float16, int8, int16x8"),
    ],
)
def test_adding_variants_asks_for_what_it_cannot_decide(
    tmp_path: Path, name: str | None, variants: list[str], says: str
) -> None:
    policy = tmp_path / "tflite-gate.yml"
    policy.write_text(textwrap.dedent(TWO_MODELS))
    request = InitRequest(workspace=tmp_path, policy=policy, name=name, variants=variants)
    outcome = add_variants_to_policy(request, lambda _message: None)
    assert outcome.exit_code == 2
    assert outcome.messages[0].startswith(says), outcome.messages
    assert policy.read_text() == textwrap.dedent(TWO_MODELS)


def test_adding_variants_to_a_broken_policy_says_where_it_is_broken(tmp_path: Path) -> None:
    policy = tmp_path / "tflite-gate.yml"
    policy.write_text("version: 1\nmodels:\n  - name: a\n    source: a.keras\n    quantize: int8\n")
    request = InitRequest(tmp_path, policy, variants=["int8"])
    outcome = add_variants_to_policy(request, lambda _message: None)
    assert outcome.exit_code == 2
    assert outcome.messages[0].startswith("tflite-gate.yml:5:5: ")

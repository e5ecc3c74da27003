"""Loading and validating the policy file (fast: no TensorFlow anywhere).

Every bad input is checked on its message and on its exact position. Line and
column numbers are counted by hand from the YAML written in each test (1-based;
each YAML string starts with a backslash-newline, so its first line is line 1).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.harness import REPO
from tflite_gate.cli import main
from tflite_gate.findings import Location
from tflite_gate.judge import checks
from tflite_gate.policy.errors import PolicyError, PolicyIssue
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.policy.schema import VariantSpec, is_factory

POLICY = "tflite-gate.yml"
Issue = tuple[int | None, int | None, str]

OUTSIDE = (
    "is outside the workspace; paths are relative to the workspace root and must stay inside it"
)
NPZ_OR_GENERATE = (
    "expected a .npz file, a directory of .npy/.npz files, a package.module:function "
    "generator, or a mapping {generate: {seed, count, low, high}}"
)


def write_policy(workspace: Path, text: str) -> Path:
    path = workspace / POLICY
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(workspace: Path, text: str) -> LoadedPolicy:
    return load_policy(write_policy(workspace, text), workspace)


def issues(workspace: Path, text: str) -> list[Issue]:
    """(line, column, message) of each issue; all of them must name the policy file."""
    with pytest.raises(PolicyError) as caught:
        load(workspace, text)
    assert [issue.path for issue in caught.value.issues] == [POLICY] * len(caught.value.issues)
    return [(issue.line, issue.column, issue.message) for issue in caught.value.issues]


def at(line: int, column: int) -> Location:
    return Location(path=POLICY, line=line, column=column)


# --------------------------------------------------------------------------- the file itself

MISSING = (
    "run `tflite-gate init` to write a first policy (it checks the model once), or give "
    f"--policy the policy's path: {POLICY} does not exist"
)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / POLICY, tmp_path)
    assert caught.value.issues == [PolicyIssue(POLICY, None, None, MISSING)]
    assert str(caught.value) == f"{POLICY}: {MISSING}"


def _missing_message(file: Path, workspace: Path, option: str = "--policy") -> str:
    with pytest.raises(PolicyError) as caught:
        load_policy(file, workspace, policy_option=option)
    [issue] = caught.value.issues
    return f"{issue.path}: {issue.message}"


def test_a_yaml_policy_beside_the_missing_yml_is_offered(tmp_path: Path) -> None:
    (tmp_path / "tflite-gate.yaml").write_text("version: 1\nmodels: []\n", encoding="utf-8")
    assert _missing_message(tmp_path / POLICY, tmp_path) == (
        f"{POLICY}: did you mean tflite-gate.yaml? give --policy tflite-gate.yaml, "
        f"or rename it {POLICY}: no such file"
    )
    assert _missing_message(tmp_path / POLICY, tmp_path, "the `policy` input") == (
        f"{POLICY}: did you mean tflite-gate.yaml? give the `policy` input tflite-gate.yaml, "
        f"or rename it {POLICY}: no such file"
    )


def test_a_yml_policy_is_offered_for_a_missing_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ws" / "ci").mkdir(parents=True)
    (tmp_path / "ws" / "ci" / POLICY).write_text("version: 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # the path as the user typed it, relative to where they are
    assert _missing_message(Path("ws/ci/tflite-gate.yaml"), Path("ws")) == (
        "ci/tflite-gate.yaml: did you mean ws/ci/tflite-gate.yml? give --policy "
        "ws/ci/tflite-gate.yml, or rename it tflite-gate.yaml: no such file"
    )


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n\n# and another\n"], ids=["empty", "blank", "comments"]
)
def test_empty_policy(tmp_path: Path, text: str) -> None:
    assert issues(tmp_path, text) == [
        (1, 1, "the policy file is empty; expected `version: 1` and `models:`")
    ]


def test_yaml_unclosed_bracket_points_where_it_opens(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: a
            source: [a.keras
        """
    # PyYAML notices at the end of the stream (line 5, past the last line); the
    # useful place is the `[` that was never closed: line 4, column 13.
    assert issues(tmp_path, text) == [
        (
            4,
            13,
            "YAML syntax error: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence started at line 4, column 13)",
        )
    ]


def test_yaml_unclosed_bracket_before_more_lines(tmp_path: Path) -> None:
    text = """\
        version: 1
        defaults:
          ops:
            allow: [ADD, MUL
        models: []
        """
    assert issues(tmp_path, text) == [
        (
            5,
            7,
            "YAML syntax error: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence started at line 4, column 12)",
        )
    ]


def test_yaml_bad_indentation(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: a
           source: a.keras
        """
    assert issues(tmp_path, text) == [
        (
            4,
            4,
            "YAML syntax error: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block collection started at line 3, column 3)",
        )
    ]


def test_top_level_list_is_rejected(tmp_path: Path) -> None:
    text = """\
        - version: 1
        - models: []
        """
    assert issues(tmp_path, text) == [(1, 1, "expected a mapping at the top level, got list")]


# --------------------------------------------------------------------------- types and keys


def test_wrong_types(tmp_path: Path) -> None:
    text = """\
        version: 1
        fail_on: 3
        defaults:
          ops:
            select_tf_ops: maybe
        models: {}
        """
    assert issues(tmp_path, text) == [
        (2, 10, "fail_on: expected one of error, warning, got 3"),
        (
            5,
            20,
            "defaults.ops.select_tf_ops: write true or false, got 'maybe'",
        ),
        (6, 9, "models: input should be a valid list, got {}"),
    ]


def test_values_are_refused_in_a_type_the_schema_refuses(tmp_path: Path) -> None:
    """No coercion: what the shipped JSON schema refuses (a quoted number), the gate refuses."""
    text = """\
        version: 1
        defaults:
          max_divergence: {min_cosine: "0.9999", min_top1: true}
          limits: {memory_mb: "2048", timeout_s: 1.0, num_threads: 2.0}
          ops: {select_tf_ops: 1}
        models:
          - name: a
            source: a.keras
        """
    assert issues(tmp_path, text) == [
        (5, 24, "defaults.ops.select_tf_ops: write true or false, got 1"),
        (3, 32, "defaults.max_divergence.min_cosine: write a number without quotes, got '0.9999'"),
        (3, 52, "defaults.max_divergence.min_top1: write a number, got True"),
        (4, 23, "defaults.limits.memory_mb: write a whole number without quotes, got '2048'"),
    ]


def test_numbers_with_an_exponent_are_numbers_as_in_yaml_1_2(tmp_path: Path) -> None:
    """Editors read YAML 1.2, where 1e-3 is a number; YAML 1.1 (PyYAML) would make it text."""
    loaded = load(
        tmp_path,
        """\
        version: 1
        models:
          - name: a
            source: a.keras
            max_divergence: {max_abs: 1e-3, rmse: 1.0e3, mean_abs: .5E+1, min_snr_db: -2e1}
            data: {samples: 1e2}
        """,
    )
    divergence = loaded.policy.models[0].max_divergence
    assert divergence is not None
    assert (divergence.max_abs, divergence.rmse, divergence.mean_abs) == (0.001, 1000.0, 5.0)
    assert divergence.min_snr_db == -20.0
    assert loaded.policy.models[0].data is not None
    assert loaded.policy.models[0].data.samples == 100


@pytest.mark.parametrize("key", ["variants", "runtimes", "ops", "limits"])
def test_an_empty_key_is_an_error_at_its_line(tmp_path: Path, key: str) -> None:
    """`variants:` with nothing under it is null, not "the default": say so where it is."""
    text = f"""\
        version: 1
        models:
          - name: a
            source: a.keras
            {key}:
        """
    assert issues(tmp_path, text) == [
        (
            5,
            5,
            f"models[0].{key}: write a value under {key}: or delete the line; "
            "an empty key is null, not the default",
        )
    ]


def test_a_negative_seed_is_refused_where_it_is_written(tmp_path: Path) -> None:
    """NumPy's generators take no negative seed: refused here, not as a worker's traceback."""
    text = """\
        version: 1
        models:
          - name: a
            source: a.keras
            data: {calibration: {generate: {seed: -1}}}
        """
    assert issues(tmp_path, text) == [
        (
            5,
            43,
            "models[0].data.calibration.generate.seed: input should be greater than or "
            "equal to 0, got -1",
        )
    ]


@pytest.mark.parametrize("key", ["generate: {count: 10000000}", "samples: 100001"])
def test_sample_counts_are_bounded(tmp_path: Path, key: str) -> None:
    if key.startswith("generate"):
        text = f"data: {{evaluation: {{{key}}}}}"
        column, path, given = 43, "models[0].data.evaluation.generate.count", 10000000
    else:
        text = f"data: {{{key}}}"
        column, path, given = 21, "models[0].data.samples", 100001
    policy = f"""\
        version: 1
        models:
          - name: a
            source: a.keras
            {text}
        """
    assert issues(tmp_path, policy) == [
        (
            5,
            column,
            f"{path}: use at most 100000 samples (each is run through every variant on "
            f"every runtime), got {given}",
        )
    ]


def test_negative_input_dimension(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: a
            source: a.keras
            input_shapes: {x: [1, -3]}
        """
    assert issues(tmp_path, text) == [
        (5, 27, "models[0].input_shapes.x[1]: input should be greater than or equal to 1, got -3")
    ]


def test_unknown_keys_at_every_level_point_at_the_key(tmp_path: Path) -> None:
    text = """\
        version: 1
        colour: red
        defaults:
          ops:
            alow: [ADD]
        models:
          - name: a
            source: a.keras
            variants:
              - name: f
                quantisation: int8
        """
    assert issues(tmp_path, text) == [
        (
            5,
            5,
            "defaults.ops.alow: unknown key 'alow' (did you mean 'allow'?); "
            "expected one of allow, custom, deny, select_tf_ops",
        ),
        (
            11,
            9,
            "models[0].variants[0].quantisation: unknown key 'quantisation' "
            "(did you mean 'quantization'?); expected one of io, keep_float, max_divergence, "
            "name, quantization",
        ),
        (2, 1, "colour: unknown key 'colour'; expected one of defaults, fail_on, models, version"),
    ]


def test_unknown_quantization_points_at_the_value(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: a
            source: a.keras
            variants:
              - name: f
              - name: q
                quantization: int4
        """
    assert issues(tmp_path, text) == [
        (
            8,
            23,
            "models[0].variants[1].quantization: expected one of none, dynamic, float16, int8, "
            "int16x8, got 'int4'",
        )
    ]


def test_missing_required_keys_point_at_the_parent_mapping(tmp_path: Path) -> None:
    text = """\
        models:
          - name: a
        """
    assert issues(tmp_path, text) == [
        (1, 1, "policy: missing required key 'version'"),
        (2, 5, "models[0]: missing required key 'source'"),
    ]


def test_version_2_is_rejected(tmp_path: Path) -> None:
    text = """\
        version: 2
        models:
          - name: a
            source: a.keras
        """
    assert issues(tmp_path, text) == [(1, 10, "version: expected one of 1, got 2")]


# --------------------------------------------------------------------------- duplicates


def test_duplicate_model_names_point_at_the_second(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: a
            source: a.keras
          - name: a
            source: b.keras
        """
    assert issues(tmp_path, text) == [
        (5, 11, "models[1].name: duplicate model name 'a' (first used at index 0)")
    ]


def test_duplicate_variant_names_point_at_the_second(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: a
            source: a.keras
            variants:
              - {name: f}
              - {name: q, quantization: int8}
              - {name: f, quantization: float16}
        """
    assert issues(tmp_path, text) == [
        (8, 16, "models[0].variants[2].name: duplicate variant name 'f' (first used at index 0)")
    ]


def test_duplicate_yaml_key_points_at_the_second_key(tmp_path: Path) -> None:
    # PyYAML would silently keep the second `ops:` and drop the allow-list.
    text = """\
        version: 1
        defaults:
          ops:
            allow: [ADD]
          ops:
            deny: [MUL]
        models:
          - name: a
            source: a.keras
        """
    assert issues(tmp_path, text) == [(5, 3, "duplicate key 'ops'")]


# --------------------------------------------------------------------------- paths


def test_sources_outside_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "outside.keras"
    outside.write_bytes(b"")
    (workspace / "link.keras").symlink_to(outside)  # os.symlink; ruff PTH211 prefers this
    (workspace / "models").mkdir()
    (workspace / "inner-link").symlink_to(workspace / "models")
    text = f"""\
        version: 1
        models:
          - name: up
            source: ../outside.keras
          - name: absolute
            source: {outside}
          - name: link
            source: link.keras
          - name: factory
            source: pkg.mod:build
          - name: inside
            source: models/ok.keras
          - name: inside-link
            source: inner-link/ok.keras
        """
    assert issues(workspace, text) == [
        (4, 13, f"models[0].source: source '../outside.keras' {OUTSIDE}"),
        (6, 13, f"models[1].source: source {str(outside)!r} {OUTSIDE}"),
        (8, 13, f"models[2].source: source 'link.keras' {OUTSIDE}"),
    ]


def test_calibration_file_outside_the_workspace(tmp_path: Path) -> None:
    text = """\
        version: 1
        defaults:
          data:
            calibration: ../calib.npz
        models:
          - name: a
            source: a.keras
        """
    assert issues(tmp_path, text) == [
        (4, 18, f"defaults.data.calibration: data source '../calib.npz' {OUTSIDE}")
    ]


def test_factory_source_is_not_a_path(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        models:
          - name: a
            source: example_models.classifier:build
        """,
    )
    assert is_factory(loaded.policy.models[0].source)
    assert not is_factory("../outside.keras")
    assert not is_factory("models/a.keras")


# --------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            """\
            version: 1
            defaults:
              versions:
                tensorflow: ">=2.16"
                target_runtime: 2.14
            models:
              - name: a
                source: a.keras
            """,
            (
                5,
                21,
                "defaults.versions.target_runtime: write the version in quotes "
                '(target_runtime: "2.14"): YAML reads 2.14 unquoted as a number',
            ),
            id="unquoted-float",
        ),
        pytest.param(
            """\
            version: 1
            defaults:
              versions:
                target_runtime: 2.10
            models:
              - name: a
                source: a.keras
            """,
            (
                4,
                21,
                "defaults.versions.target_runtime: write the version in quotes "
                '(target_runtime: "2.10"): YAML reads 2.10 unquoted as the number 2.1',
            ),
            id="unquoted-float-trailing-zero",
        ),
        pytest.param(
            """\
            version: 1
            models:
              - name: a
                source: a.keras
                versions:
                  tensorflow: 2.20
            """,
            (
                6,
                19,
                "models[0].versions.tensorflow: write the version as a quoted specifier "
                '(tensorflow: "==2.20.*"): YAML reads 2.20 unquoted as the number 2.2',
            ),
            id="unquoted-package-version",
        ),
        pytest.param(
            """\
            version: 1
            models:
              - name: a
                source: a.keras
                versions:
                  target_runtime: "abc"
            """,
            (
                6,
                23,
                "models[0].versions.target_runtime: invalid runtime version 'abc': expected "
                "dot-separated non-negative integers such as '2.14' or '2.14.0'",
            ),
            id="not-a-version",
        ),
        pytest.param(
            """\
            version: 1
            defaults:
              versions:
                target_runtime: "2.14"
                tensorflow: ">>2"
            models:
              - name: a
                source: a.keras
            """,
            (
                5,
                17,
                "defaults.versions.tensorflow: '>>2' is not a PEP 440 version specifier "
                '(for example ">=2.16,<2.22")',
            ),
            id="bad-specifier",
        ),
    ],
)
def test_bad_versions_point_at_the_value(tmp_path: Path, text: str, expected: Issue) -> None:
    assert issues(tmp_path, text) == [expected]


# --------------------------------------------------------------------------- variants and data


def test_int8_io_needs_int8_quantization(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: a
            source: a.keras
            variants:
              - name: f
                quantization: none
                io: int8
        """
    assert issues(tmp_path, text) == [
        (8, 13, "models[0].variants[0].io: io 'int8' needs quantization int8, got 'none'")
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [("data.txt", "'data.txt'"), ("42", "42")],
    ids=["not-npz", "number"],
)
def test_calibration_must_be_npz_or_generate(tmp_path: Path, value: str, shown: str) -> None:
    text = f"""\
        version: 1
        models:
          - name: a
            source: a.keras
            data: {{calibration: {value}}}
        """
    assert issues(tmp_path, text) == [
        (5, 25, f"models[0].data.calibration: {NPZ_OR_GENERATE}, got {shown}")
    ]


def test_generate_low_must_be_below_high(tmp_path: Path) -> None:
    text = """\
        version: 1
        defaults:
          data:
            calibration: {generate: {low: 1, high: 0}}
        models:
          - name: a
            source: a.keras
        """
    # Only the generate branch's error: not also "input should be a valid string".
    assert issues(tmp_path, text) == [
        (
            4,
            29,
            "defaults.data.calibration.generate: low (1.0) must be smaller than high (0.0)",
        )
    ]


def test_calibration_mapping_with_unknown_key(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: a
            source: a.keras
            data:
              calibration:
                generat: {count: 4}
        """
    assert issues(tmp_path, text) == [
        (7, 9, "models[0].data.calibration: missing required key 'generate'"),
        (
            7,
            9,
            "models[0].data.calibration.generat: unknown key 'generat' "
            "(did you mean 'generate'?); expected one of generate",
        ),
    ]


# --------------------------------------------------------------------------- YAML features


def test_anchors_and_aliases_reuse_variants(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        models:
          - name: a
            source: a.keras
            variants: &v
              - {name: float}
              - {name: int8, quantization: int8, io: int8}
          - name: b
            source: b.keras
            variants: *v
        """,
    )
    first, second = loaded.policy.models
    assert [v.name for v in second.variants] == ["float", "int8"]
    assert second.variants == first.variants
    assert second.variants[1].io == "int8"
    # An aliased value is located where the anchor wrote it.
    assert loaded.location(("models", 1, "variants", 1, "io")) == at(7, 46)


def test_merge_key_with_override(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        models:
          - &base
            name: a
            source: a.keras
            ops: {allow: [ADD]}
          - <<: *base
            name: b
            ops: {deny: [MUL]}
        """,
    )
    first, second = loaded.policy.models
    assert (first.name, second.name) == ("a", "b")
    assert second.source == "a.keras"
    assert second.ops is not None
    assert (second.ops.allow, second.ops.deny) == (None, ["MUL"])
    assert loaded.location(("models", 1, "name")) == at(8, 11)
    assert loaded.location(("models", 1, "source")) == at(5, 13)
    # The overridden merged `ops` leaves no stale positions behind.
    assert loaded.location(("models", 1, "ops", "allow")) == at(9, 10)


def test_duplicate_own_key_next_to_a_merge_is_still_an_error(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - &base
            name: a
            source: a.keras
          - <<: *base
            name: b
            name: c
        """
    assert issues(tmp_path, text) == [(8, 5, "duplicate key 'name'")]


# --------------------------------------------------------------------------- valid policies

VALID = """\
    version: 1
    fail_on: warning
    defaults:
      ops:
        allow: [ADD, MUL]
        deny: [CUSTOM_X]
      versions:
        tensorflow: ">=2.16"
        target_runtime: "2.14"
    models:
      - name: a
        source: models/a.keras
        ops:
          allow: [conv_2d]
        versions:
          target_runtime: "2.17"
          ai-edge-litert: ">=1.2"
        max_divergence: {max_abs: 1e-3}
      - name: b
        source: pkg.mod:build
        data: {calibration: {generate: {count: 4}}}
    """


def test_valid_policy_loads(tmp_path: Path) -> None:
    loaded = load(tmp_path, VALID)
    policy = loaded.policy
    assert loaded.display_path == POLICY
    assert policy.version == 1
    assert policy.fail_on == "warning"
    assert [m.name for m in policy.models] == ["a", "b"]
    assert policy.models[0].variants is None
    assert [v.name for v in resolve_model(loaded, 0).variants] == ["float"]
    max_divergence = policy.models[0].max_divergence
    assert max_divergence is not None
    assert isinstance(max_divergence.max_abs, float)
    assert max_divergence.max_abs == pytest.approx(0.001)


def test_bundled_example_policies_load() -> None:
    examples = REPO / "examples"
    for name in ("tflite-gate.yml", "passing.yml"):
        loaded = load_policy(examples / name, examples)
        assert loaded.display_path == name
        assert loaded.policy.models


def test_resolve_model_applies_defaults_key_by_key(tmp_path: Path) -> None:
    loaded = load(tmp_path, VALID)
    a = resolve_model(loaded, 0)
    # ops.allow is overridden by the model, ops.deny is inherited from defaults.
    assert a.allow_ops.value == ["CONV_2D"]
    assert a.allow_ops.location == at(14, 14)
    assert a.deny_ops.value == ["CUSTOM_X"]
    assert a.deny_ops.location == at(6, 11)
    assert (a.select_tf_ops.value, a.select_tf_ops.location) == (False, None)
    assert (a.custom_ops.value, a.custom_ops.location) == ([], None)
    # versions are merged key by key; target_runtime is taken out of the specs.
    assert {name: s.value for name, s in a.version_specs.items()} == {
        "tensorflow": ">=2.16",
        "ai-edge-litert": ">=1.2",
    }
    assert a.version_specs["tensorflow"].location == at(8, 17)
    assert a.version_specs["ai-edge-litert"].location == at(17, 23)
    assert a.target_runtime.value == "2.17"
    assert a.target_runtime.location == at(16, 23)
    assert a.source_location == at(12, 13)
    assert (a.calibration.value, a.calibration.location) == (None, None)
    assert a.timeout_s.value == 900.0

    b = resolve_model(loaded, 1)
    assert b.allow_ops.value == ["ADD", "MUL"]
    assert b.allow_ops.location == at(5, 12)
    assert b.deny_ops.location == at(6, 11)
    assert b.target_runtime.value == "2.14"
    assert b.target_runtime.location == at(9, 21)
    assert list(b.version_specs) == ["tensorflow"]
    assert b.calibration.location == at(21, 25)
    assert b.source_location == at(20, 13)


DEFAULT_VARIANTS = """\
    version: 1
    defaults:
      max_divergence: {max_abs: 0.5}
      variants:
        - {name: float}
        - {name: int8, quantization: int8, max_divergence: {min_cosine: 0.99}}
    models:
      - name: inherits
        source: a.keras
      - name: own
        source: b.keras
        variants:
          - {name: f16, quantization: float16, max_divergence: {max_abs: 0.01}}
    """


def test_variants_in_defaults_are_inherited_and_replaced_as_a_whole(tmp_path: Path) -> None:
    loaded = load(tmp_path, DEFAULT_VARIANTS)
    inherits, own = resolve_model(loaded, 0), resolve_model(loaded, 1)
    assert inherits.variants == [
        VariantSpec(name="float"),
        VariantSpec(name="int8", quantization="int8", max_divergence={"min_cosine": 0.99}),
    ]
    assert [v.name for v in own.variants] == ["f16"]
    # Each threshold points where it was written: the default variant's own line.
    int8 = inherits.thresholds["int8"].base
    assert (int8["min_cosine"].value, int8["min_cosine"].location) == (0.99, at(6, 69))
    assert int8["max_abs"].location == at(3, 29)
    assert inherits.thresholds["float"].base["max_abs"].location == at(3, 29)
    f16 = own.thresholds["f16"].base["max_abs"]
    assert (f16.value, f16.location) == (0.01, at(13, 70))
    # A .tflite source's as-is run gets the model's and the defaults' thresholds.
    assert own.thresholds["tflite"].base["max_abs"].location == at(3, 29)


def test_duplicate_variant_names_in_defaults(tmp_path: Path) -> None:
    assert issues(
        tmp_path,
        """\
        version: 1
        defaults:
          variants: [{name: f}, {name: f}]
        models: [{name: a, source: a.keras}]
        """,
    ) == [(3, 32, "defaults.variants[1].name: duplicate variant name 'f' (first used at index 0)")]


def test_reference_outside_the_workspace(tmp_path: Path) -> None:
    assert issues(
        tmp_path,
        """\
        version: 1
        models:
          - name: a
            source: a.tflite
            reference: ../float.tflite
        """,
    ) == [(5, 16, f"models[0].reference: reference '../float.tflite' {OUTSIDE}")]


KEYS_BY_KIND = """\
    version: 1
    defaults:
      data: {calibration: calib.npz}
      max_divergence: {max_abs: 0.1}
      variants: [{name: float}, {name: int8, quantization: int8}]
    models:
      - name: tflite-typos
        source: m.tflite
        signature: serving_default
        safe_mode: false
        variants:
          - {name: as-is, quantization: int8, max_divergence: {max_abs: 0.1}}
          - {name: second}
        max_divergence: {min_cosine: 0.99}
        data: {calibration: calib.npz, evaluation: eval.npz}
        limits: {timeout_s: 60, interpreter_timeout_s: 60}
      - name: tflite-fine
        source: m.tflite
        input_shapes: {x: [1, 4]}
        variants: [{name: quantized}]
        ops: {allow: [ADD]}
        data: {evaluation: eval.npz, samples: 4}
        limits: {interpreter_timeout_s: 60, memory_mb: 1024}
      - name: tflite-compared
        source: m.tflite
        reference: float.keras
        max_divergence: {min_cosine: 0.99}
        limits: {timeout_s: 60}
      - name: tflite-compared-tflite
        source: m.tflite
        reference: float.tflite
        limits: {timeout_s: 60}
      - name: keras
        source: m.keras
        reference: float.tflite
        signature: serving_default
        safe_mode: false
      - name: saved
        source: saved_model
        signature: serving_default
        safe_mode: true
    """


def _misplaced(loaded: LoadedPolicy, index: int, kind: str, reference: str | None) -> list[Issue]:
    findings = checks.check_source_keys(resolve_model(loaded, index), kind, reference)
    assert {f.rule for f in findings} <= {"policy-invalid"}
    return sorted(
        (f.location.line, f.location.column, f.key)
        for f in findings
        if f.location is not None and f.location.line is not None
    )


def test_keys_that_cannot_apply_to_the_source_kind_point_at_their_line(tmp_path: Path) -> None:
    loaded = load(tmp_path, KEYS_BY_KIND)
    assert _misplaced(loaded, 0, "tflite", None) == [
        (9, 16, "signature"),
        (10, 16, "safe_mode"),
        (12, 37, "variants[0].quantization"),
        (12, 59, "variants[0].max_divergence"),
        (13, 9, "variants[1]"),
        (14, 21, "max_divergence"),
        (15, 25, "data.calibration"),
        (16, 25, "limits.timeout_s"),
    ]
    # Inherited defaults (calibration, thresholds, a variant list) are not errors.
    assert _misplaced(loaded, 1, "tflite", None) == []
    assert _misplaced(loaded, 2, "tflite", "keras") == []
    # safe_mode is for loading .keras files: a .keras reference takes it.
    assert _misplaced(loaded, 0, "tflite", "keras") == [
        (9, 16, "signature"),
        (12, 37, "variants[0].quantization"),
        (13, 9, "variants[1]"),
        (15, 25, "data.calibration"),
    ]
    # An unusable reference is reported on its own; keys that depend on it are not judged.
    assert _misplaced(loaded, 0, "tflite", "unusable") == [
        (9, 16, "signature"),
        (12, 37, "variants[0].quantization"),
        (13, 9, "variants[1]"),
        (15, 25, "data.calibration"),
    ]
    assert _misplaced(loaded, 3, "tflite", "tflite") == [(32, 25, "limits.timeout_s")]
    assert _misplaced(loaded, 4, "keras", None) == [
        (35, 16, "reference"),
        (36, 16, "signature"),
    ]
    assert _misplaced(loaded, 5, "saved_model", None) == [(41, 16, "safe_mode")]


def test_classification_on_a_tflite_needs_a_reference(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        models:
          - name: t
            source: m.tflite
            classification: [probs]
        """,
    )
    assert _misplaced(loaded, 0, "tflite", None) == [(5, 21, "classification")]
    assert _misplaced(loaded, 0, "tflite", "keras") == []


def test_misplaced_key_message_says_what_to_do(tmp_path: Path) -> None:
    config = resolve_model(load(tmp_path, KEYS_BY_KIND), 0)
    messages = {f.key: f.message for f in checks.check_source_keys(config, "tflite", None)}
    assert messages["max_divergence"] == (
        "tflite-typos: max_divergence: add `reference:` (the model this .tflite was made "
        "from: a .tflite, .keras, .h5, SavedModel or module:function), or remove it: there "
        "is nothing to compare with"
    )
    assert messages["variants[1]"] == (
        "tflite-typos: variants[1]: keep at most one variant, with only a name and "
        "max_divergence, or remove `variants`: a .tflite source runs as-is (it is not converted)"
    )


INPUT_MAP = """\
    version: 1
    models:
      - name: t
        source: m.tflite
        reference: m.keras
        input_map: {a: left, b: right}
      - name: converted
        source: m.keras
        input_map:
          x: input
    """


def test_input_map_entries_are_located_by_key_and_value(tmp_path: Path) -> None:
    (first, second) = resolve_model(load(tmp_path, INPUT_MAP), 0).input_map
    assert (first.tflite, first.reference) == ("a", "left")
    assert (first.tflite_location, first.reference_location) == (at(6, 17), at(6, 20))
    assert (second.tflite_location, second.reference_location) == (at(6, 26), at(6, 29))
    assert resolve_model(load(tmp_path, INPUT_MAP), 1).input_map[0].tflite_location == at(10, 7)


def test_input_map_feeding_one_reference_input_twice_is_refused(tmp_path: Path) -> None:
    text = """\
        version: 1
        models:
          - name: t
            source: m.tflite
            reference: m.keras
            input_map: {a: left, b: left}
        """
    assert issues(tmp_path, text) == [
        (
            6,
            29,
            "models[0].input_map.b: map 'b' to another of the reference's inputs: 'left' is "
            "already fed by 'a'",
        )
    ]


def test_input_map_needs_a_tflite_source_with_a_reference(tmp_path: Path) -> None:
    loaded = load(tmp_path, INPUT_MAP)
    assert _misplaced(loaded, 0, "tflite", "keras") == []
    assert _misplaced(loaded, 0, "tflite", None) == [(6, 16, "input_map")]
    assert _misplaced(loaded, 1, "keras", None) == [(10, 7, "input_map")]
    messages = {
        kind: checks.check_source_keys(resolve_model(loaded, index), kind, None)[0].message
        for index, kind in ((0, "tflite"), (1, "keras"))
    }
    assert messages == {
        "tflite": "t: input_map: add `reference:` (the model this .tflite was made from), or "
        "remove it: input_map pairs the .tflite's inputs with the reference's",
        "keras": "converted: input_map: remove `input_map`: it pairs a .tflite source's inputs "
        "with its reference's; a converted model is fed its own inputs",
    }


# --------------------------------------------------------------------------- CLI

BAD_POLICY = """\
    version: 1
    models:
      - name: a
        source: a.keras
        variants:
          - {name: q, quantization: int4}
    """
BAD_MESSAGE = (
    "models[0].variants[0].quantization: expected one of none, dynamic, float16, int8, "
    "int16x8, got 'int4'"
)


def test_cli_bad_policy_exits_2_with_location_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_policy(tmp_path, BAD_POLICY)
    report_path = tmp_path / "out" / "report.json"
    code = main(["check", "--workspace", str(tmp_path), "--report", str(report_path), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.splitlines() == [f"{POLICY}:6:33: {BAD_MESSAGE}"]
    assert "Traceback" not in captured.err + captured.out
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["verdict"] == "error"
    assert [
        (f["rule"], f["severity"], f["message"], f["location"]) for f in report["findings"]
    ] == [("policy-invalid", "error", BAD_MESSAGE, {"path": POLICY, "line": 6, "column": 33})]


def test_cli_missing_policy_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_path = tmp_path / "report.json"
    code = main(["check", "--workspace", str(tmp_path), "--report", str(report_path)])
    assert code == 2
    assert capsys.readouterr().err == (f"{POLICY}: {MISSING}\n")
    findings = json.loads(report_path.read_text(encoding="utf-8"))["findings"]
    assert [(f["rule"], f["location"]) for f in findings] == [("policy-invalid", None)]


def test_cli_unknown_only_name_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_policy(
        tmp_path,
        """\
        version: 1
        models:
          - name: a
            source: pkg.mod:build
          - name: b
            source: pkg.mod:build
        """,
    )
    code = main(
        [
            "check",
            "--workspace",
            str(tmp_path),
            "--report",
            str(tmp_path / "report.json"),
            "--only",
            "a,nope",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        "tflite-gate: error: --only names unknown model(s) nope; the policy has: a, b\n"
    )


def test_cli_workspace_not_a_directory_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x", encoding="utf-8")
    report_path = tmp_path / "report.json"
    code = main(["check", "--workspace", str(not_a_dir), "--report", str(report_path)])
    assert code == 2
    message = f"give --workspace an existing directory: {not_a_dir} is not one"
    assert capsys.readouterr().err == f"tflite-gate: error: {message}\n"
    report = json.loads(report_path.read_text(encoding="utf-8"))  # README: always written
    assert report["verdict"] == "error"
    assert [(f["rule"], f["message"]) for f in report["findings"]] == [("usage-error", message)]


@pytest.mark.slow
def test_invalid_policy_is_rejected_before_tensorflow_is_imported(tmp_path: Path) -> None:
    write_policy(tmp_path, BAD_POLICY)
    script = textwrap.dedent(
        """\
        import sys
        from tflite_gate.cli import main
        code = main(sys.argv[1:])
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        assert "keras" not in sys.modules, "keras was imported"
        # Nor the pipeline and numpy: a bad policy is answered in a fraction of a second.
        assert "tflite_gate.pipeline.run" not in sys.modules, "the pipeline was imported"
        assert "numpy" not in sys.modules, "numpy was imported"
        print(f"NO-TENSORFLOW exit={code}")
        """
    )
    args = ["check", "--workspace", str(tmp_path), "--report", str(tmp_path / "r.json")]
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "NO-TENSORFLOW exit=2"
    assert result.stderr.strip() == f"{POLICY}:6:33: {BAD_MESSAGE}"


def test_artifacts_directory_that_cannot_be_created_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tflite-gate.yml").write_text(
        "version: 1\nmodels:\n  - {name: m, source: m.keras}\n"
    )
    (tmp_path / "blocker").write_text("a file, not a directory")
    code = main(
        ["check", "--workspace", str(tmp_path), "--artifacts", str(tmp_path / "blocker" / "a")]
    )
    assert code == 2
    assert "give --artifacts a writable directory: cannot create artifacts in" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("odd_break", ["\u2028", "\u2029", "\x85"])
def test_lines_are_numbered_by_newlines_as_editors_and_github_do(
    tmp_path: Path, odd_break: str
) -> None:
    """YAML also ends a line at these; an annotation must still land on the right line."""
    text = f"version: 1{odd_break}\nmodels: 3\n"  # two YAML line breaks, one newline
    (tmp_path / POLICY).write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path / POLICY, tmp_path)
    [issue] = raised.value.issues
    assert issue.message == "models: input should be a valid list, got 3"
    assert (issue.line, issue.column) == (2, 9)

"""The run plan: every model resolved once, its sources, data, variants and runtimes typed.

Lines and columns are counted by hand from the YAML in each test (1-based).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tflite_gate.findings import Location
from tflite_gate.policy.load import load_policy
from tflite_gate.policy.plan import (
    DataSourcePlan,
    RunPlan,
    RuntimePlan,
    SourcePlan,
    plan_run,
    runtime_plan,
)
from tflite_gate.policy.resolve import resolve_model
from tflite_gate.policy.schema import GenerateSpec, RuntimeEntry

POLICY = "tflite-gate.yml"

PLAN = """\
    version: 1
    fail_on: warning
    defaults:
      data: {calibration: calib.npz}
      versions: {tensorflow: ">=2.16"}
      variants:
        - {name: float}
        - {name: int8, quantization: int8}
    models:
      - name: keras
        source: models/a.keras
        data: {evaluation: eval/}
        versions: {ai-edge-litert: ">=1.2"}
      - name: lite
        source: models/b.tflite
        reference: pkg.mod:build
        data: {calibration: pkg.data:samples, evaluation: {generate: {seed: 3, count: 4}}}
        variants: [{name: as-is}]
        runtimes:
          - ai-edge-litert
          - requirement: wheels/tflite_runtime.whl
            with: ["numpy<2", wheels/extra.whl]
            custom_op_registerers: [RegisterMyOps]
            custom_op_libraries: [ops/libmyops.so]
    """


def plan(workspace: Path, text: str = PLAN) -> RunPlan:
    (workspace / POLICY).write_text(textwrap.dedent(text), encoding="utf-8")
    return plan_run(load_policy(workspace / POLICY, workspace), workspace)


def at(line: int, column: int) -> Location:
    return Location(path=POLICY, line=line, column=column)


def test_every_model_is_planned_in_policy_order_from_its_resolved_settings(
    tmp_path: Path,
) -> None:
    run = plan(tmp_path)
    assert [model.name for model in run.models] == ["keras", "lite"]
    assert (run.fail_on, run.display_path) == ("warning", POLICY)
    assert [model.config for model in run.models] == [
        resolve_model(run.policy, index) for index in (0, 1)
    ]


def test_sources_are_files_in_the_workspace_or_factories(tmp_path: Path) -> None:
    keras, lite = plan(tmp_path).models
    assert keras.source == SourcePlan(
        written="models/a.keras", location=at(11, 13), path=tmp_path.resolve() / "models/a.keras"
    )
    assert keras.reference is None
    assert lite.reference == SourcePlan(written="pkg.mod:build", location=at(16, 16), path=None)


def test_data_sources_are_typed_by_kind_where_they_are_written(tmp_path: Path) -> None:
    keras, lite = plan(tmp_path).models
    workspace = tmp_path.resolve()
    assert keras.data.calibration == DataSourcePlan(
        kind="npz", location=at(4, 23), path=workspace / "calib.npz"
    )
    assert keras.data.evaluation == DataSourcePlan(
        kind="dir", location=at(12, 24), path=workspace / "eval"
    )
    assert lite.data.calibration == DataSourcePlan(
        kind="generator", location=at(17, 25), factory="pkg.data:samples"
    )
    assert lite.data.evaluation == DataSourcePlan(
        kind="generate", location=at(17, 55), generate=GenerateSpec(seed=3, count=4)
    )
    assert keras.data.samples.value == 16


def test_variants_point_at_the_entry_they_come_from(tmp_path: Path) -> None:
    keras, lite = plan(tmp_path).models
    assert [(v.spec.name, v.location) for v in keras.variants] == [
        ("float", at(7, 7)),  # the defaults' list
        ("int8", at(8, 7)),
    ]
    assert [(v.spec.name, v.location) for v in lite.variants] == [("as-is", at(18, 16))]
    default = plan(tmp_path, "version: 1\nmodels: [{name: m, source: m.keras}]\n").models[0]
    assert [(v.spec.name, v.location) for v in default.variants] == [("float", at(2, 10))]


def test_runtimes_are_the_gates_own_or_requirements_with_workspace_paths(tmp_path: Path) -> None:
    keras, lite = plan(tmp_path).models
    workspace = tmp_path.resolve()
    assert keras.runtimes == (RuntimePlan(name="ai-edge-litert", requirement=None, location=None),)
    own, installed = lite.runtimes
    assert own == RuntimePlan(name="ai-edge-litert", requirement=None, location=at(20, 9))
    assert installed == RuntimePlan(
        name="wheels/tflite_runtime.whl + RegisterMyOps",
        requirement=str(workspace / "wheels/tflite_runtime.whl"),
        location=at(21, 9),
        extra=("numpy<2", str(workspace / "wheels/extra.whl")),
        custom_op_registerers=("RegisterMyOps",),
        custom_op_libraries=(str(workspace / "ops/libmyops.so"),),
    )


def test_an_ai_edge_litert_entry_is_the_gates_own_unless_it_installs_more(
    tmp_path: Path,
) -> None:
    with_module = RuntimeEntry(requirement="ai-edge-litert", module="ai_edge_litert.interpreter")
    assert runtime_plan(with_module, tmp_path).requirement is None
    with_extra = RuntimeEntry.model_validate({"requirement": "ai-edge-litert", "with": ["numpy"]})
    assert runtime_plan(with_extra, tmp_path).requirement == "ai-edge-litert"
    assert runtime_plan(" tflite-runtime==2.14.0 ", tmp_path) == RuntimePlan(
        name="tflite-runtime==2.14.0", requirement="tflite-runtime==2.14.0", location=None
    )


def test_version_keys_a_model_writes_itself_are_told_from_the_defaults(tmp_path: Path) -> None:
    keras, lite = plan(tmp_path).models
    assert keras.own_versions == frozenset({"ai-edge-litert"})
    assert lite.own_versions == frozenset()
    assert set(keras.config.version_specs) == {"tensorflow", "ai-edge-litert"}


def test_the_files_a_run_reads_are_every_path_the_policy_names(tmp_path: Path) -> None:
    workspace = tmp_path.resolve()
    assert plan(tmp_path).reads == (
        workspace / "calib.npz",  # the defaults' data first
        workspace / "models/a.keras",
        workspace / "eval",
        workspace / "models/b.tflite",  # factories (reference, generator) read no file
        workspace / "ops/libmyops.so",
    )

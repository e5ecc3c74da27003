"""`defaults` applied to each model key by key, every setting located where it is written.

Lines and columns are counted by hand from the YAML in each test (1-based).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tflite_gate.findings import Location
from tflite_gate.policy.load import LoadedPolicy, load_policy
from tflite_gate.policy.resolve import (
    AS_IS_VARIANT,
    DEFAULT_LATENCY_RUNS,
    DEFAULT_NUM_THREADS,
    DEFAULT_SAMPLES,
    Setting,
    picked_variants,
    resolve_model,
)
from tflite_gate.policy.schema import DEFAULT_RUNTIME, RuntimeEntry

POLICY = "tflite-gate.yml"


def load(workspace: Path, text: str) -> LoadedPolicy:
    (workspace / POLICY).write_text(textwrap.dedent(text), encoding="utf-8")
    return load_policy(workspace / POLICY, workspace)


def at(line: int, column: int) -> Location:
    return Location(path=POLICY, line=line, column=column)


RUNTIMES = """\
    version: 1
    defaults:
      runtimes: [ai-edge-litert, "tflite-runtime==2.14.0"]
      limits: {num_threads: 4}
    models:
      - name: inherits
        source: a.keras
      - name: own
        source: b.keras
        runtimes:
          - {requirement: ai-edge-litert, custom_op_registerers: [RegisterMyOps]}
    """


def test_a_model_without_settings_gets_the_built_in_defaults_unlocated(tmp_path: Path) -> None:
    config = resolve_model(load(tmp_path, "version: 1\nmodels: [{name: m, source: m.keras}]\n"), 0)
    assert config.runtimes == Setting([DEFAULT_RUNTIME], None)
    assert config.runtime_locations == {}
    assert config.samples == Setting(DEFAULT_SAMPLES, None)
    assert config.num_threads == DEFAULT_NUM_THREADS
    assert config.latency_runs == Setting(None, None)  # no budget: latency is not measured
    assert config.select_tf_ops == Setting(False, None)
    assert (config.allow_new_ops, config.allow_min_runtime_increase) == (
        Setting(True, None),
        Setting(True, None),
    )
    assert [variant.name for variant in config.variants] == ["float"]
    assert config.classification == Setting(None, None)
    assert config.reference == Setting(None, None)


def test_runtimes_are_inherited_or_replaced_as_a_whole_each_entry_located(
    tmp_path: Path,
) -> None:
    loaded = load(tmp_path, RUNTIMES)
    inherits, own = resolve_model(loaded, 0), resolve_model(loaded, 1)
    assert inherits.runtimes.value == ["ai-edge-litert", "tflite-runtime==2.14.0"]
    assert inherits.runtime_locations == {
        "ai-edge-litert": at(3, 14),
        "tflite-runtime==2.14.0": at(3, 30),
    }
    [entry] = own.runtimes.value
    assert isinstance(entry, RuntimeEntry)
    assert own.runtimes.location == at(11, 7)  # the list
    assert own.runtime_locations == {"ai-edge-litert + RegisterMyOps": at(11, 9)}  # its entry


def test_a_latency_budget_times_the_default_runs_on_the_model_threads(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        defaults:
          limits: {num_threads: 3}
        models:
          - name: m
            source: m.keras
            budgets: {max_latency_ms: 5}
        """,
    )
    config = resolve_model(loaded, 0)
    assert config.max_latency_ms == Setting(5, at(7, 31))
    assert config.latency_runs == Setting(DEFAULT_LATENCY_RUNS, None)
    assert config.latency_threads == Setting(3, None)  # the model's limits.num_threads
    assert config.latency_severity == Setting("warning", None)


def test_per_output_thresholds_go_on_top_of_the_variants_own(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        defaults:
          max_divergence: {max_abs: 0.5, per_output: {probs: {max_abs: 0.1}}}
        models:
          - name: m
            source: m.keras
            variants:
              - name: int8
                quantization: int8
                max_divergence: {min_cosine: 0.99}
        """,
    )
    plan = resolve_model(loaded, 0).thresholds["int8"]
    assert plan.for_output("logits") == {
        "max_abs": Setting(0.5, at(3, 29)),
        "min_cosine": Setting(0.99, at(10, 38)),
    }
    assert plan.for_output("probs")["max_abs"] == Setting(0.1, at(3, 64))
    assert len(plan.all_settings()) == 3
    assert set(resolve_model(loaded, 0).thresholds) == {"int8", AS_IS_VARIANT}


def test_written_keys_are_located_two_levels_deep(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        models:
          - name: m
            source: m.keras
            data: {samples: 4}
            variants:
              - {name: f16, quantization: float16}
        """,
    )
    locations = resolve_model(loaded, 0).key_locations
    assert locations["data.samples"] == at(5, 21)
    assert locations["variants[0]"] == at(7, 9)
    assert locations["variants[0].quantization"] == at(7, 35)
    assert "ops" not in locations


def test_the_variants_list_is_taken_from_where_it_is_written(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        defaults:
          variants: [{name: f16, quantization: float16}]
        models:
          - {name: a, source: a.keras}
          - {name: b, source: b.keras, variants: [{name: float}]}
        """,
    )
    inherited, own = picked_variants(loaded, 0), picked_variants(loaded, 1)
    assert ([v.name for v in inherited[0]], inherited[1]) == (["f16"], ("defaults", "variants"))
    assert ([v.name for v in own[0]], own[1]) == (["float"], ("models", 1, "variants"))


def test_classification_and_reference_are_a_models_own_keys(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        """\
        version: 1
        models:
          - name: m
            source: m.tflite
            reference: m.keras
            classification: [probs]
        """,
    )
    config = resolve_model(loaded, 0)
    assert config.reference == Setting("m.keras", at(5, 16))
    assert config.classification == Setting(["probs"], at(6, 21))

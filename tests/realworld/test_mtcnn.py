"""MTCNN's PNet/RNet/ONet: subclassed Keras models built in a factory, shipped weights.

The nets come from the `mtcnn` wheel (`mtcnn/network/*.py`, `mtcnn/assets/weights/*.lz4`)
and `mtcnn_factory.py` builds them as `mtcnn.stages` does. A built subclassed Keras 3
model has no `.inputs`; the gate must convert it from its build shape (RNet 24x24,
ONet 48x48, a PNet built for 12x12) or, when the build shape is dynamic (PNet's
(None, None, None, 3)), from `input_shapes`, and match TensorFlow closely.

ONet's outputs are a bounding box (4 values) and landmarks (10 values), both
regressions, next to a 2-class softmax: a `min_top1` set for every model in `defaults`
must not judge the regressions as if they were 10 classes, and the report says once
that it was not applied to them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.harness import GateRun, run_gate

from .conftest import Extract, copy_helper, policy_line
from .packages import MTCNN

pytestmark = [pytest.mark.realworld, pytest.mark.slow]

MEMBERS = [
    "mtcnn/network/__init__.py",
    "mtcnn/network/pnet.py",
    "mtcnn/network/rnet.py",
    "mtcnn/network/onet.py",
    "mtcnn/assets/weights/pnet.lz4",
    "mtcnn/assets/weights/rnet.lz4",
    "mtcnn/assets/weights/onet.lz4",
]

# `inputs` is the argument name of the nets' `call(self, inputs, ...)`.
POLICY = textwrap.dedent(
    """\
    version: 1
    defaults:
      max_divergence: {max_abs: 1.0e-4}
      data: {samples: 8}
    models:
      - name: pnet-12
        source: mtcnn_factory:pnet_12
      - name: rnet
        source: mtcnn_factory:rnet
      - name: onet
        source: mtcnn_factory:onet
      - name: pnet
        source: mtcnn_factory:pnet
        input_shapes: {inputs: [1, 24, 24, 3]}
    """
)
# model -> (input height/width, number of outputs)
NETS = {"pnet-12": (12, 2), "rnet": (24, 2), "onet": (48, 3), "pnet": (24, 2)}


TOP1_POLICY = textwrap.dedent(
    """\
    version: 1
    defaults:
      max_divergence: {min_top1: 0.98}
    models:
      - name: onet-outputs
        source: mtcnn_factory:onet_functional
        variants:
          - {name: dynamic, quantization: dynamic}
    """
)


def _workspace(factory: pytest.TempPathFactory, extract: Extract, name: str, policy: str) -> Path:
    ws: Path = factory.mktemp(name)
    extract(MTCNN, {member: member for member in MEMBERS}, ws)
    (ws / "mtcnn" / "__init__.py").write_text("")  # the nets only, not the detector
    copy_helper("mtcnn_factory.py", ws)
    (ws / "tflite-gate.yml").write_text(policy)
    return ws


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    return run_gate(_workspace(tmp_path_factory, wheel_members, "mtcnn", POLICY))


UNSHAPED_POLICY = textwrap.dedent(
    """\
    version: 1
    models:
      - name: pnet-any-size
        source: mtcnn_factory:pnet
    """
)


@pytest.fixture(scope="module")
def unshaped_run(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    return run_gate(_workspace(tmp_path_factory, wheel_members, "mtcnn-unshaped", UNSHAPED_POLICY))


@pytest.fixture(scope="module")
def top1_run(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    return run_gate(_workspace(tmp_path_factory, wheel_members, "mtcnn-top1", TOP1_POLICY))


def test_subclassed_nets_pass_the_gate(run: GateRun) -> None:
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.report is not None and run.report["verdict"] == "pass"
    assert run.findings() == []


@pytest.mark.parametrize("model", sorted(NETS))
def test_subclassed_net_converts_from_its_shape(run: GateRun, model: str) -> None:
    assert run.findings(model=model) == []
    report = run.model(model)
    assert report["source_kind"] == "factory"
    assert report["loaded"]
    size, outputs = NETS[model]
    [spec] = report["inputs"]
    assert spec["shape"][1:] == [size, size, 3]
    [variant] = report["variants"]
    assert variant["status"] == "converted"
    [runtime_run] = variant["runs"]
    assert runtime_run["status"] == "passed"
    assert len(runtime_run["metrics"]) == outputs
    assert all(m["max_abs"] < 1e-4 for m in runtime_run["metrics"])


def test_dynamic_build_shape_without_input_shapes_is_policy_invalid(unshaped_run: GateRun) -> None:
    """PNet is built for (None, None, None, 3): the user must declare a size, and the
    suggestion must not be a 1x1 image that converts a useless model."""
    assert unshaped_run.returncode == 1, unshaped_run.stdout + unshaped_run.stderr
    findings = unshaped_run.findings(model="pnet-any-size")
    assert [f["rule"] for f in findings] == ["policy-invalid"], findings
    [finding] = findings
    assert finding["location"]["path"] == "tflite-gate.yml"
    assert finding["location"]["line"] == policy_line(UNSHAPED_POLICY, "pnet-any-size")
    assert "input_shapes" in finding["message"]
    assert "'inputs'" in finding["message"]
    assert "[1, 1, 1, 3]" not in finding["message"]


def test_model_wide_min_top1_does_not_fail_regression_outputs(top1_run: GateRun) -> None:
    assert top1_run.returncode == 0, top1_run.stdout + top1_run.stderr
    assert top1_run.report is not None and top1_run.report["verdict"] == "pass"
    assert top1_run.findings(rule="divergence") == []
    [variant] = top1_run.model("onet-outputs")["variants"]
    [runtime_run] = variant["runs"]
    assert runtime_run["status"] == "passed"
    outputs = {m["output"] for m in runtime_run["metrics"]}
    assert outputs == {"bbox", "landmarks", "face"}


def test_report_says_where_min_top1_was_not_applied(top1_run: GateRun) -> None:
    said = [f for f in top1_run.findings(model="onet-outputs") if "min_top1" in f["message"]]
    assert said, top1_run.report
    assert {f["severity"] for f in said} == {"notice"}
    for output in ("landmarks", "bbox"):
        mentions = [f for f in said if output in f["message"]]
        assert len(mentions) == 1, said  # once, not once per variant or sample
    assert {f["location"]["path"] for f in said} == {"tflite-gate.yml"}
    assert {f["location"]["line"] for f in said} == {3}  # defaults.max_divergence

"""MTCNN's PNet/RNet/ONet: subclassed Keras models built in a factory, shipped weights.

The nets come from the `mtcnn` wheel (`mtcnn/network/*.py`, `mtcnn/assets/weights/*.lz4`)
and `mtcnn_factory.py` builds them as `mtcnn.stages` does. A built subclassed Keras 3
model has no `.inputs`; the gate must convert it from its build shape (RNet 24x24,
ONet 48x48, a PNet built for 12x12) or, when the build shape is dynamic (PNet's
(None, None, None, 3)), from `input_shapes`, and match TensorFlow closely.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import GateRun, run_gate

from .conftest import Extract, copy_helper
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


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, wheel_members: Extract) -> GateRun:
    ws: Path = tmp_path_factory.mktemp("mtcnn")
    wheel_members(MTCNN, {member: member for member in MEMBERS}, ws)
    (ws / "mtcnn" / "__init__.py").write_text("")  # the nets only, not the detector
    copy_helper("mtcnn_factory.py", ws)
    (ws / "tflite-gate.yml").write_text(POLICY)
    return run_gate(ws)


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

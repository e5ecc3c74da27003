"""Samples from a workspace generator, read in a worker under the model's limits.

Only a generator runs the pull request's own code, so only a generator needs a
worker; the worker tests start one process each (slow).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tflite_gate.model.data import DataError, representative_samples, stack
from tflite_gate.model.data_worker import needs_worker, samples_in_worker
from tflite_gate.run.protocol import SourceSpec, TensorSpec

INPUTS = [TensorSpec(name="x", shape=[1, 3], dtype="float32")]

FEEDS = """\
import numpy as np


def counting():
    for i in range(10):
        yield {"x": np.full((3,), float(i), np.float32)}


def lost():
    yield {"x": np.zeros((3,), np.float32)}
    raise RuntimeError("camera feed lost")


def endless():
    while True:
        pass
    yield
"""


def test_only_a_generator_needs_a_worker() -> None:
    assert needs_worker(SourceSpec(kind="generate"), None, SourceSpec(kind="generator"))
    assert not needs_worker(SourceSpec(kind="npz", path="x.npz"), SourceSpec(kind="generate"))
    assert not needs_worker(None, None)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("feeds")
    (root / "worker_feeds.py").write_text(textwrap.dedent(FEEDS))
    return root


def _samples(
    workspace: Path, factory: str, scratch: Path, timeout_s: float = 60
) -> dict[str, np.ndarray]:
    return samples_in_worker(
        "evaluation",
        None,
        SourceSpec(kind="generator", factory=factory),
        INPUTS,
        samples=4,
        workspace=workspace,
        scratch=scratch,
        timeout_s=timeout_s,
        memory_mb=None,
    )


@pytest.mark.slow  # a data worker process
def test_the_worker_hands_back_what_reading_here_would_give(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # reading here imports from the workspace
    stacked = _samples(workspace, "worker_feeds:counting", tmp_path)
    here = representative_samples(
        "evaluation",
        None,
        SourceSpec(kind="generator", factory="worker_feeds:counting"),
        INPUTS,
        samples=4,
        workspace=workspace,
    )
    assert list(stacked) == ["x"] and stacked["x"].shape == (4, 1, 3)
    np.testing.assert_array_equal(stacked["x"], stack(here)["x"])


@pytest.mark.slow  # a data worker process
def test_a_generator_that_raises_comes_back_at_its_line(workspace: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as raised:
        _samples(workspace, "worker_feeds:lost", tmp_path)
    assert (
        raised.value.message
        == "the generator worker_feeds:lost raised RuntimeError: camera feed lost"
    )
    assert raised.value.location == ("worker_feeds.py", 11)


@pytest.mark.slow  # a data worker process, stopped at its time limit
def test_a_generator_that_never_ends_is_stopped_with_advice(
    workspace: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError) as raised:
        _samples(workspace, "worker_feeds:endless", tmp_path, timeout_s=3)
    assert raised.value.message.startswith("the data generator worker_feeds:endless ")
    assert raised.value.message.endswith("or raise `limits.timeout_s`")

"""The conversion cache on real files: keys, entries, corruption, eviction (no TensorFlow).

The end-to-end behaviour (a real gate run reusing a real conversion) is in
`test_cache_e2e.py`.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tflite_gate.convert.cache import (
    ConversionCache,
    conversion_key,
    key_material,
    workspace_model_files,
)
from tflite_gate.convert.scratch import DEPENDENCIES_FILE
from tflite_gate.run.protocol import ConversionRequest, SourceSpec, VariantRequest


def _request(workspace: Path, scratch: Path, **changes: object) -> ConversionRequest:
    request = ConversionRequest(
        workspace=str(workspace),
        scratch=str(scratch),
        source_kind="keras",
        source="model.keras",
        source_path=str(workspace / "model.keras"),
        input_shapes={},
        signature=None,
        safe_mode=True,
        select_tf_ops=False,
        allow_custom_ops=False,
        variants=[VariantRequest(name="float", quantization="none")],
        calibration=None,
        evaluation=SourceSpec(kind="npz", path=str(workspace / "eval.npz")),
    )
    return request.model_copy(update=changes)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "model.keras").write_bytes(b"model bytes " * 100)
    (root / "eval.npz").write_bytes(b"data bytes " * 100)
    (root / "nets").mkdir()
    (root / "nets" / "tiny.py").write_text("def build():\n    return None  # seed 1\n")
    return root


def _worker_output(scratch: Path, dependencies: list[str], tflite: bytes = b"TFL3" * 64) -> None:
    """What a finished conversion worker leaves in its scratch (plus files it does not keep)."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "load.json").write_text(json.dumps({"ok": True}))
    (scratch / "variant-float.json").write_text(json.dumps({"name": "float", "ok": True}))
    (scratch / "variant-float.tflite").write_bytes(tflite)
    (scratch / "variant-float.log").write_text("log lines are not kept")
    (scratch / "saved_model").mkdir(exist_ok=True)
    deps = {"files": dependencies, "packages": {"numpy": _numpy_version()}}
    (scratch / DEPENDENCIES_FILE).write_text(json.dumps(deps))


def _numpy_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("numpy")


def _stored(cache: ConversionCache, workspace: Path, tmp_path: Path, **changes: object) -> str:
    request = _request(workspace, tmp_path / "scratch-store", **changes)
    _worker_output(Path(request.scratch), ["nets/tiny.py"])
    key = conversion_key(request)
    assert cache.store(key, request, 12.5) is None
    return key


def _restore(cache: ConversionCache, key: str, workspace: Path, scratch: Path) -> object:
    scratch.mkdir(parents=True, exist_ok=True)
    return cache.restore(key, _request(workspace, scratch))


# --------------------------------------------------------------------------- keys


def test_key_changes_with_each_component(workspace: Path, tmp_path: Path) -> None:
    """One byte of the model or the data, one option, an environment variable: another key."""
    base = conversion_key(_request(workspace, tmp_path / "a"))
    assert conversion_key(_request(workspace, tmp_path / "elsewhere")) == base  # scratch: no
    keys = {}
    model = workspace / "model.keras"
    original = model.read_bytes()
    model.write_bytes(original[:-1] + b"X")
    keys["model byte"] = conversion_key(_request(workspace, tmp_path / "a"))
    model.write_bytes(original)
    data = workspace / "eval.npz"
    data.write_bytes(data.read_bytes()[:-1] + b"X")
    keys["data byte"] = conversion_key(_request(workspace, tmp_path / "a"))
    keys["option"] = conversion_key(_request(workspace, tmp_path / "a", samples=17))
    keys["variant"] = conversion_key(
        _request(
            workspace,
            tmp_path / "a",
            variants=[VariantRequest(name="float", quantization="float16")],
        )
    )
    for variable in ("TF_ENABLE_ONEDNN_OPTS", "PYTHONPATH", "KERAS_BACKEND"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(variable, "changed")
            keys[variable] = conversion_key(_request(workspace, tmp_path / "a"))
    assert base not in keys.values()
    assert len(set(keys.values())) == len(keys), keys


def test_a_factory_key_covers_the_workspace_weight_files(workspace: Path, tmp_path: Path) -> None:
    """A factory may read weights through h5py, which no audit hook sees: they are keyed."""
    (workspace / "weights").mkdir()
    weights = workspace / "weights" / "net.weights.h5"
    weights.write_bytes(b"w" * 64)
    (workspace / ".venv").mkdir()
    (workspace / ".venv" / "ignored.h5").write_bytes(b"not the repository's")
    request = _request(
        workspace, tmp_path / "a", source_kind="factory", source="nets.tiny:build", source_path=None
    )
    material = key_material(request)
    assert set(material["content"]["model files"]) == {
        "model.keras",
        "eval.npz",
        "weights/net.weights.h5",
    }
    before = conversion_key(request)
    weights.write_bytes(b"w" * 63 + b"v")
    assert conversion_key(request) != before
    plain = _request(workspace, tmp_path / "a")  # a model file: its own bytes are the key
    assert "model files" not in key_material(plain)["content"]


def test_model_files_skip_virtual_environments_and_the_gates_own(tmp_path: Path) -> None:
    (tmp_path / "env" / "lib").mkdir(parents=True)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "env" / "lib" / "big.h5").write_bytes(b"x")
    (tmp_path / "model.h5").write_bytes(b"y")
    (tmp_path / "my-cache" / "conversions").mkdir(parents=True)
    (tmp_path / "my-cache" / "conversions" / "variant-float.tflite").write_bytes(b"z")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "float.tflite").write_bytes(b"z")
    found = workspace_model_files(tmp_path, [tmp_path / "my-cache", tmp_path / "out"])
    assert list(found) == ["model.h5"]  # a cache in the workspace would change every run


# --------------------------------------------------------------------------- entries


def test_a_stored_entry_is_restored_byte_for_byte(workspace: Path, tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path / "cache")
    key = _stored(cache, workspace, tmp_path)
    scratch = tmp_path / "scratch-restore"
    hit = _restore(cache, key, workspace, scratch)
    assert hit is not None and hit.duration_s == 12.5  # type: ignore[attr-defined]
    restored = sorted(p.name for p in scratch.iterdir())
    assert restored == [
        DEPENDENCIES_FILE,
        "load.json",
        "variant-float.json",
        "variant-float.tflite",
    ]
    assert (scratch / "variant-float.tflite").read_bytes() == b"TFL3" * 64


def test_a_changed_dependency_is_a_miss(workspace: Path, tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path / "cache")
    key = _stored(cache, workspace, tmp_path)
    (workspace / "nets" / "tiny.py").write_text("def build():\n    return None  # seed 2\n")
    assert _restore(cache, key, workspace, tmp_path / "s1") is None
    (workspace / "nets" / "tiny.py").write_text("def build():\n    return None  # seed 1\n")
    assert _restore(cache, key, workspace, tmp_path / "s2") is not None


def test_a_changed_package_version_is_a_miss(workspace: Path, tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path / "cache")
    key = _stored(cache, workspace, tmp_path)
    entry = next((cache.directory / key).iterdir())
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["dependencies"]["package:numpy"] = "0.0.1"
    (entry / "manifest.json").write_text(json.dumps(manifest))
    assert _restore(cache, key, workspace, tmp_path / "s") is None


@pytest.mark.parametrize(
    "damage",
    ["truncate the model", "edit the model", "delete the model", "garbage manifest", "no manifest"],
)
def test_a_damaged_entry_is_a_miss_and_leaves_nothing(
    workspace: Path, tmp_path: Path, damage: str
) -> None:
    cache = ConversionCache(tmp_path / "cache")
    key = _stored(cache, workspace, tmp_path)
    entry = next((cache.directory / key).iterdir())
    model = entry / "variant-float.tflite"
    if damage == "truncate the model":
        model.write_bytes(model.read_bytes()[:100])
    elif damage == "edit the model":
        model.write_bytes(b"X" + model.read_bytes()[1:])
    elif damage == "delete the model":
        model.unlink()
    elif damage == "garbage manifest":
        (entry / "manifest.json").write_text('{"format": 1, "files": ')
    else:
        (entry / "manifest.json").unlink()
    scratch = tmp_path / "scratch"
    assert _restore(cache, key, workspace, scratch) is None
    assert list(scratch.iterdir()) == []  # no stray result a worker would take for its own
    assert _stored(cache, workspace, tmp_path) == key  # the next run keeps a good one again
    assert _restore(cache, key, workspace, tmp_path / "again") is not None


def test_a_manifest_cannot_name_files_outside_its_entry(workspace: Path, tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path / "cache")
    key = _stored(cache, workspace, tmp_path)
    entry = next((cache.directory / key).iterdir())
    manifest = json.loads((entry / "manifest.json").read_text())
    manifest["files"]["../../outside.tflite"] = manifest["files"]["variant-float.tflite"]
    (entry / "manifest.json").write_text(json.dumps(manifest))
    assert _restore(cache, key, workspace, tmp_path / "s") is None
    assert not entry.exists()
    _stored(cache, workspace, tmp_path)
    manifest["files"].pop("../../outside.tflite")
    manifest["dependencies"]["file:/etc/hostname"] = "x"
    (entry / "manifest.json").write_text(json.dumps(manifest))
    assert _restore(cache, key, workspace, tmp_path / "s2") is None
    assert not entry.exists()


def test_least_recently_used_entries_go_first(workspace: Path, tmp_path: Path) -> None:
    measure = ConversionCache(tmp_path / "measure")
    entry = next((measure.directory / _stored(measure, workspace, tmp_path)).iterdir())
    one_entry = sum(p.stat().st_size for p in entry.iterdir())
    cache = ConversionCache(tmp_path / "cache", max_bytes=int(2.5 * one_entry))
    keys = [_stored(cache, workspace, tmp_path, samples=n) for n in (1, 2)]
    for age, key in enumerate(keys):  # the first is older
        for entry in (cache.directory / key).iterdir():
            os.utime(entry / "manifest.json", (1_000_000 + age, 1_000_000 + age))
    assert _restore(cache, keys[0], workspace, tmp_path / "use") is not None  # now the newest
    keys.append(_stored(cache, workspace, tmp_path, samples=3))
    kept = {key for key in keys if (cache.directory / key).exists()}
    assert kept == {keys[0], keys[2]}


def test_an_unwritable_cache_says_why_and_costs_nothing_else(
    workspace: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "cache-file"
    blocked.write_text("a file where the cache directory should be")
    cache = ConversionCache(blocked / "conversions")
    request = _request(workspace, tmp_path / "scratch")
    _worker_output(Path(request.scratch), [])
    reason = cache.store(conversion_key(request), request, 1.0)
    assert reason is not None and "Not a directory" in reason
    assert cache.restore(conversion_key(request), request) is None


def test_two_gates_storing_the_same_entry_both_succeed(workspace: Path, tmp_path: Path) -> None:
    cache = ConversionCache(tmp_path / "cache")
    requests = [_request(workspace, tmp_path / f"scratch-{i}") for i in range(8)]
    for request in requests:
        _worker_output(Path(request.scratch), ["nets/tiny.py"])
    key = conversion_key(requests[0])
    reasons: list[str | None] = []
    threads = [
        threading.Thread(target=lambda r=r: reasons.append(cache.store(key, r, 1.0)))
        for r in requests
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reasons == [None] * len(requests)
    assert len(list((cache.directory / key).iterdir())) == 1
    assert [p.name for p in cache.directory.iterdir() if p.name.startswith(".")] == []
    assert _restore(cache, key, workspace, tmp_path / "after") is not None


@pytest.mark.slow
def test_a_full_cache_disk_leaves_no_empty_entry_folder(
    workspace: Path, tmp_path: Path, small_disk: Path
) -> None:
    cache = ConversionCache(small_disk / "conversions")
    request = _request(workspace, tmp_path / "scratch")
    _worker_output(Path(request.scratch), [], tflite=b"TFL3" * 4096)  # 16 KiB: no room
    key = conversion_key(request)
    reason = cache.store(key, request, 1.0)
    assert reason is not None and "No space left on device" in reason
    assert [p.name for p in (small_disk / "conversions").iterdir()] == []

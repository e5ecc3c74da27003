"""Workspace files the gate process opens itself: regular files only, refused by type
before any open (a FIFO would block forever, a device never end), and never larger
than their kind of file can be. Every special file here is a real one."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tflite_builder import build_model, builtin
from tflite_gate.support.workspace_files import (
    MAX_TFLITE_BYTES,
    SpecialFileError,
    read_regular_bytes,
    read_tflite,
    refuse_special_files,
    require_regular_file,
    unreadable_message,
)


@pytest.fixture
def socket_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "gate.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        yield path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_a_regular_file_and_a_link_to_one_pass(tmp_path: Path) -> None:
    target = tmp_path / "policy.yml"
    target.write_text("models: []\n")
    (tmp_path / "link.yml").symlink_to(target)
    require_regular_file(target)
    require_regular_file(tmp_path / "link.yml")


def test_a_missing_file_keeps_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        require_regular_file(tmp_path / "missing.yml")


def test_special_files_are_refused_by_their_kind_with_the_fix(
    tmp_path: Path, socket_file: Path
) -> None:
    kinds = {
        _fifo(tmp_path / "policy.yml"): "a named pipe (FIFO)",
        socket_file: "a socket",
        Path("/dev/null"): "a character device",
        tmp_path: "a directory",
    }
    for path, kind in kinds.items():
        with pytest.raises(SpecialFileError) as caught:
            require_regular_file(path)
        assert str(caught.value) == (
            f"{path.name} is {kind}; replace it with a regular file (the gate reads only "
            "regular files, because reading a pipe or a device may never end)"
        )
        assert isinstance(caught.value, OSError)


def test_a_saved_model_directory_is_refused_for_a_special_file_inside(tmp_path: Path) -> None:
    saved = tmp_path / "saved"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"pb")
    (saved / "dangling").symlink_to(saved / "gone")  # the loader says what is missing
    refuse_special_files(saved)
    _fifo(saved / "variables" / "variables.index")
    with pytest.raises(SpecialFileError, match=r"^saved/variables/variables.index is a named pipe"):
        refuse_special_files(saved)


def test_a_single_file_source_is_checked_as_a_file(tmp_path: Path) -> None:
    with pytest.raises(SpecialFileError, match=r"^model.keras is a named pipe"):
        refuse_special_files(_fifo(tmp_path / "model.keras"))


def test_a_regular_file_is_read_whole_and_a_fifo_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "body.md"
    path.write_bytes(b"12345")
    assert read_regular_bytes(path, limit=5, limit_reason="r") == b"12345"
    with pytest.raises(SpecialFileError, match="named pipe"):
        read_regular_bytes(_fifo(tmp_path / "pipe.md"), limit=5, limit_reason="r")


def test_a_file_larger_than_its_kind_can_be_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "body.md"
    path.write_bytes(b"123456")
    with pytest.raises(SpecialFileError) as caught:
        read_regular_bytes(path, limit=5, limit_reason="the most a comment can hold")
    assert str(caught.value) == (
        "check that body.md is the file you meant: it has 6 bytes, more than 5 "
        "(the most a comment can hold)"
    )


def test_a_file_that_grows_while_it_is_read_is_refused() -> None:
    """A /proc file says it has 0 bytes, then reads as more: a file that grew."""
    with pytest.raises(SpecialFileError, match=r"^status grew past 10 bytes while being read$"):
        read_regular_bytes(Path("/proc/self/status"), limit=10, limit_reason="r")


def test_a_tflite_is_read_up_to_what_a_flatbuffer_can_address(tmp_path: Path) -> None:
    blob = build_model([builtin("RELU")])
    (tmp_path / "model.tflite").write_bytes(blob)
    assert read_tflite(tmp_path / "model.tflite") == blob
    with open(tmp_path / "huge.tflite", "wb") as sparse:  # no disk used: a hole
        sparse.truncate(MAX_TFLITE_BYTES + 1)
    with pytest.raises(SpecialFileError) as caught:
        read_tflite(tmp_path / "huge.tflite")
    assert str(caught.value).endswith(
        f"has {MAX_TFLITE_BYTES + 1} bytes, more than {MAX_TFLITE_BYTES} "
        "(2 GiB, the most a .tflite flatbuffer can address)"
    )


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (SpecialFileError("pipe is a named pipe (FIFO); replace it"), "pipe is a named pipe (FIFO); replace it"),
        (PermissionError(13, "Permission denied"), "make it readable for the user running the gate (Permission denied)"),
        (OSError(5, "Input/output error"), "check the file and the disk it is on: it could not be read (Input/output error)"),
        (IsADirectoryError(), "check the file and the disk it is on: it could not be read (IsADirectoryError)"),
    ],
)  # fmt: skip
def test_an_unreadable_file_is_explained_leading_with_the_fix(error: OSError, said: str) -> None:
    assert unreadable_message(error) == said

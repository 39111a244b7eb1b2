"""hostPath type pre-checks: creation, kinds, and upstream's FailedMount texts."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from kubi.node import volumes
from kubi.node.volumes import VolumeContext
from kubi.node.volumes.base import MountError

POD = {"metadata": {"name": "hostpath-demo", "namespace": "demo", "uid": "u"}, "spec": {}}


async def setup(path: str, path_type: str | None = None) -> str:
    source: dict[str, str] = {"path": path}
    if path_type is not None:
        source["type"] = path_type
    return await volumes.setup(POD, {"name": "hostpath-volume", "hostPath": source}, "/nonexistent",
                               VolumeContext())


async def failure(path: str, path_type: str) -> str:
    with pytest.raises(MountError) as info:
        await setup(path, path_type)
    return info.value.message


async def test_directory_on_missing_path_fails_with_upstream_event(tmp_path: Path) -> None:
    missing = tmp_path / "data"
    with pytest.raises(MountError) as info:
        await setup(str(missing), "Directory")
    assert info.value.message == f"hostPath type check failed: {missing} is not a directory"
    assert info.value.event_message == (
        'MountVolume.SetUp failed for volume "hostpath-volume" : '
        f"hostPath type check failed: {missing} is not a directory")
    assert not missing.exists()


async def test_directory_or_create(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    old = os.umask(0o077)
    try:
        assert await setup(str(target), "DirectoryOrCreate") == str(target)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    (target / "kept").write_text("data")
    assert await setup(str(target), "DirectoryOrCreate") == str(target)
    assert (target / "kept").read_text() == "data"
    (tmp_path / "file").write_text("")
    assert await failure(str(tmp_path / "file"), "DirectoryOrCreate") == (
        f"hostPath type check failed: {tmp_path / 'file'} is not a directory")


async def test_file_or_create(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    assert await setup(str(target), "FileOrCreate") == str(target)
    assert target.read_bytes() == b""
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    target.write_text("x")
    await setup(str(target), "FileOrCreate")
    assert target.read_text() == "x"
    assert await failure(str(tmp_path), "FileOrCreate") == (
        f"hostPath type check failed: {tmp_path} is not a file")
    nested = tmp_path / "no" / "such" / "f"
    assert await failure(str(nested), "FileOrCreate") == (
        f"open {nested}: no such file or directory")


async def test_kinds(tmp_path: Path) -> None:
    regular = tmp_path / "regular"
    regular.write_text("")
    assert await setup(str(regular), "File") == str(regular)
    assert await setup(str(tmp_path), "Directory") == str(tmp_path)
    assert await failure(str(tmp_path), "File") == (
        f"hostPath type check failed: {tmp_path} is not a file")
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        assert await setup(str(sock_path), "Socket") == str(sock_path)
    assert await failure(str(regular), "Socket") == (
        f"hostPath type check failed: {regular} is not a socket file")
    assert await setup("/dev/null", "CharDevice") == "/dev/null"
    assert await failure(str(regular), "CharDevice") == (
        f"hostPath type check failed: {regular} is not a character device")
    assert await failure("/dev/null", "BlockDevice") == (
        "hostPath type check failed: /dev/null is not a block device")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    assert await setup(str(link), "Directory") == str(link)


async def test_unset_type_checks_nothing_and_bad_values(tmp_path: Path) -> None:
    assert await setup(str(tmp_path / "whatever")) == str(tmp_path / "whatever")
    assert await setup(str(tmp_path / "whatever"), "") == str(tmp_path / "whatever")
    assert await failure(str(tmp_path), "Weird") == "Weird is an invalid volume type"
    assert await failure("/a/../b", "") == "invalid HostPath `/a/../b`: must not contain '..'"

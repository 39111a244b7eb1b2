"""hostPath volumes: a path of the node itself, checked against its declared `type`.

Checks and messages are upstream's, since users read them in FailedMount events.
"" (unset) checks nothing. DirectoryOrCreate creates a missing path (0755, with
parents); FileOrCreate creates an empty 0644 file but, as upstream documents, not
its parent directory. Otherwise the path must exist and be of the declared kind
(symlinks followed), else `hostPath type check failed: <path> is not a <kind>`.
Nothing is torn down: the data outlives the pod, which is the point of hostPath.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import Mapping
from typing import Any

from kubi.node.volumes.base import MountError, VolumeContext

UNSET = ""
DIRECTORY_OR_CREATE = "DirectoryOrCreate"
DIRECTORY = "Directory"
FILE_OR_CREATE = "FileOrCreate"
FILE = "File"
SOCKET = "Socket"
CHAR_DEVICE = "CharDevice"
BLOCK_DEVICE = "BlockDevice"

_KINDS = {
    DIRECTORY: (stat.S_ISDIR, "directory"),
    FILE: (stat.S_ISREG, "file"),
    SOCKET: (stat.S_ISSOCK, "socket file"),
    CHAR_DEVICE: (stat.S_ISCHR, "character device"),
    BLOCK_DEVICE: (stat.S_ISBLK, "block device"),
}


class HostPathError(Exception):
    pass


def _mode_of(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def _go_path_error(op: str, path: str, exc: OSError) -> str:
    """An OSError worded as Go's *PathError prints (`mkdir /x: permission denied`)."""
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    return f"{op} {path}: {reason}"


def _make_dir(path: str) -> None:
    try:
        os.makedirs(path, 0o755, exist_ok=True)
    except OSError as exc:
        raise HostPathError(_go_path_error("mkdir", path, exc)) from exc
    os.chmod(path, 0o755)


def _make_file(path: str) -> None:
    try:
        fd = os.open(path, os.O_CREAT | os.O_RDONLY, 0o644)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return
        raise HostPathError(_go_path_error("open", path, exc)) from exc
    try:
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)


def check_type(path: str, path_type: str) -> None:
    """Run upstream's pre-check for `path_type`, creating the path where it says to."""
    if path_type == DIRECTORY_OR_CREATE:
        if _mode_of(path) is None:
            _make_dir(path)
            return
        path_type = DIRECTORY
    elif path_type == FILE_OR_CREATE:
        if _mode_of(path) is None:
            _make_file(path)
            return
        path_type = FILE
    kind = _KINDS.get(path_type)
    if kind is None:
        raise HostPathError(f"{path_type} is an invalid volume type")
    test, description = kind
    mode = _mode_of(path)
    if mode is None or not test(mode):
        raise HostPathError(f"hostPath type check failed: {path} is not a {description}")


def validate(path: str, path_type: str) -> None:
    if ".." in path.replace("\\", "/").split("/"):
        raise HostPathError(f"invalid HostPath `{path}`: must not contain '..'")
    if path_type != UNSET:
        check_type(path, path_type)


async def setup_source(volume_name: str, source: Mapping[str, Any]) -> str:
    """Check a hostPath source (of a pod volume or a PV) and return its path."""
    path = source.get("path") or ""
    try:
        await asyncio.to_thread(validate, path, source.get("type") or UNSET)
    except HostPathError as exc:
        raise MountError(volume_name, str(exc)) from exc
    return path


async def setup(pod: Mapping[str, Any], volume: Mapping[str, Any], pod_dir: str,
                ctx: VolumeContext) -> str:
    return await setup_source(volume["name"], volume.get("hostPath") or {})

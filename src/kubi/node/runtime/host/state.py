"""The runtime's records on disk: one directory per sandbox and per container.

`<state>/sandboxes/<id>/sandbox.json` and `<state>/containers/<id>/container.json`
are written by the runtime; `<state>/containers/<id>/status.json` by the
container's shim (pids, start, exit). Each file is replaced atomically
(write, then rename), so a reader after any crash sees an old or a new
version, never half of one. A restarted runtime rebuilds its view from
these files and the processes they name.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from kubi.node.runtime.host import linux

if TYPE_CHECKING:
    from pathlib import Path


# One encoder for every record: making one per call costs more than the encoding.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Replace a record. The shims' way: the runtime's own process encodes
    with orjson and calls replace_file, which the launcher, whose forks pay
    for every module it has loaded, does not import."""
    # encode, not dump: only the one-shot encoder is the C one.
    replace_file(path, _ENCODER.encode(data).encode())


def replace_file(path: str | Path, data: bytes) -> None:
    """Replace a file's content atomically (write a new file, then rename it).
    Written with os calls rather than a file object, which the shims' forks
    would first have to copy the io machinery's pages for."""
    path = str(path)
    tmp = f"{path}.tmp{os.getpid()}"
    write_file(tmp, data)
    os.replace(tmp, path)


def write_file(path: str, data: bytes, mode: int = 0o644) -> None:
    """Create (or replace the content of) a small file, not atomically."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def read_json(path: str | Path) -> dict[str, Any] | None:
    try:
        raw = linux.read_file(os.fspath(path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class StateDir:
    """Where records live; ids are the runtime's random hex ids. Paths are
    strings: the runtime builds several for each pod it starts."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root)
        self.sandboxes = f"{self.root}/sandboxes"
        self.containers = f"{self.root}/containers"

    def create(self) -> None:
        for d in (self.root, self.sandboxes, self.containers):
            os.makedirs(d, mode=0o700, exist_ok=True)

    def sandbox_dir(self, sandbox_id: str) -> str:
        return f"{self.sandboxes}/{sandbox_id}"

    def sandbox_file(self, sandbox_id: str, name: str) -> str:
        return f"{self.sandboxes}/{sandbox_id}/{name}"

    def container_dir(self, container_id: str) -> str:
        return f"{self.containers}/{container_id}"

    def container_file(self, container_id: str, name: str) -> str:
        return f"{self.containers}/{container_id}/{name}"

    def sandbox_ids(self) -> list[str]:
        return _ids(self.sandboxes)

    def container_ids(self) -> list[str]:
        return _ids(self.containers)

    def remove_sandbox(self, sandbox_id: str) -> None:
        _remove_tree(self.sandbox_dir(sandbox_id))

    def remove_container(self, container_id: str) -> None:
        _remove_tree(self.container_dir(container_id))


def _ids(directory: str) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(e.name for e in os.scandir(directory) if e.is_dir())
    return []


def _remove_tree(path: str) -> None:
    # Imported here: the launcher loads this module for write_json, and
    # everything it loads makes each of its forks dearer (see linux.py).
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# Mount points a container had to create on the node. They stay while pods
# run (another container may mount there too) and go with destroy_all.
_MOUNT_POINTS = "mountpoints.json"


def remember_mount_points(root: str | Path, paths: list[str]) -> None:
    if not paths:
        return
    record = f"{root}/{_MOUNT_POINTS}"
    known = (read_json(record) or {}).get("paths", [])
    write_json(record, {"paths": sorted(set(known) | set(paths))})


def remove_mount_points(root: str | Path) -> None:
    """Remove the remembered mount points that are still empty, deepest first."""
    record = f"{root}/{_MOUNT_POINTS}"
    paths = (read_json(record) or {}).get("paths", [])
    for path in sorted(paths, key=lambda p: p.count("/"), reverse=True):
        with contextlib.suppress(OSError):
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            elif os.path.isfile(path) and os.path.getsize(path) == 0:
                os.unlink(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record)

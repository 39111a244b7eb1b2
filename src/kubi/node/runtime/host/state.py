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
import shutil
from pathlib import Path
from typing import Any


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    path = str(path)
    tmp = f"{path}.tmp{os.getpid()}"
    # dumps, not dump: only the one-shot encoder is the C one.
    text = json.dumps(data, separators=(",", ":"))
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_json(path: str | Path) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


class StateDir:
    """Where records live; ids are the runtime's random hex ids."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sandboxes = root / "sandboxes"
        self.containers = root / "containers"

    def create(self) -> None:
        for d in (self.root, self.sandboxes, self.containers):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    def sandbox_dir(self, sandbox_id: str) -> Path:
        return self.sandboxes / sandbox_id

    def container_dir(self, container_id: str) -> Path:
        return self.containers / container_id

    def sandbox_ids(self) -> list[str]:
        return _ids(self.sandboxes)

    def container_ids(self) -> list[str]:
        return _ids(self.containers)

    def remove_sandbox(self, sandbox_id: str) -> None:
        shutil.rmtree(self.sandbox_dir(sandbox_id), ignore_errors=True)

    def remove_container(self, container_id: str) -> None:
        shutil.rmtree(self.container_dir(container_id), ignore_errors=True)


def _ids(directory: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return sorted(p.name for p in directory.iterdir() if p.is_dir())
    return []


# Mount points a container had to create on the node. They stay while pods
# run (another container may mount there too) and go with destroy_all.
_MOUNT_POINTS = "mountpoints.json"


def remember_mount_points(root: Path, paths: list[str]) -> None:
    if not paths:
        return
    known = (read_json(root / _MOUNT_POINTS) or {}).get("paths", [])
    write_json(root / _MOUNT_POINTS, {"paths": sorted(set(known) | set(paths))})


def remove_mount_points(root: Path) -> None:
    """Remove the remembered mount points that are still empty, deepest first."""
    paths = (read_json(root / _MOUNT_POINTS) or {}).get("paths", [])
    for path in sorted(paths, key=lambda p: p.count("/"), reverse=True):
        with contextlib.suppress(OSError):
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            elif os.path.isfile(path) and os.path.getsize(path) == 0:
                os.unlink(path)
    with contextlib.suppress(FileNotFoundError):
        (root / _MOUNT_POINTS).unlink()

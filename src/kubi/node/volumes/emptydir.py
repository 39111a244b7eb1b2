"""emptyDir volumes: a fresh directory per pod, on disk or in memory.

The directory is `<pod_dir>/volumes/kubernetes.io~empty-dir/<name>`, mode 0777 so
any container user can write to it. `medium: Memory` mounts a tmpfs there, sized
as `memory.memory_volume_size` says. When the pods' directories are themselves
in memory (`VolumeContext.disk_root`, the agent running as root), an emptyDir
on disk is a directory under `disk_root` bound there. Setup is idempotent (a
pod worker retries and restarts containers), so it never wipes an existing
volume. On disk a `sizeLimit` is enforced by eviction, not by the filesystem:
the agent polls `usage.usage_bytes`. Teardown unmounts the tmpfs or the bind,
if any, and deletes everything; the agent deletes a pod's directory under
`disk_root` with the pod's own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from kubi.node.volumes import tmpfs
from kubi.node.volumes.base import EMPTY_DIR, MountError, VolumeContext, volume_dir
from kubi.node.volumes.managed import teardown_dir
from kubi.node.volumes.memory import memory_volume_size
from kubi.node.volumes.ownership import apply_fs_group, fs_group_policy, pod_fs_group

MEMORY = "Memory"
_PERM = 0o777


def emptydir_path(pod_dir: str, name: str) -> str:
    return volume_dir(pod_dir, EMPTY_DIR, name)


async def setup(pod: Mapping[str, Any], volume: Mapping[str, Any], pod_dir: str,
                ctx: VolumeContext) -> str:
    source = volume.get("emptyDir") or {}
    medium = source.get("medium") or ""
    if medium not in ("", MEMORY):
        raise MountError(volume["name"], f'unknown storage medium "{medium}"')
    path = emptydir_path(pod_dir, volume["name"])
    size = None
    if medium == MEMORY:
        size = memory_volume_size(pod, source.get("sizeLimit"), ctx.node_allocatable)
    backing = None
    if medium != MEMORY and ctx.disk_root:
        backing = os.path.join(ctx.disk_root, str(pod["metadata"]["uid"]), volume["name"])
    try:
        await asyncio.to_thread(_setup_dir, path, medium == MEMORY and ctx.use_tmpfs, size,
                                backing)
        await asyncio.to_thread(apply_fs_group, path, pod_fs_group(pod), readonly=False,
                                policy=fs_group_policy(pod))
    except OSError as exc:
        raise MountError(volume["name"], str(exc)) from exc
    return path


def _setup_dir(path: str, memory: bool, size: int | None, backing: str | None) -> None:
    os.makedirs(path, exist_ok=True)
    if memory and tmpfs.mount_type(path) != "tmpfs":
        tmpfs.mount_tmpfs(path, size)
        return
    if backing is not None and not tmpfs.is_mount_point(path):
        os.makedirs(backing, exist_ok=True)
        tmpfs.bind(backing, path)
    if not memory and os.stat(path).st_mode & 0o7777 != _PERM:
        # makedirs honours the umask; the volume must be writable by any user.
        os.chmod(path, _PERM)


async def teardown(pod_dir: str, name: str) -> None:
    await asyncio.to_thread(teardown_dir, emptydir_path(pod_dir, name))

"""configMap, secret, downwardAPI and projected volumes: content the kubelet writes.

Setup builds the payload first (a missing object fails before anything is
created), prepares the directory (0777 like the emptyDir it wraps; secret,
downwardAPI and projected content sits on a tmpfs of its own, never on the
node's disk) and projects the files with the AtomicWriter. `refresh` rebuilds
the payload from the current objects and pod and rewrites only on change;
subPath mounts, bound to an old timestamped directory, keep their content.
Setup and refresh of one volume are serialised by a per-directory lock (a pod
worker and the periodic refresh may meet). Teardown unmounts the tmpfs, if
any, and removes the directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import weakref
from collections.abc import Mapping
from typing import Any

from kubi.node.volumes import tmpfs
from kubi.node.volumes.atomic import AtomicWriter, PayloadError
from kubi.node.volumes.base import (
    CONFIG_MAP,
    DOWNWARD_API,
    PROJECTED,
    SECRET,
    MountError,
    VolumeContext,
    volume_dir,
)
from kubi.node.volumes.memory import memory_volume_size
from kubi.node.volumes.ownership import apply_fs_group, pod_fs_group
from kubi.node.volumes.payloads import Files, PayloadFailure, volume_payload

PLUGIN_DIRS = {
    "configMap": CONFIG_MAP,
    "secret": SECRET,
    "downwardAPI": DOWNWARD_API,
    "projected": PROJECTED,
}
# configMap content is not secret and stays on disk, as upstream keeps it.
_MEMORY_BACKED = frozenset({"secret", "downwardAPI", "projected"})
_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _lock(path: str) -> asyncio.Lock:
    lock = _locks.get(path)
    if lock is None:
        lock = _locks[path] = asyncio.Lock()
    return lock


def managed_dir(pod_dir: str, volume: Mapping[str, Any], source: str) -> str:
    return volume_dir(pod_dir, PLUGIN_DIRS[source], volume["name"])


async def _payload(pod: Mapping[str, Any], volume: Mapping[str, Any],
                   ctx: VolumeContext) -> Files:
    try:
        return await volume_payload(pod, volume, ctx)
    except PayloadFailure as exc:
        raise MountError(volume["name"], str(exc)) from exc


async def setup(pod: Mapping[str, Any], volume: Mapping[str, Any], pod_dir: str,
                ctx: VolumeContext, source: str) -> str:
    path = managed_dir(pod_dir, volume, source)
    # The payload is read under the lock so that the last writer has the newest data.
    async with _lock(path):
        files = await _payload(pod, volume, ctx)
        try:
            if ctx.pods_in_memory:
                # A directory, a mount and a few files in memory: less work
                # than a hop to a thread and back.
                _prepare_and_project(path, files, pod, ctx, source in _MEMORY_BACKED)
            else:
                await asyncio.to_thread(_prepare_and_project, path, files, pod, ctx,
                                        source in _MEMORY_BACKED)
        except (OSError, PayloadError) as exc:
            raise MountError(volume["name"], str(exc)) from exc
    return path


async def refresh(pod: Mapping[str, Any], volume: Mapping[str, Any], pod_dir: str,
                  ctx: VolumeContext, source: str) -> bool:
    """Rewrite the volume if its objects or the pod changed; True when it did."""
    path = managed_dir(pod_dir, volume, source)
    if not os.path.isdir(path):
        return False
    async with _lock(path):
        if not os.path.isdir(path):
            return False  # torn down meanwhile
        files = await _payload(pod, volume, ctx)
        try:
            return await asyncio.to_thread(_project, path, files, pod)
        except (OSError, PayloadError) as exc:
            raise MountError(volume["name"], str(exc)) from exc


def teardown_dir(path: str) -> None:
    if not os.path.lexists(path):
        return
    if tmpfs.is_mount_point(path):
        tmpfs.unmount(path)
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        os.rmdir(path)


def _prepare_dir(path: str, pod: Mapping[str, Any], ctx: VolumeContext,
                 memory_backed: bool) -> None:
    created = not os.path.isdir(path)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)
    # A tmpfs of its own even inside a pods directory that is one: `df` in the
    # container lists it at its mount path only then, as upstream's. A
    # directory just made carries no mount yet: the mount table is read only
    # for one that was there before (an agent restart).
    if memory_backed and ctx.use_tmpfs and (created or tmpfs.mount_type(path) != "tmpfs"):
        tmpfs.mount_tmpfs(path, memory_volume_size(pod, None, ctx.node_allocatable))


def _prepare_and_project(path: str, files: Files, pod: Mapping[str, Any], ctx: VolumeContext,
                         memory_backed: bool) -> None:
    _prepare_dir(path, pod, ctx, memory_backed)
    _project(path, files, pod)


def _project(path: str, files: Files, pod: Mapping[str, Any]) -> bool:
    gid = pod_fs_group(pod)

    def set_perms(_: str) -> None:
        # New files may sit outside the timestamped directory: walk the whole volume.
        # Every rewrite adds unowned files, so the root alone proves nothing here.
        apply_fs_group(path, gid, readonly=True)

    return AtomicWriter(path).write(files, set_perms if gid is not None else None)

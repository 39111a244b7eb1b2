"""Pod volumes on a node: set up, refreshed and torn down as the kubelet does it.

`setup(pod, volume, pod_dir, ctx)` readies one volume of `pod.spec.volumes` and
returns the host path to bind-mount; a failure raises `MountError` with the
FailedMount event text while the pod stays in ContainerCreating. `refresh`
rewrites configMap, secret, downwardAPI and projected volumes whose sources
changed (call it about once a minute); `teardown_pod_volumes` undoes setups from
what is on disk alone, so it also works after a restart. Beside this:
`mounts.container_mounts` (volumeMounts to runtime mounts, subPath included) and
`usage` (emptyDir sizeLimit eviction).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any

from kubi.node.volumes import emptydir, hostpath, managed, pvc
from kubi.node.volumes.atomic import AtomicWriter, FileProjection, PayloadError
from kubi.node.volumes.base import (
    MountError,
    VolumeContext,
    is_readonly_source,
    volume_source,
)
from kubi.node.volumes.subpath import SubPathError, resolve_subpath
from kubi.node.volumes.usage import (
    emptydir_eviction_message,
    size_limited_emptydirs,
    usage_bytes,
)

__all__ = [
    "AtomicWriter", "FileProjection", "MountError", "PayloadError", "SubPathError",
    "VolumeContext", "emptydir_eviction_message", "is_readonly_source", "refresh",
    "resolve_subpath", "setup", "size_limited_emptydirs", "teardown",
    "teardown_pod_volumes", "usage_bytes", "volume_source",
]


async def setup(pod: Mapping[str, Any], volume: Mapping[str, Any], pod_dir: str,
                ctx: VolumeContext) -> str:
    source = volume_source(volume)
    if source == "emptyDir":
        return await emptydir.setup(pod, volume, pod_dir, ctx)
    if source == "hostPath":
        return await hostpath.setup(pod, volume, pod_dir, ctx)
    if source in managed.PLUGIN_DIRS:
        return await managed.setup(pod, volume, pod_dir, ctx, source)
    if source in ("persistentVolumeClaim", "ephemeral"):
        return await pvc.setup(pod, volume, pod_dir, ctx)
    raise MountError(volume.get("name", ""),
                     f"volume type {source} is not supported on this node")


async def refresh(pod: Mapping[str, Any], volume: Mapping[str, Any], pod_dir: str,
                  ctx: VolumeContext) -> bool:
    """Bring a kubelet-written volume up to date; True when its content changed."""
    source = volume_source(volume)
    if source not in managed.PLUGIN_DIRS:
        return False
    return await managed.refresh(pod, volume, pod_dir, ctx, source)


async def teardown(pod: Mapping[str, Any], volume: Mapping[str, Any], pod_dir: str) -> None:
    source = volume_source(volume)
    if source == "emptyDir":
        await emptydir.teardown(pod_dir, volume["name"])
    elif source in managed.PLUGIN_DIRS:
        await asyncio.to_thread(managed.teardown_dir,
                                managed.managed_dir(pod_dir, volume, source))


async def teardown_pod_volumes(pod_dir: str) -> None:
    """Unmount and delete every volume directory under `pod_dir/volumes`."""
    await asyncio.to_thread(_teardown_all, os.path.join(pod_dir, "volumes"))


def _teardown_all(root: str) -> None:
    """Tear down every volume under `root`; a directory that vanished meanwhile
    (a concurrent teardown) is already done."""
    try:
        plugins = os.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return
    for plugin in plugins:
        plugin_dir = os.path.join(root, plugin)
        if not os.path.isdir(plugin_dir) or os.path.islink(plugin_dir):
            continue
        try:
            names = os.listdir(plugin_dir)
        except FileNotFoundError:
            continue
        for name in names:
            managed.teardown_dir(os.path.join(plugin_dir, name))
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(plugin_dir)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(root)

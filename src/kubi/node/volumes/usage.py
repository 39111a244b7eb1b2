"""Disk usage of emptyDir volumes, and the eviction decision for `sizeLimit`.

`usage_bytes` counts allocated blocks like `du -x -s -B1`: files are not
followed through symlinks, hard links count once, and other filesystems mounted
below the volume are skipped. It is synchronous and walks the whole tree, so the
agent runs it in a thread (`asyncio.to_thread`) on its polling period. The
decision itself, `emptydir_eviction_message`, is a pure function of the pod and
the measured usages; its text is upstream's eviction message.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import Any

from kubi.api.quantity import canonical, parse_quantity
from kubi.node.volumes.emptydir import emptydir_path


def usage_bytes(path: str) -> int:
    try:
        root = os.lstat(path)
    except FileNotFoundError:
        return 0
    device = root.st_dev
    seen: set[tuple[int, int]] = set()
    total = root.st_blocks * 512
    stack = [path] if stat.S_ISDIR(root.st_mode) else []
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != device:
                continue
            if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += info.st_blocks * 512
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)
    return total


def size_limited_emptydirs(pod: Mapping[str, Any], pod_dir: str) -> list[tuple[str, str, int]]:
    """`(volume name, path, limit in bytes)` for each emptyDir with a positive sizeLimit."""
    out = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        source = volume.get("emptyDir")
        if source is None or source.get("sizeLimit") is None:
            continue
        limit = parse_quantity(source["sizeLimit"]).value()
        if limit > 0:
            out.append((volume["name"], emptydir_path(pod_dir, volume["name"]), limit))
    return out


def emptydir_eviction_message(pod: Mapping[str, Any], usage: Mapping[str, int]) -> str | None:
    """The eviction message when an emptyDir exceeds its sizeLimit, else None.

    `usage` maps volume names to bytes used; volumes missing from it are skipped.
    """
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        source = volume.get("emptyDir")
        used = usage.get(volume.get("name", ""))
        if source is None or used is None or source.get("sizeLimit") is None:
            continue
        limit = parse_quantity(source["sizeLimit"])
        if limit.sign() > 0 and used > limit.value():
            return (f'Usage of EmptyDir volume "{volume["name"]}" exceeds the limit '
                    f'"{canonical(source["sizeLimit"])}". ')
    return None

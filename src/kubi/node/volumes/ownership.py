"""Volume ownership for `securityContext.fsGroup`, and the pod's single file owner.

With an fsGroup, every file of a kubelet-managed volume gets that group and group
permissions: read-write (rw, plus x and setgid on directories) for writable
volumes such as emptyDir, read-only for the projected kinds (configMap, secret,
downwardAPI, projected). Symlinks are re-grouped but their mode is left alone.
`fsGroupChangePolicy: OnRootMismatch` skips the walk when the volume root already
carries the group and the bits. Changing ownership needs root; otherwise this is
a no-op.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from typing import Any

_RW_MASK = 0o660
_RO_MASK = 0o440
_EXEC_MASK = 0o110


def pod_fs_group(pod: Mapping[str, Any]) -> int | None:
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return int(value) if value is not None else None


def fs_user(pod: Mapping[str, Any]) -> int | None:
    """The uid every container of the pod runs as, if they all agree on one."""
    spec = pod.get("spec") or {}
    pod_uid = (spec.get("securityContext") or {}).get("runAsUser")
    users: set[Any] = set()
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        own = (container.get("securityContext") or {}).get("runAsUser")
        users.add(own if own is not None else pod_uid)
    if len(users) != 1:
        return None
    (only,) = users
    return int(only) if only is not None else None


def _mask(is_dir: bool, readonly: bool) -> int:
    mask = _RO_MASK if readonly else _RW_MASK
    if is_dir:
        mask |= stat.S_ISGID | _EXEC_MASK
    return mask


def _root_matches(root: str, gid: int, readonly: bool) -> bool:
    info = os.stat(root)
    mask = _mask(True, readonly)
    return info.st_gid == gid and (info.st_mode & mask) == mask


def apply_fs_group(root: str, gid: int | None, *, readonly: bool,
                   policy: str | None = None) -> None:
    if gid is None or os.geteuid() != 0:
        return
    if policy == "OnRootMismatch" and _root_matches(root, gid, readonly):
        return
    for dirpath, dirnames, filenames in os.walk(root):
        _change(dirpath, gid, readonly)
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.isdir(path) or os.path.islink(path):
                _change(path, gid, readonly)


def _change(path: str, gid: int, readonly: bool) -> None:
    info = os.lstat(path)
    os.lchown(path, -1, gid)
    if stat.S_ISLNK(info.st_mode):
        return
    os.chmod(path, stat.S_IMODE(info.st_mode) | _mask(stat.S_ISDIR(info.st_mode), readonly))


def fs_group_policy(pod: Mapping[str, Any]) -> str | None:
    return ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroupChangePolicy")

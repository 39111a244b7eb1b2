"""subPath and subPathExpr: mounting one entry of a volume, safely.

A subPath is relative, has no `..` element and, once symlinks are resolved, must
still lie inside the volume; a missing one is created as a directory with the
volume root's mode, walking component by component so a symlink planted by a
container cannot redirect the creation outside. The resolved real path is what
gets bind-mounted, so later AtomicWriter updates (which repoint `..data`) do not
reach a subPath mount, exactly as upstream behaves. (`subPathExpr` expansion is
`kubi.node.envvars.expand_subpath_expr`; its result is checked here like any
subPath.)
"""

from __future__ import annotations

import os


class SubPathError(Exception):
    """The subPath cannot be used; the message is the container's waiting message."""


def check_subpath(sub_path: str) -> None:
    if sub_path.startswith("/"):
        raise SubPathError(f"error SubPath `{sub_path}` must not be an absolute path")
    if ".." in sub_path.split("/"):
        raise SubPathError(f"unable to provision SubPath `{sub_path}`: must not contain '..'")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def resolve_subpath(host_path: str, sub_path: str, *, volume_name: str = "",
                    container_name: str = "") -> str:
    """The real host path to bind for `sub_path` of the volume at `host_path`."""
    check_subpath(sub_path)
    root = os.path.realpath(host_path)
    mode = os.stat(root).st_mode & 0o7777
    current = root
    for part in [p for p in sub_path.split("/") if p not in ("", ".")]:
        candidate = os.path.join(current, part)
        if not os.path.lexists(candidate):
            try:
                os.mkdir(candidate, mode)
                os.chmod(candidate, mode)
            except OSError as exc:
                raise SubPathError(
                    f'failed to create subPath directory for volumeMount "{volume_name}" '
                    f'of container "{container_name}"') from exc
        current = os.path.realpath(candidate)
        if not _inside(current, root):
            raise SubPathError(
                f'failed to prepare subPath for volumeMount "{volume_name}" '
                f'of container "{container_name}"')
    return current

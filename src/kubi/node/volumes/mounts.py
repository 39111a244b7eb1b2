"""A container's bind mounts, from its volumeMounts and the pod's set-up volumes.

This is the kubelet's makeMounts: each volumeMount names a volume that must
have been set up (its host path is in `host_paths`), optionally narrowed by
`subPath` or `subPathExpr` (expanded with the container's resolved env). The
mount is read-only when the volumeMount asks for it or the volume kind forces it
(configMap, secret, downwardAPI, projected, read-only claims). Failures raise
`ConfigError` with upstream's texts: the container waits in
CreateContainerConfigError, as the kubelet reports it.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from typing import Any

from kubi.node.envvars import ConfigError, expand_subpath_expr
from kubi.node.runtime.base import Mount
from kubi.node.volumes.base import is_readonly_source
from kubi.node.volumes.subpath import SubPathError, check_subpath, resolve_subpath


def container_mounts(pod: Mapping[str, Any], container: Mapping[str, Any],
                     host_paths: Mapping[str, str], env: Mapping[str, str]) -> list[Mount]:
    """Mounts for `container`; `host_paths` maps volume names to `setup()` results."""
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    name = container.get("name", "")
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts") or []:
        volume_name = vm.get("name", "")
        host_path = host_paths.get(volume_name)
        if host_path is None or volume_name not in volumes:
            raise ConfigError(f'cannot find volume "{volume_name}" to mount into container '
                              f'"{name}"')
        sub_path = vm.get("subPath") or ""
        if vm.get("subPathExpr"):
            sub_path = expand_subpath_expr(vm["subPathExpr"], env)
        if sub_path:
            try:
                check_subpath(sub_path)
                host_path = resolve_subpath(host_path, sub_path, volume_name=volume_name,
                                            container_name=name)
            except SubPathError as exc:
                raise ConfigError(str(exc)) from exc
        target = vm.get("mountPath", "")
        if not target.startswith("/"):
            target = posixpath.join("/", target)
        readonly = bool(vm.get("readOnly")) or is_readonly_source(volumes[volume_name])
        # A missing source (hostPath without a type) is bound as a directory the
        # runtime creates, as container runtimes do.
        is_file = os.path.exists(host_path) and not os.path.isdir(host_path)
        mounts.append(Mount(host_path=host_path, container_path=target, readonly=readonly,
                            is_file=is_file))
    return mounts

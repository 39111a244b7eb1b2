"""Shared vocabulary of the volume plugins: the context, the error, the on-disk layout.

Every plugin is handed a `VolumeContext`: the agent's lookups (ConfigMap, Secret,
PVC, PV, service account tokens), the node's allocatable resources and whether
tmpfs mounts may be made. The context is a plain dataclass so the agent can build
one per pod cheaply (`token` is bound to the pod it serves). A volume that cannot
be set up raises `MountError`; the agent reports it as upstream's FailedMount
event (`event_message`) and retries, leaving the pod in ContainerCreating.
Volumes live where the kubelet keeps them:
`<pod_dir>/volumes/kubernetes.io~<plugin>/<volume name>`.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
# (namespace, name) -> the object, or None when it does not exist.
Lookup = Callable[[str, str], Awaitable[Obj | None]]
# (name) -> the cluster-scoped object, or None.
ClusterLookup = Callable[[str], Awaitable[Obj | None]]
# (audience, expirationSeconds) -> a token for the pod's service account.
TokenSource = Callable[[str, int], Awaitable[str]]

EMPTY_DIR = "kubernetes.io~empty-dir"
CONFIG_MAP = "kubernetes.io~configmap"
SECRET = "kubernetes.io~secret"
DOWNWARD_API = "kubernetes.io~downward-api"
PROJECTED = "kubernetes.io~projected"

# The volume sources this package knows, in the order a volume is inspected.
SOURCES = ("emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected",
           "persistentVolumeClaim", "ephemeral")
# Sources whose content the kubelet writes itself and always mounts read-only.
PROJECTED_SOURCES = frozenset({"configMap", "secret", "downwardAPI", "projected"})

DEFAULT_FILE_MODE = 0o644


class MountError(Exception):
    """A volume could not be set up; the pod waits and the agent retries."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(message)
        self.volume = volume
        self.message = message

    @property
    def event_message(self) -> str:
        """The FailedMount event text upstream records for this failure."""
        return f'MountVolume.SetUp failed for volume "{self.volume}" : {self.message}'


async def _absent(*_: str) -> Obj | None:
    return None


async def _no_token(audience: str, expiration_seconds: int) -> str:
    raise LookupError("service account tokens are not available on this node")


@dataclass
class VolumeContext:
    get_configmap: Lookup = _absent
    get_secret: Lookup = _absent
    get_pvc: Lookup = _absent
    get_pv: ClusterLookup = _absent
    token: TokenSource = _no_token
    # Node allocatable (`{"memory": "7Gi", ...}`): sizes memory-backed volumes and
    # stands in for missing limits in resourceFieldRef files.
    node_allocatable: Mapping[str, str] = field(default_factory=dict)
    # Memory-backed volumes need mount(2); without it they are plain directories.
    use_tmpfs: bool = field(default_factory=lambda: os.geteuid() == 0)
    # Set when the pods' directories are in memory (a tmpfs): emptyDirs on disk
    # then live in `<disk_root>/<pod uid>/<name>`, bound at their usual place.
    disk_root: str | None = None

    @property
    def pods_in_memory(self) -> bool:
        return self.disk_root is not None


def volume_source(volume: Mapping[str, Any]) -> str:
    """The name of the source a pod volume uses (`emptyDir`, `secret`, ...)."""
    for key in SOURCES:
        if volume.get(key) is not None:
            return key
    for key, value in volume.items():
        if key != "name" and isinstance(value, dict):
            return key
    return "emptyDir"


def volume_dir(pod_dir: str, plugin: str, name: str) -> str:
    return os.path.join(pod_dir, "volumes", plugin, name)


def is_readonly_source(volume: Mapping[str, Any]) -> bool:
    """Whether the kubelet mounts this volume read-only whatever the volumeMount says."""
    source = volume_source(volume)
    if source in PROJECTED_SOURCES:
        return True
    if source == "persistentVolumeClaim":
        return bool((volume.get(source) or {}).get("readOnly"))
    return False


def go_aggregate(messages: list[str]) -> str:
    """Several errors joined as Go's aggregate error prints them."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def not_found(kind: str, name: str) -> str:
    """The kubelet's object managers word a missing object this way."""
    return f'{kind} "{name}" not found'

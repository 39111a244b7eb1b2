"""The ConfigMaps and Secrets a node's pods use, each watched on its own.

Like the kubelet's watch-based object managers, the agent watches exactly the
objects its pods reference (`pod_references`: volumes, projected sources, env,
envFrom and imagePullSecrets), one informer per object with a field selector
on its name, so a Secret the node has no business with never reaches it.
`WatchedObjects.sync(wanted)` starts and stops watches to match the wanted
set; `get` answers from a synced watch (None when the object does not exist),
waits up to a second for a new watch's first list, and only then sends a GET.
An immutable object is not watched any longer once seen: its last copy is
final. Every add, update or delete calls `on_change(ref)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.client.informer import Informer

log = logging.getLogger(__name__)

# How long a read waits for a new watch's first list before it asks on its own.
SYNC_WAIT = 1.0
CONFIGMAP = "configmap"
SECRET = "secret"
_RESOURCES = {
    CONFIGMAP: Resource("", "v1", "configmaps", True, "ConfigMap"),
    SECRET: Resource("", "v1", "secrets", True, "Secret"),
}


@dataclass(frozen=True, order=True)
class ObjectRef:
    kind: str  # CONFIGMAP or SECRET
    namespace: str
    name: str


def _containers(spec: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or []


def _volume_refs(volume: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    if volume.get("configMap") is not None:
        yield CONFIGMAP, volume["configMap"].get("name", "")
    if volume.get("secret") is not None:
        yield SECRET, volume["secret"].get("secretName", "")
    for source in (volume.get("projected") or {}).get("sources") or []:
        if source.get("configMap") is not None:
            yield CONFIGMAP, source["configMap"].get("name", "")
        if source.get("secret") is not None:
            yield SECRET, source["secret"].get("name", "")


def _env_refs(container: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for env_from in container.get("envFrom") or []:
        if env_from.get("configMapRef") is not None:
            yield CONFIGMAP, env_from["configMapRef"].get("name", "")
        if env_from.get("secretRef") is not None:
            yield SECRET, env_from["secretRef"].get("name", "")
    for var in container.get("env") or []:
        source = var.get("valueFrom") or {}
        if source.get("configMapKeyRef") is not None:
            yield CONFIGMAP, source["configMapKeyRef"].get("name", "")
        if source.get("secretKeyRef") is not None:
            yield SECRET, source["secretKeyRef"].get("name", "")


def pod_references(pod: Mapping[str, Any]) -> set[ObjectRef]:
    """Every ConfigMap and Secret the pod's volumes, env and pull secrets name."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    spec = pod.get("spec") or {}
    found: list[tuple[str, str]] = []
    for volume in spec.get("volumes") or []:
        found.extend(_volume_refs(volume))
    for container in _containers(spec):
        found.extend(_env_refs(container))
    found.extend((SECRET, ref.get("name", "")) for ref in spec.get("imagePullSecrets") or [])
    return {ObjectRef(kind, namespace, name) for kind, name in found if name}


class _Watch:
    """One object's informer, or its final copy once it turned out immutable."""

    def __init__(self, client: Client, ref: ObjectRef, on_change: Callable[[ObjectRef], None]):
        self.ref = ref
        self.frozen: dict[str, Any] | None = None
        self._on_change = on_change
        self.informer = Informer(client, _RESOURCES[ref.kind], namespace=ref.namespace,
                                 field_selector=f"metadata.name={ref.name}")
        self.informer.on_add(self._seen)
        self.informer.on_update(lambda old, new: self._seen(new))
        self.informer.on_delete(lambda obj: self._on_change(self.ref))
        self._stopping: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.informer.start()

    @property
    def synced(self) -> bool:
        return self.frozen is not None or self.informer.synced.is_set()

    def current(self) -> dict[str, Any] | None:
        if self.frozen is not None:
            return self.frozen
        return self.informer.get(f"{self.ref.namespace}/{self.ref.name}")

    def _seen(self, obj: dict[str, Any]) -> None:
        if obj.get("immutable") and self.frozen is None:
            self.frozen = obj
            # Stopping from inside the informer's own task would cancel this handler.
            self._stopping = asyncio.ensure_future(self.informer.stop())
        self._on_change(self.ref)

    async def stop(self) -> None:
        await self.informer.stop()
        if self._stopping is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._stopping


class WatchedObjects:
    def __init__(self, client: Client, *,
                 on_change: Callable[[ObjectRef], None] = lambda ref: None) -> None:
        self.client = client
        self.on_change = on_change
        self._watches: dict[ObjectRef, _Watch] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def watched(self) -> set[ObjectRef]:
        return set(self._watches)

    def sync(self, wanted: set[ObjectRef]) -> None:
        """Watch exactly `wanted`: start what is new, stop what is no longer used."""
        for ref in sorted(wanted - self._watches.keys()):
            watch = _Watch(self.client, ref, self._changed)
            self._watches[ref] = watch
            watch.start()
        for ref in list(self._watches.keys() - wanted):
            task = asyncio.ensure_future(self._watches.pop(ref).stop())
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def _changed(self, ref: ObjectRef) -> None:
        if ref in self._watches:
            self.on_change(ref)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        watch = self._watches.get(ObjectRef(kind, namespace, name))
        if watch is not None and not watch.synced:
            # Pods that start together read the object their new watch is
            # listing: they wait for that one list instead of each sending a GET.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SYNC_WAIT):
                    await watch.informer.synced.wait()
        if watch is not None and watch.synced:
            return watch.current()
        try:
            return await self.client.get(_RESOURCES[kind], name, namespace)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    async def close(self) -> None:
        watches = list(self._watches.values())
        self._watches.clear()
        await asyncio.gather(*(w.stop() for w in watches), *self._stopping,
                             return_exceptions=True)

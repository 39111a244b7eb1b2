"""Everything a Deployment sync does to the outside world, behind one small class.

The sync steps decide with pure functions and act only through
`DeploymentActions`: ReplicaSet creates, updates (full PUTs carrying the
cached resourceVersion, so a decision taken on a stale cache fails with a
Conflict and is retried rather than applied), deletes; Deployment status
writes; events recorded as `deployment-controller`; and requeues for the
progress deadline. After a Deployment write the local copy takes the new
resourceVersion, so a second write in the same sync does not conflict with
the first; and the versions replaced are remembered, so that `cache_is_stale`
can tell a sync to wait for the watch to deliver its own earlier writes
instead of acting on them again (and failing with a Conflict).

The Deployment's revision annotation travels with the status write, as
upstream's does: a Deployment's status writes may change its annotations,
and unlike a write to the object itself they leave `generation` alone. An API
server that keeps all metadata out of status writes drops it there; then it
is set with a metadata patch instead, at the price of a generation bump.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.client.informer import object_key
from kubi.controllers.deployment.util import REVISION, Obj, annotations_of
from kubi.controllers.events import EventRecorder
from kubi.controllers.workqueue import WorkQueue

log = logging.getLogger(__name__)

DEPLOYMENTS = Resource("apps", "v1", "deployments", True, "Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", True, "ReplicaSet")

_DEPLOYMENT_TYPE = {"apiVersion": "apps/v1", "kind": "Deployment"}
_REPLICASET_TYPE = {"apiVersion": "apps/v1", "kind": "ReplicaSet"}


class DeploymentActions:
    def __init__(self, client: Client, recorder: EventRecorder, queue: WorkQueue[str], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.recorder = recorder
        self.queue = queue
        self.clock = clock
        # (resource, namespace/name) -> resourceVersions this controller replaced.
        self._superseded: dict[tuple[str, str], set[str]] = {}

    def now(self) -> float:
        return self.clock()

    def cache_is_stale(self, resource: Resource, cached: Obj) -> bool:
        """True while the cache still holds a version this controller has since replaced."""
        key = (resource.plural, object_key(cached))
        versions = self._superseded.get(key)
        if not versions:
            return False
        if cached["metadata"].get("resourceVersion") in versions:
            return True
        del self._superseded[key]  # the cache caught up
        return False

    def forget(self, resource: Resource, key: str) -> None:
        self._superseded.pop((resource.plural, key), None)

    def _written(self, resource: Resource, before: Obj, written: Obj) -> None:
        old = (before.get("metadata") or {}).get("resourceVersion")
        new = (written.get("metadata") or {}).get("resourceVersion")
        if old and new and old != new:
            self._superseded.setdefault((resource.plural, object_key(before)), set()).add(old)

    def event(self, d: Obj, event_type: str, reason: str, message: str) -> None:
        self.recorder.event(d, event_type, reason, message, kind="Deployment",
                            api_version="apps/v1")

    # ---- ReplicaSets

    async def create_replica_set(self, rs: Obj) -> Obj:
        namespace = rs["metadata"]["namespace"]
        created: Obj = await self.client.create(REPLICASETS, {**_REPLICASET_TYPE, **rs},
                                                namespace)
        return created

    async def get_replica_set(self, namespace: str, name: str) -> Obj:
        found: Obj = await self.client.get(REPLICASETS, name, namespace)
        return found

    async def update_replica_set(self, rs: Obj) -> Obj:
        # Objects from a list come without apiVersion and kind; a PUT names both.
        updated: Obj = await self.client.replace(REPLICASETS, {**_REPLICASET_TYPE, **rs})
        self._written(REPLICASETS, rs, updated)
        return updated

    async def delete_replica_set(self, rs: Obj) -> None:
        md = rs["metadata"]
        try:
            await self.client.delete(REPLICASETS, md["name"], md["namespace"])
        except StatusError as err:
            if err.code != 404:
                raise

    # ---- the Deployment

    async def save_deployment(self, d: Obj, *, revision: bool = False) -> None:
        """Write the status of `d`, and its revision annotation when `revision`."""
        body: dict[str, Any] = {**_DEPLOYMENT_TYPE, **d}
        written: Obj = await self.client.replace(DEPLOYMENTS, body, subresource="status")
        self._adopt_version(d, written)
        wanted = annotations_of(d).get(REVISION)
        if revision and annotations_of(written).get(REVISION) != wanted:
            md = d["metadata"]
            patch = {"metadata": {"annotations": {REVISION: wanted}}}
            written = await self.client.patch(DEPLOYMENTS, md["name"], patch, md["namespace"],
                                              patch_type="merge")
            self._adopt_version(d, written)

    def _adopt_version(self, d: Obj, written: Obj) -> None:
        self._written(DEPLOYMENTS, d, written)
        version = (written.get("metadata") or {}).get("resourceVersion")
        if version:
            d["metadata"]["resourceVersion"] = version

    # ---- requeues

    def requeue_after(self, d: Obj, seconds: float) -> None:
        self.queue.add_after(object_key(d), seconds)

    def requeue_rate_limited(self, d: Obj) -> None:
        self.queue.add_rate_limited(object_key(d))

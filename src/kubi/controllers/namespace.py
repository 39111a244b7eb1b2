"""The namespace controller: a deleted namespace is emptied, then finalized.

A sync reads the namespace live, makes sure it is Terminating, and deletes
its content resource by resource (pods first, nothing else while pods
remain): deletecollection with background propagation, else one delete per
object, then a list of what is left. The findings become the status
conditions; expected leftovers (grace periods, finalizers) bring the
namespace back after half the estimate, or sooner when one of its pods goes.
Once empty, `PUT .../finalize` drops the `kubernetes` finalizer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubi.api import catalog
from kubi.api.catalog import ResourceType
from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.controllers.base import QueueController
from kubi.controllers.manager import ControllerContext
from kubi.controllers.namespace_deletion import (
    DeletionTotals,
    ResourceLeftovers,
    assess_remaining,
    content_conditions,
    deletion_time,
    finalizers_after,
    gvr_string,
    merge_conditions,
    pod_termination_estimate,
)
from kubi.controllers.podcontrol import PODS

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")
FINALIZER_TOKEN = "kubernetes"
NAMESPACE_WORKERS = 10
# After a pod of a terminating namespace goes, look again this soon (coalescing many).
POD_GONE_DELAY = 0.5
RETRY_BASE_DELAY = 0.5
RETRY_MAX_DELAY = 60.0
FINALIZE_RETRIES = 5
_BACKGROUND = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}


def namespaced_resources() -> list[ResourceType]:
    """Every namespaced resource that can be deleted, pods first."""
    found = [rt for rt in catalog.RESOURCES if rt.namespaced and "delete" in rt.verbs]
    return sorted(found, key=lambda rt: not (rt.group == "" and rt.plural == "pods"))


class NamespaceController(QueueController):
    name = "namespace"
    workers = NAMESPACE_WORKERS

    def __init__(self, ctx: ControllerContext, *,
                 resources: list[ResourceType] | None = None,
                 clock: Any = time.time) -> None:
        super().__init__()
        self.client = ctx.client
        self.clock = clock
        self.resources = resources if resources is not None else namespaced_resources()
        self._failures: dict[str, int] = {}
        self.namespaces = ctx.informers.get(NAMESPACES)
        self.namespaces.on_add(self._namespace_changed)
        self.namespaces.on_update(lambda old, new: self._namespace_changed(new))
        ctx.informers.get(PODS).on_delete(self._pod_deleted)

    def _namespace_changed(self, ns: Obj) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add(ns["metadata"]["name"])

    def _pod_deleted(self, pod: Obj) -> None:
        name = (pod.get("metadata") or {}).get("namespace", "")
        ns = self.namespaces.get(name)
        if ns is not None and ns["metadata"].get("deletionTimestamp"):
            self.queue.add_after(name, POD_GONE_DELAY)

    # ---- sync

    async def sync(self, key: str) -> None:
        try:
            await self._sync(key)
        except (StatusError, ContentRemaining) as err:
            # Retried with our own backoff: the queue forgets failures once sync returns.
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            delay = min(RETRY_BASE_DELAY * 2 ** min(failures, 20), RETRY_MAX_DELAY)
            log.info("namespace %s: deletion not complete (%s); retrying in %.1fs", key, err,
                     delay)
            self.queue.add_after(key, delay)
        else:
            self._failures.pop(key, None)

    async def _sync(self, name: str) -> None:
        try:
            ns = await self.client.get(NAMESPACES, name)
        except StatusError as err:
            if err.code == 404:
                return
            raise
        if not ns["metadata"].get("deletionTimestamp"):
            return
        ns = await self._ensure_terminating(ns)
        if FINALIZER_TOKEN not in ((ns.get("spec") or {}).get("finalizers") or ()):
            return
        estimate = await self._delete_all_content(ns)
        if estimate > 0:
            log.info("namespace %s: content remains, estimate %d seconds before it is removed",
                     name, estimate)
            self.queue.add_after(name, estimate // 2 + 1)
            return
        await self._finalize(ns)

    async def _ensure_terminating(self, ns: Obj) -> Obj:
        if (ns.get("status") or {}).get("phase") == "Terminating":
            return ns
        body = {"apiVersion": "v1", "kind": "Namespace", **ns,
                "status": {**(ns.get("status") or {}), "phase": "Terminating"}}
        return await self.client.replace(NAMESPACES, body, subresource="status")

    async def _delete_all_content(self, ns: Obj) -> int:
        """Delete what the namespace holds; returns the seconds to wait, raises on failure."""
        name = ns["metadata"]["name"]
        deleted_at = deletion_time(ns)
        totals = DeletionTotals()
        pods_first = [rt for rt in self.resources if rt.group == "" and rt.plural == "pods"]
        others = [rt for rt in self.resources if rt not in pods_first]
        for batch in (pods_first, others):
            results = await asyncio.gather(
                *(self._delete_resource(rt, name, deleted_at) for rt in batch))
            for rt, leftovers in zip(batch, results):
                totals.add(rt.plural, rt.group, leftovers)
            if totals.remaining or totals.errors:
                break  # nothing else goes while pods remain
        await self._update_conditions(ns, totals)
        if totals.errors:
            raise ContentRemaining("; ".join(sorted(totals.errors)))
        return totals.estimate

    async def _delete_resource(self, rt: ResourceType, namespace: str,
                               deleted_at: float | None) -> ResourceLeftovers:
        res = Resource.from_type(rt)
        gvr = gvr_string(rt.group, rt.version, rt.plural)
        try:
            estimate = 0
            if rt.group == "" and rt.plural == "pods":
                pods = (await self.client.list(res, namespace)).get("items") or []
                estimate = pod_termination_estimate(pods, deleted_at, self.clock())
            if not await self._delete_collection(res, rt, namespace):
                await self._delete_each(res, namespace)
            items = (await self.client.list(res, namespace)).get("items") or []
        except StatusError as err:
            return ResourceLeftovers(error=f"{gvr}: {err}")
        return assess_remaining(items, estimate, namespace=namespace, gvr=gvr)

    async def _delete_collection(self, res: Resource, rt: ResourceType, namespace: str) -> bool:
        """Delete the whole collection; False when the resource does not support it."""
        if "deletecollection" not in rt.verbs:
            return False
        try:
            await self.client.request("DELETE", res.path(namespace), body=_BACKGROUND)
        except StatusError as err:
            if err.code in (404, 405):
                return False
            raise
        return True

    async def _delete_each(self, res: Resource, namespace: str) -> None:
        items = (await self.client.list(res, namespace)).get("items") or []
        for item in items:
            try:
                await self.client.delete(res, item["metadata"]["name"], namespace,
                                         propagation_policy="Background")
            except StatusError as err:
                if err.code not in (404, 405):
                    raise

    async def _update_conditions(self, ns: Obj, totals: DeletionTotals) -> None:
        current = (ns.get("status") or {}).get("conditions") or []
        conditions, changed = merge_conditions(current, content_conditions(totals), self.clock())
        if not changed:
            return
        body = {"apiVersion": "v1", "kind": "Namespace", **ns,
                "status": {**(ns.get("status") or {}), "conditions": conditions}}
        try:
            await self.client.replace(NAMESPACES, body, subresource="status")
        except StatusError as err:
            log.warning("namespace %s: could not update status conditions: %s",
                        ns["metadata"]["name"], err)

    async def _finalize(self, ns: Obj) -> None:
        name = ns["metadata"]["name"]
        for attempt in range(FINALIZE_RETRIES):
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": ns["metadata"],
                    "spec": {**(ns.get("spec") or {}),
                             "finalizers": finalizers_after(ns, FINALIZER_TOKEN)}}
            try:
                await self.client.replace(NAMESPACES, body, subresource="finalize")
                log.info("namespace %s: content removed, finalized", name)
                return
            except StatusError as err:
                if err.code == 404:
                    return
                if err.code != 409 or attempt == FINALIZE_RETRIES - 1:
                    raise
            try:
                fresh = await self.client.get(NAMESPACES, name)
            except StatusError as err:
                if err.code == 404:
                    return
                raise
            if fresh["metadata"].get("uid") != ns["metadata"].get("uid"):
                raise ContentRemaining("namespace uid has changed across retries")
            ns = fresh


class ContentRemaining(Exception):
    """A deletion pass left objects that should have gone, or failed outright."""


def namespace_controller(ctx: ControllerContext) -> NamespaceController:
    return NamespaceController(ctx)

"""The garbage collector: cascading deletion through ownerReferences.

Informers on every deletable catalog resource (events excepted, as upstream)
feed a metadata-only `DependencyGraph`; its work lands on one queue keyed
`delete:<uid>` or `orphan:<uid>`. Attempt-to-delete classifies the owners
(from the graph, else by a live GET whose misses are remembered), then
deletes, drops dangling references, or — for an owner in foreground deletion
— deletes blocking dependents and lifts `foregroundDeletion` when none is
left. Attempt-to-orphan strips the references, then the `orphan` finalizer.
Deletes carry the uid and resourceVersion decided on; if only the version
moved and the owners did not, the delete is retried on the uid alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubi.api import catalog
from kubi.api.catalog import ResourceType
from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.controllers.base import QueueController
from kubi.controllers.gc_graph import (
    ATTEMPT_TO_DELETE,
    ATTEMPT_TO_ORPHAN,
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    AbsentOwnerCache,
    Action,
    Classification,
    DependencyGraph,
    GraphNode,
    Identity,
    OwnerState,
    Work,
    decide,
    node_from_metadata,
    owner_state,
    ref_matches,
    remove_owner_refs_patch,
    unblock_owner_refs_patch,
    without_finalizer,
)
from kubi.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Events own nothing and are many: upstream's collector ignores them too.
IGNORED_RESOURCES = frozenset({("", "events"), ("events.k8s.io", "events")})
GC_WORKERS = 20
# How soon to look again at an object whose owner exists but is not yet in the graph.
UNOBSERVED_OWNER_RECHECK = 5.0
UNKNOWN_KIND_RECHECK = 60.0
FINALIZER_UPDATE_RETRIES = 5


def collected_resources() -> list[ResourceType]:
    """Every resource the collector watches: listable, watchable and deletable."""
    needed = {"list", "watch", "delete"}
    return [rt for rt in catalog.RESOURCES
            if (rt.group, rt.plural) not in IGNORED_RESOURCES and needed <= set(rt.verbs)]


def _resource_for(api_version: str, kind: str) -> Resource | None:
    rt = catalog.by_kind(api_version, kind)
    return Resource.from_type(rt) if rt is not None else None


class UnknownKind(Exception):
    """An ownerReference names a kind the catalog does not serve."""


class GarbageCollector(QueueController):
    name = "garbagecollector"
    workers = GC_WORKERS

    def __init__(self, ctx: ControllerContext, *,
                 resources: list[ResourceType] | None = None,
                 unobserved_owner_recheck: float = UNOBSERVED_OWNER_RECHECK) -> None:
        super().__init__()
        self.client = ctx.client
        self.graph = DependencyGraph()
        self.absent = AbsentOwnerCache()
        self.unobserved_owner_recheck = unobserved_owner_recheck
        for rt in resources if resources is not None else collected_resources():
            self._watch(ctx, rt)

    def _watch(self, ctx: ControllerContext, rt: ResourceType) -> None:
        informer = ctx.informers.get(Resource.from_type(rt))
        informer.on_add(lambda obj: self._observed(rt, obj))
        informer.on_update(lambda old, new: self._updated(rt, old, new))
        informer.on_delete(self._deleted)

    # ---- informer handlers: keep the graph, queue the work

    def _observed(self, rt: ResourceType, obj: Obj) -> None:
        node = node_from_metadata(rt.api_version, rt.kind, obj.get("metadata") or {})
        old = self.graph.get(node.identity.uid)
        if old is not None and old.identity == node.identity and old.owners == node.owners \
                and old.finalizers == node.finalizers and old.being_deleted == node.being_deleted:
            old.resource_version = node.resource_version  # nothing that matters changed
            return
        self._enqueue(self.graph.observe(node))

    def _updated(self, rt: ResourceType, old: Obj, new: Obj) -> None:
        old_md, new_md = old.get("metadata") or {}, new.get("metadata") or {}
        if old_md.get("uid") != new_md.get("uid"):
            self._deleted(old)  # deleted and re-created between two observations
        elif old_md.get("ownerReferences") == new_md.get("ownerReferences") \
                and old_md.get("finalizers") == new_md.get("finalizers") \
                and bool(old_md.get("deletionTimestamp")) == bool(new_md.get("deletionTimestamp")):
            # A status or spec change: nothing the graph holds moved.
            node = self.graph.get(new_md.get("uid", ""))
            if node is not None:
                node.resource_version = str(new_md.get("resourceVersion", ""))
                return
        self._observed(rt, new)

    def _deleted(self, obj: Obj) -> None:
        md = obj.get("metadata") or {}
        uid = md.get("uid", "")
        if uid in self.graph.dependents:
            self.absent.add(uid, md.get("namespace") or "")
        self._enqueue(self.graph.forget(uid))

    def _enqueue(self, work: list[Work]) -> None:
        for queue, uid in work:
            self.queue.add(f"{queue}:{uid}")

    # ---- workers

    async def sync(self, key: str) -> None:
        queue, _, uid = key.partition(":")
        node = self.graph.get(uid)
        if node is None:
            return  # gone since: its deletion event brought whatever work follows
        try:
            if queue == ATTEMPT_TO_ORPHAN:
                await self._attempt_to_orphan(node)
            else:
                await self._attempt_to_delete(key, node)
        except UnknownKind as err:
            log.warning("garbage collector: %s: %s; looking again later", node.identity, err)
            self.queue.add_after(key, UNKNOWN_KIND_RECHECK)

    async def _attempt_to_delete(self, key: str, node: GraphNode) -> None:
        if node.being_deleted and not node.deleting_dependents:
            return  # on its way out already: its dependents are handled once it is gone
        if node.deleting_dependents:
            await self._process_deleting_dependents(node)
            return
        if not node.owners:
            return
        found = await self._classify(node)
        if found is None:
            return
        dependents = self.graph.dependents_of(node.identity.uid)
        decision = decide(node, found.states, has_dependents=bool(dependents),
                          a_dependent_is_deleting_dependents=any(
                              d.deleting_dependents for d in dependents))
        if decision.action is Action.REMOVE_REFS:
            log.info("garbage collector: removing dangling references %s from %s",
                     ", ".join(decision.remove_uids), node.identity)
            await self._patch(node.identity,
                              remove_owner_refs_patch(node.identity.uid, decision.remove_uids))
        elif decision.action is Action.DELETE:
            if decision.unblock_first:
                patch = unblock_owner_refs_patch(node)
                if patch is not None:
                    await self._patch(node.identity, patch)
            log.info("garbage collector: deleting %s (propagationPolicy %s)", node.identity,
                     decision.policy)
            await self._delete(node, decision.policy or "Background")
        if found.unobserved_solid:
            # The owner exists but our informers have not shown it yet; should it
            # vanish before they do, only a second look would notice.
            self.queue.add_after(key, self.unobserved_owner_recheck)

    async def _classify(self, node: GraphNode) -> Classification | None:
        """Classify the owners; None when the references cannot be valid (leave it be)."""
        found = Classification()
        namespace = node.identity.namespace
        for ref in node.owners:
            uid = ref.get("uid", "")
            owner = self.graph.get(uid)
            if owner is not None and ref_matches(ref, owner.identity, namespace):
                state = OwnerState.WAITING if owner.deleting_dependents else OwnerState.SOLID
                found.states.append((ref, state))
                continue
            if self.absent.has(uid) or self.absent.has(uid, namespace):
                found.states.append((ref, OwnerState.DANGLING))
                continue
            resource = _resource_for(ref.get("apiVersion", ""), ref.get("kind", ""))
            if resource is None:
                raise UnknownKind(f"no resource for kind {ref.get('kind')!r} of apiVersion "
                                  f"{ref.get('apiVersion')!r}")
            if resource.namespaced and not namespace:
                log.info("garbage collector: %s is cluster-scoped but names a namespaced owner "
                         "%s; ignoring it", node.identity, ref.get("name"))
                return None
            owner_ns = namespace if resource.namespaced else ""
            try:
                live = await self.client.get(resource, ref.get("name", ""), owner_ns or None)
                live_md: Obj | None = live.get("metadata") or {}
            except StatusError as err:
                if err.code != 404:
                    raise
                live_md = None
            state = owner_state(live_md, ref)
            if state is OwnerState.DANGLING:
                self.absent.add(uid, owner_ns)
            else:
                found.unobserved_solid = True
            found.states.append((ref, state))
        return found

    async def _process_deleting_dependents(self, node: GraphNode) -> None:
        blocking = self.graph.blocking_dependents(node.identity.uid)
        if not blocking:
            log.info("garbage collector: no blocking dependents left, finalizing %s",
                     node.identity)
            await self._remove_finalizer(node.identity, FOREGROUND_FINALIZER)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.queue.add(f"{ATTEMPT_TO_DELETE}:{dep.identity.uid}")

    async def _attempt_to_orphan(self, owner: GraphNode) -> None:
        uid = owner.identity.uid

        async def orphan(dep: GraphNode) -> None:
            try:
                await self._patch(dep.identity, remove_owner_refs_patch(dep.identity.uid, [uid]))
            except StatusError as err:
                # 404: gone; 409: replaced by a namesake, which is a graph node of its own.
                if err.code not in (404, 409):
                    raise

        dependents = self.graph.dependents_of(uid)
        results = await asyncio.gather(*(orphan(dep) for dep in dependents),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        log.info("garbage collector: orphaned %d dependents of %s", len(dependents),
                 owner.identity)
        await self._remove_finalizer(owner.identity, ORPHAN_FINALIZER)

    # ---- API operations

    def _resource(self, identity: Identity) -> Resource:
        resource = _resource_for(identity.api_version, identity.kind)
        if resource is None:
            raise UnknownKind(f"no resource for {identity.api_version} {identity.kind}")
        return resource

    async def _patch(self, identity: Identity, patch: Obj) -> None:
        await self.client.patch(self._resource(identity), identity.name, patch,
                                identity.namespace or None, patch_type="strategic")

    async def _delete(self, node: GraphNode, policy: str) -> None:
        identity = node.identity
        resource = self._resource(identity)
        namespace = identity.namespace or None
        preconditions = {"uid": identity.uid}
        if node.resource_version:
            preconditions["resourceVersion"] = node.resource_version
        try:
            await self.client.delete(resource, identity.name, namespace,
                                     propagation_policy=policy, preconditions=preconditions)
            return
        except StatusError as err:
            if err.code == 404:
                return
            if err.code != 409 or "resourceVersion" not in preconditions:
                raise
            conflict = err
        # The object changed since the decision: delete anyway if its owners did not.
        try:
            live = await self.client.get(resource, identity.name, namespace)
        except StatusError as err:
            if err.code == 404:
                return
            raise
        md = live.get("metadata") or {}
        if md.get("uid") != identity.uid or (md.get("ownerReferences") or []) != node.owners:
            raise conflict
        try:
            await self.client.delete(resource, identity.name, namespace,
                                     propagation_policy=policy,
                                     preconditions={"uid": identity.uid})
        except StatusError as err:
            if err.code != 404:
                raise

    async def _remove_finalizer(self, identity: Identity, finalizer: str) -> None:
        resource = self._resource(identity)
        namespace = identity.namespace or None
        for attempt in range(FINALIZER_UPDATE_RETRIES):
            try:
                live = await self.client.get(resource, identity.name, namespace)
            except StatusError as err:
                if err.code == 404:
                    return
                raise
            md = live.get("metadata") or {}
            if md.get("uid") != identity.uid:
                return
            remaining = without_finalizer(md.get("finalizers") or (), finalizer)
            if remaining is None:
                return
            patch = {"metadata": {"finalizers": remaining,
                                  "resourceVersion": md.get("resourceVersion")}}
            try:
                await self.client.patch(resource, identity.name, patch, namespace,
                                        patch_type="merge")
                return
            except StatusError as err:
                if err.code == 404:
                    return
                if err.code != 409 or attempt == FINALIZER_UPDATE_RETRIES - 1:
                    raise


def garbagecollector_controller(ctx: ControllerContext) -> GarbageCollector:
    return GarbageCollector(ctx)

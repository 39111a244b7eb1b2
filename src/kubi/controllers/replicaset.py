"""The ReplicaSet and ReplicationController controllers: one implementation, two kinds.

Upstream treats a ReplicationController as an older spelling of a ReplicaSet;
so do we: `ReplicaKind` carries what differs (resource, apiVersion, how the
selector is read, the event source) and `ReplicaSetController` does the rest.

Handlers map pod and ReplicaSet changes to ReplicaSet keys and keep the
expectations current. `sync(key)` is level-triggered: it reads the cached
ReplicaSet and its candidate pods (those it controls, and orphans in its
namespace), claims them (adopt/release by labels), and, unless creations or
deletions of its own are still unobserved, creates pods in slow-start batches
or deletes the most deletable surplus (at most 500 either way per sync).
Whatever happened, it then writes status through the status subresource.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.selectors import (
    LabelSelector,
    SelectorParseError,
    selector_from_label_selector,
    selector_from_set,
)
from kubi.client.client import Resource
from kubi.client.informer import object_key
from kubi.controllers.base import QueueController
from kubi.controllers.events import NAMESPACE_TERMINATING_CAUSE, has_status_cause
from kubi.controllers.expectations import ControllerExpectations
from kubi.controllers.manager import ControllerContext
from kubi.controllers.ownership import (
    CONTROLLER_UID_INDEX,
    ORPHANS_INDEX,
    claim_pods,
    controller_of,
    controller_uid_index,
    new_controller_ref,
    orphan_index,
)
from kubi.controllers.podcontrol import (
    PODS,
    SLOW_START_INITIAL_BATCH_SIZE,
    PodControl,
    slow_start_batch,
)
from kubi.controllers.podutil import is_pod_ready, pods_to_delete
from kubi.controllers.podviews import PodView, PodViews
from kubi.controllers.replicaset_status import (
    calculate_status,
    count_views,
    desired_replicas,
    status_unchanged,
    with_observed_generation,
)

log = logging.getLogger(__name__)

BURST_REPLICAS = 500
POD_CHANGE_DELAY_PER_POD = 0.00005
STATUS_UPDATE_RETRIES = 1

Obj = dict[str, Any]


def _label_selector(obj: Obj) -> LabelSelector:
    return selector_from_label_selector((obj.get("spec") or {}).get("selector"))


def _set_selector(obj: Obj) -> LabelSelector:
    selector = (obj.get("spec") or {}).get("selector")
    # A missing selector converts to a nil LabelSelector upstream: it selects nothing.
    return LabelSelector(nothing=True) if selector is None else selector_from_set(selector)


@dataclass(frozen=True)
class ReplicaKind:
    kind: str
    api_version: str
    resource: Resource
    controller_name: str
    event_component: str
    selector: Callable[[Obj], LabelSelector]


REPLICASET = ReplicaKind(
    "ReplicaSet", "apps/v1", Resource("apps", "v1", "replicasets", True, "ReplicaSet"),
    "replicaset", "replicaset-controller", _label_selector)
REPLICATIONCONTROLLER = ReplicaKind(
    "ReplicationController", "v1",
    Resource("", "v1", "replicationcontrollers", True, "ReplicationController"),
    "replicationcontroller", "replication-controller", _set_selector)


def _key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


class ReplicaSetController(QueueController):
    workers = 5

    def __init__(self, ctx: ControllerContext, kind: ReplicaKind = REPLICASET, *,
                 burst_replicas: int = BURST_REPLICAS) -> None:
        self.name = kind.controller_name
        super().__init__()
        self.kind = kind
        self.client = ctx.client
        self.burst_replicas = burst_replicas
        self.expectations = ControllerExpectations()
        self.pod_control = PodControl(ctx.client, ctx.recorder(kind.event_component))
        self.owners = ctx.informers.get(kind.resource)
        self.owners.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.pods = ctx.informers.get(PODS)
        self.pods.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.pods.add_index(ORPHANS_INDEX, orphan_index)
        self.owners.on_add(self._owner_added)
        self.owners.on_update(self._owner_updated)
        self.owners.on_delete(self._owner_deleted)
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)
        self.pods.on_delete(lambda pod: self.views.forget(object_key(pod)))
        self.views = PodViews()
        self._selectors: dict[str, tuple[Any, LabelSelector]] = {}

    # ---- handlers: map changes to keys

    def _owner_added(self, owner: Obj) -> None:
        self.queue.add(object_key(owner))

    def _owner_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("uid") != cur["metadata"].get("uid"):
            self._owner_deleted(old)  # deleted and re-created between two observations
        self.queue.add(object_key(cur))

    def _owner_deleted(self, owner: Obj) -> None:
        key = object_key(owner)
        self.expectations.delete(key)
        self._selectors.pop(key, None)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: dict[str, Any]) -> Obj | None:
        if ref.get("kind") != self.kind.kind:
            return None
        owner = self.owners.get(_key(namespace, ref.get("name", "")))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return owner

    def _selecting_owners(self, pod: Obj) -> list[Obj]:
        owners = []
        for owner in self.owners.in_namespace(pod["metadata"].get("namespace", "")):
            try:
                selector = self.kind.selector(owner)
            except SelectorParseError:
                continue
            # An empty selector must select nothing here, not every orphan.
            if not selector.empty and selector.matches(_labels(pod)):
                owners.append(owner)
        return owners

    def _pod_added(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            # Seen for the first time already terminating: not the creation we wait for.
            self._pod_deleted(pod)
            return
        ref = controller_of(pod)
        if ref is not None:
            owner = self._resolve(pod["metadata"].get("namespace", ""), ref)
            if owner is not None:
                key = object_key(owner)
                waiting = not self.expectations.satisfied(key)
                self.expectations.creation_observed(key)
                self._observed(key, owner, waiting)
            return
        for owner in self._selecting_owners(pod):
            self.queue.add(object_key(owner))

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        labels_changed = _labels(old) != _labels(cur)
        if cur["metadata"].get("deletionTimestamp"):
            # Graceful deletion has begun: replace the pod now, not when it is gone.
            self._pod_deleted(cur)
            if labels_changed:
                self._pod_deleted(old)
            return
        namespace = cur["metadata"].get("namespace", "")
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self.queue.add(object_key(previous))
        if cur_ref is not None:
            owner = self._resolve(namespace, cur_ref)
            if owner is None:
                return
            key = object_key(owner)
            self._pod_changed(key, owner)
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                # Look again once the pod may have become available; the extra
                # second absorbs timestamp rounding.
                self.queue.add_after(key, min_ready + 1)
            return
        if labels_changed or ref_changed:
            for owner in self._selecting_owners(cur):
                self.queue.add(object_key(owner))

    def _pod_changed(self, key: str, owner: Obj) -> None:
        """A pod of `owner` changed (its status, mostly): sync soon, not at once.

        A sync reads every pod of its owner, so with thousands of pods each
        status change starting one would spend the controller on re-reading
        them. Changes are gathered for a moment that grows with the owner's
        size (0.05 ms a pod: half a second for 10,000); the creation or
        deletion that completes what the expectations wait for syncs at once.
        """
        pods = self.pods.count_by_index(CONTROLLER_UID_INDEX, owner["metadata"].get("uid", ""))
        self.queue.add_after(key, pods * POD_CHANGE_DELAY_PER_POD)

    def _pod_deleted(self, pod: Obj) -> None:
        ref = controller_of(pod)
        if ref is None:
            return
        owner = self._resolve(pod["metadata"].get("namespace", ""), ref)
        if owner is None:
            return
        key = object_key(owner)
        waiting = not self.expectations.satisfied(key)
        self.expectations.deletion_observed(key, object_key(pod))
        self._observed(key, owner, waiting)

    def _observed(self, key: str, owner: Obj, waiting: bool) -> None:
        """A pod of `owner` arrived or left: sync at once when it is the last one
        the expectations waited for (the moment the next burst may start), else
        gather it like a status change (for a small owner that is at once too).

        While a burst of 500 is being observed, a sync per pod would only
        recount statuses, and each of the three events of a graceful deletion
        would start one."""
        if waiting and self.expectations.satisfied(key):
            self.queue.add(key)
        else:
            self._pod_changed(key, owner)

    # ---- sync

    async def sync(self, key: str) -> None:
        started = time.monotonic()
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)
        try:
            selector = self._selector(key, owner)
        except SelectorParseError as err:
            log.error("%s %s: invalid selector: %s", self.kind.kind, key, err)
            return
        kept, others = self._candidates(owner, selector)
        adopted, errors = await claim_pods(
            others, owner=owner, controller_ref=self._controller_ref(owner), selector=selector,
            recheck_owner=lambda: self.client.get(self.kind.resource, owner["metadata"]["name"],
                                                  owner["metadata"]["namespace"]),
            patch=lambda pod, body: self.pod_control.patch_pod(
                pod["metadata"]["namespace"], pod["metadata"]["name"], body))
        if errors:
            raise errors[0]
        views = kept + [self.views.get(object_key(pod), pod) for pod in adopted]
        pods = [view.pod for view in views]

        manage_error: Exception | None = None
        if needs_sync and not owner["metadata"].get("deletionTimestamp"):
            manage_error = await self._manage_replicas(key, owner, pods)
        now = time.time()
        status = calculate_status(owner, pods, manage_error, now,
                                  counts=count_views(owner, views, now))
        updated = await self._update_status(owner, status)
        min_ready = int((updated.get("spec") or {}).get("minReadySeconds") or 0)
        new_status = updated.get("status") or {}
        if manage_error is None and min_ready > 0 \
                and (new_status.get("readyReplicas") or 0) == desired_replicas(updated) \
                and (new_status.get("availableReplicas") or 0) != desired_replicas(updated):
            # A last line of defence against clock skew hiding availability.
            self.queue.add_after(key, min_ready)
        log.debug("finished syncing %s %s in %.3fs", self.kind.kind, key,
                  time.monotonic() - started)
        if manage_error is not None:
            raise manage_error

    def _controller_ref(self, owner: Obj) -> dict[str, Any]:
        return new_controller_ref(owner, api_version=self.kind.api_version, kind=self.kind.kind)

    def _selector(self, key: str, owner: Obj) -> LabelSelector:
        """The owner's parsed selector, the same object for as long as it is unchanged
        (the pod views remember their match per selector object)."""
        raw = (owner.get("spec") or {}).get("selector")
        cached = self._selectors.get(key)
        if cached is not None and cached[0] == raw:
            return cached[1]
        selector = self.kind.selector(owner)
        self._selectors[key] = (raw, selector)
        return selector

    def _candidates(self, owner: Obj, selector: LabelSelector) -> tuple[list[PodView], list[Obj]]:
        """The active pods it controls whose labels it selects (kept as they are), and
        the rest to claim: its own that no longer match, and the orphans in its
        namespace. Others' pods are never claimable."""
        namespace = owner["metadata"].get("namespace", "")
        kept: list[PodView] = []
        others: list[Obj] = []
        for key, pod in self.pods.items_by_index(CONTROLLER_UID_INDEX, owner["metadata"]["uid"]):
            if pod["metadata"].get("namespace", "") != namespace:
                continue
            view = self.views.get(key, pod)
            if not view.active:
                continue
            if view.matches(selector):
                kept.append(view)
            else:
                others.append(pod)
        for key, pod in self.pods.items_by_index(ORPHANS_INDEX, namespace):
            if self.views.get(key, pod).active:
                others.append(pod)
        return kept, others

    async def _manage_replicas(self, key: str, owner: Obj, pods: list[Obj]) -> Exception | None:
        diff = len(pods) - desired_replicas(owner)
        if diff < 0:
            return await self._create(key, owner, min(-diff, self.burst_replicas))
        if diff > 0:
            return await self._delete(key, owner, pods, min(diff, self.burst_replicas))
        return None

    async def _create(self, key: str, owner: Obj, count: int) -> Exception | None:
        self.expectations.expect_creations(key, count)
        log.info("%s %s: too few replicas, need %d, creating %d", self.kind.kind, key,
                 desired_replicas(owner), count)
        namespace = owner["metadata"]["namespace"]
        template = (owner.get("spec") or {}).get("template") or {}
        controller_ref = self._controller_ref(owner)

        async def create_one() -> None:
            try:
                await self.pod_control.create_pod(
                    namespace, template, owner, controller_ref,
                    owner_kind=self.kind.kind, owner_api_version=self.kind.api_version)
            except StatusError as err:
                # Every create fails in a terminating namespace; nothing to retry.
                if not has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
                    raise

        successes, error = await slow_start_batch(count, SLOW_START_INITIAL_BATCH_SIZE,
                                                  create_one)
        # Pods never attempted (or failed) will never be observed: stop expecting them.
        for _ in range(count - successes):
            self.expectations.creation_observed(key)
        return error

    async def _delete(self, key: str, owner: Obj, pods: list[Obj], count: int) -> Exception | None:
        log.info("%s %s: too many replicas, need %d, deleting %d", self.kind.kind, key,
                 desired_replicas(owner), count)
        victims = pods_to_delete(pods, self._indirectly_related_pods(owner), count, time.time())
        self.expectations.expect_deletions(key, [object_key(pod) for pod in victims])
        errors: list[Exception] = []

        async def delete_one(pod: Obj) -> None:
            try:
                await self.pod_control.delete_pod(
                    pod["metadata"]["namespace"], pod["metadata"]["name"], owner,
                    owner_kind=self.kind.kind, owner_api_version=self.kind.api_version)
            except Exception as exc:  # noqa: BLE001 - any failure means no deletion to observe
                self.expectations.deletion_observed(key, object_key(pod))
                if not (isinstance(exc, StatusError) and exc.code == 404):
                    errors.append(exc)

        await asyncio.gather(*(delete_one(pod) for pod in victims))
        return errors[0] if errors else None

    def _indirectly_related_pods(self, owner: Obj) -> list[Obj]:
        """Pods of every ReplicaSet sharing this one's controller (a Deployment's
        history): those each sibling controls, and the orphans its selector matches.
        Read through the indexes, so a rollout of 10,000 pods does not scan them all."""
        ref = controller_of(owner)
        if ref is None:
            return []
        namespace = owner["metadata"].get("namespace", "")
        orphans = self.pods.by_index(ORPHANS_INDEX, namespace)
        related: dict[str, Obj] = {}
        for sibling in self.owners.by_index(CONTROLLER_UID_INDEX, ref.get("uid", "")):
            try:
                selector = self.kind.selector(sibling)
            except SelectorParseError:
                continue
            controlled = self.pods.by_index(CONTROLLER_UID_INDEX, sibling["metadata"]["uid"])
            for pod in controlled + orphans:
                if pod["metadata"].get("namespace", "") == namespace \
                        and selector.matches(_labels(pod)):
                    related.setdefault(pod["metadata"].get("uid", object_key(pod)), pod)
        return list(related.values())

    async def _update_status(self, owner: Obj, status: dict[str, Any]) -> Obj:
        if status_unchanged(owner, status):
            return owner
        md = owner["metadata"]
        # Record the generation this sync acted on, even when retrying on a newer copy.
        status = with_observed_generation(owner, status)
        # Objects from a list come without apiVersion and kind; a PUT names both.
        typed = {"apiVersion": self.kind.api_version, "kind": self.kind.kind}
        body = {**typed, **owner, "status": status}
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            try:
                return await self.client.replace(self.kind.resource, body, subresource="status")
            except StatusError:
                if attempt >= STATUS_UPDATE_RETRIES:
                    raise
            # Retry once on the latest version, keeping the status computed above.
            fresh = await self.client.get(self.kind.resource, md["name"], md["namespace"])
            body = {**typed, **fresh, "status": status}
        return owner


def replicaset_controller(ctx: ControllerContext) -> ReplicaSetController:
    return ReplicaSetController(ctx, REPLICASET)


def replication_controller(ctx: ControllerContext) -> ReplicaSetController:
    return ReplicaSetController(ctx, REPLICATIONCONTROLLER)

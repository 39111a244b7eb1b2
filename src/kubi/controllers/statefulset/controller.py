"""The StatefulSet controller: informer handlers, claiming pods, the sync loop.

Handlers map StatefulSet and pod changes to set keys as upstream's do: a pod
names its set through its controller ownerReference; an orphan wakes every
set whose selector matches it. `sync(key)` adopts orphaned revisions, claims
the pods named `<set>-<ordinal>` and hands them to `StatefulSetControl`.
A sync that ran before the informer showed the previous sync's pod writes
would repeat them and record spurious failures, so `PendingWrites` holds a
set back until each pod write it made has been seen (or a minute passed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.selectors import LabelSelector, SelectorParseError, selector_from_label_selector
from kubi.client.informer import object_key
from kubi.controllers.base import QueueController
from kubi.controllers.manager import ControllerContext
from kubi.controllers.ownership import (
    CONTROLLER_UID_INDEX,
    ORPHANS_INDEX,
    claim_pods,
    controller_of,
    controller_uid_index,
    orphan_index,
    release_patch,
)
from kubi.controllers.podcontrol import PODS, PodControl
from kubi.controllers.podutil import is_pod_ready
from kubi.controllers.statefulset.control import STATEFULSETS, StatefulSetControl
from kubi.controllers.statefulset.history import CONTROLLER_REVISIONS, ControllerHistory
from kubi.controllers.statefulset.identity import (
    KIND,
    controller_ref,
    is_member,
    labels_of,
    min_ready_seconds,
    replicas,
    uid_of,
)
from kubi.controllers.statefulset.statefulpods import PVCS, StatefulPodControl

log = logging.getLogger(__name__)

Obj = dict[str, Any]

EVENT_COMPONENT = "statefulset-controller"
PENDING_WRITE_TIMEOUT = 60.0


class PendingWrites:
    """Pod creations and deletions a set made that the pod informer has not shown yet."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 timeout: float = PENDING_WRITE_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._writes: dict[tuple[str, str], tuple[str, float]] = {}

    def expect(self, sts: Obj, pod: Obj, verb: str) -> None:
        self._writes[(object_key(pod), verb)] = (object_key(sts), self._clock() + self._timeout)

    def failed(self, pod: Obj, verb: str) -> None:
        self._writes.pop((object_key(pod), verb), None)

    def observed(self, pod_key: str, verb: str) -> str | None:
        """Forget a write now seen; returns the key of the set that made it."""
        entry = self._writes.pop((pod_key, verb), None)
        return entry[0] if entry else None

    def waiting(self, sts_key: str) -> bool:
        now = self._clock()
        for key, (owner, deadline) in list(self._writes.items()):
            if deadline <= now:
                del self._writes[key]
            elif owner == sts_key:
                return True
        return False

    def forget(self, sts_key: str) -> None:
        for key, (owner, _) in list(self._writes.items()):
            if owner == sts_key:
                del self._writes[key]


class StatefulSetController(QueueController):
    name = "statefulset"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        recorder = ctx.recorder(EVENT_COMPONENT)
        self.sets = ctx.informers.get(STATEFULSETS)
        self.pods = ctx.informers.get(PODS)
        self.pods.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.pods.add_index(ORPHANS_INDEX, orphan_index)
        claims = ctx.informers.get(PVCS)
        revisions = ctx.informers.get(CONTROLLER_REVISIONS)
        self.pending = PendingWrites()
        self.pod_patcher = PodControl(ctx.client, recorder)
        self.stateful_pods = StatefulPodControl(ctx.client, recorder, pods=self.pods,
                                                claims=claims)
        self.history = ControllerHistory(ctx.client, revisions)
        self.control = StatefulSetControl(ctx.client, self.stateful_pods, self.history,
                                          self.pending)
        self.sets.on_add(self._enqueue)
        self.sets.on_update(lambda old, cur: self._enqueue(cur))
        self.sets.on_delete(self._set_deleted)
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)

    # ---- handlers

    def _enqueue(self, sts: Obj) -> None:
        self.queue.add(object_key(sts))

    def _set_deleted(self, sts: Obj) -> None:
        self.pending.forget(object_key(sts))
        self._enqueue(sts)

    def _resolve(self, namespace: str, ref: Obj) -> Obj | None:
        if ref.get("kind") != KIND:
            return None
        sts = self.sets.get(f"{namespace}/{ref.get('name', '')}")
        if sts is None or uid_of(sts) != ref.get("uid"):
            return None
        return sts

    def _sets_selecting(self, pod: Obj) -> list[Obj]:
        found = []
        for sts in self.sets.in_namespace(pod["metadata"].get("namespace", "")):
            try:
                selector = selector_from_label_selector((sts.get("spec") or {}).get("selector"))
            except SelectorParseError:
                continue
            if not selector.empty and selector.matches(labels_of(pod)):
                found.append(sts)
        if len(found) > 1:
            log.error("user error: more than one StatefulSet is selecting pods with labels: "
                      "%s. Sets: %s", labels_of(pod), [s["metadata"]["name"] for s in found])
        return found

    def _observed(self, pod: Obj, verb: str) -> None:
        owner = self.pending.observed(object_key(pod), verb)
        if owner is not None:
            self.queue.add(owner)

    def _pod_added(self, pod: Obj) -> None:
        self._observed(pod, "create")
        if pod["metadata"].get("deletionTimestamp"):
            # Seen for the first time already terminating: treat as a deletion.
            self._pod_deleted(pod)
            return
        ref = controller_of(pod)
        if ref is not None:
            sts = self._resolve(pod["metadata"].get("namespace", ""), ref)
            if sts is not None:
                self._enqueue(sts)
            return
        for sts in self._sets_selecting(pod):
            self._enqueue(sts)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        if cur["metadata"].get("deletionTimestamp"):
            self._observed(cur, "delete")
        namespace = cur["metadata"].get("namespace", "")
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        if cur_ref != old_ref and old_ref is not None:
            previous = self._resolve(namespace, old_ref)
            if previous is not None:
                self._enqueue(previous)
        if cur_ref is not None:
            sts = self._resolve(namespace, cur_ref)
            if sts is None:
                return
            self._enqueue(sts)
            min_ready = min_ready_seconds(sts)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                # Look again once the pod may count as available; the extra
                # second absorbs timestamp rounding.
                self.queue.add_after(object_key(sts), min_ready + 1)
            return
        if labels_of(old) != labels_of(cur) or cur_ref != old_ref:
            for sts in self._sets_selecting(cur):
                self._enqueue(sts)

    def _pod_deleted(self, pod: Obj) -> None:
        self._observed(pod, "delete")
        ref = controller_of(pod)
        if ref is None:
            return
        sts = self._resolve(pod["metadata"].get("namespace", ""), ref)
        if sts is not None:
            self._enqueue(sts)

    # ---- sync

    async def sync(self, key: str) -> None:
        started = time.monotonic()
        sts = self.sets.get(key)
        if sts is None:
            log.info("StatefulSet %s has been deleted", key)
            self.pending.forget(key)
            return
        if self.pending.waiting(key):
            # The informer event for our last pod write brings the key back; the
            # timer is for the event that never comes.
            self.queue.add_after(key, PENDING_WRITE_TIMEOUT)
            return
        try:
            selector = selector_from_label_selector((sts.get("spec") or {}).get("selector"))
        except SelectorParseError as err:
            log.error("error converting StatefulSet %s selector: %s", key, err)
            return
        revisions = self.history.revisions_of(sts, selector)
        await self.history.adopt_orphans(sts, revisions, lambda: self._recheck(sts))
        pods = await self._claim_pods(sts, selector)
        status = await self.control.update(sts, pods, selector)
        min_ready = min_ready_seconds(sts)
        if min_ready > 0 and status.available_replicas != replicas(sts):
            # One more look once pods may have become available (clock skew, too).
            self.queue.add_after(key, min_ready)
        log.debug("finished syncing StatefulSet %s in %.3fs", key, time.monotonic() - started)

    async def _recheck(self, sts: Obj) -> Obj:
        """A fresh read of the set, refusing adoption if it is gone or going."""
        md = sts["metadata"]
        fresh = await self.client.get(STATEFULSETS, md["name"], md.get("namespace"))
        if uid_of(fresh) != uid_of(sts):
            raise RuntimeError(f"original StatefulSet {md.get('namespace')}/{md['name']} is "
                               f"gone: got uid {uid_of(fresh)}, wanted {uid_of(sts)}")
        if fresh["metadata"].get("deletionTimestamp"):
            raise RuntimeError(f"{md.get('namespace')}/{md['name']} has just been deleted at "
                               f"{fresh['metadata']['deletionTimestamp']}")
        return fresh

    async def _claim_pods(self, sts: Obj, selector: LabelSelector) -> list[Obj]:
        """The set's pods: owned and selected members, orphaned members adopted.

        Only pods named after the set can be its members; one it owns under
        another name is released.
        """
        namespace = sts["metadata"].get("namespace", "")
        owned = [pod for pod in self.pods.by_index(CONTROLLER_UID_INDEX, uid_of(sts))
                 if pod["metadata"].get("namespace", "") == namespace]
        candidates = owned + self.pods.by_index(ORPHANS_INDEX, namespace)
        members = [pod for pod in candidates if is_member(sts, pod)]
        for stranger in (pod for pod in owned if not is_member(sts, pod)):
            try:
                await self.pod_patcher.patch_pod(namespace, stranger["metadata"]["name"],
                                                 release_patch(uid_of(sts), uid_of(stranger)))
            except StatusError as err:
                # Gone, or refusing the patch while being deleted: released either way.
                if err.code not in (404, 422):
                    raise
        claimed, errors = await claim_pods(
            members, owner=sts, controller_ref=controller_ref(sts), selector=selector,
            recheck_owner=lambda: self._recheck(sts),
            patch=lambda pod, body: self.pod_patcher.patch_pod(
                namespace, pod["metadata"]["name"], body))
        if errors:
            raise errors[0]
        return claimed


def statefulset_controller(ctx: ControllerContext) -> StatefulSetController:
    return StatefulSetController(ctx)

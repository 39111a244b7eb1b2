"""The Deployment controller: informer handlers that map changes to Deployment keys,
and `sync(key)`, which decides what a Deployment needs and hands it to a step.

Handlers: a Deployment change queues that Deployment; a ReplicaSet change
queues its controlling Deployment (or, for an orphan, every Deployment whose
selector matches it, to adopt it); a pod deletion queues a Recreate
Deployment once its last pod is gone. Nothing else about pods matters here:
the ReplicaSet controller turns pod changes into ReplicaSet status, which
comes back through the ReplicaSet handlers.

`sync` reads the cached Deployment, claims its ReplicaSets (adopting orphans
its selector matches, releasing those it no longer matches), then, in
upstream's order: status only while it is being deleted; scaling without
rolling forward while paused or when spec.replicas changed; otherwise the
strategy's rollout (rolling.py, recreate.py). Rollbacks need nothing here:
`kubectl rollout undo` puts an old template back and the rollout reuses its
ReplicaSet.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.selectors import LabelSelector, SelectorParseError, selector_from_label_selector
from kubi.client.informer import object_key
from kubi.controllers.base import QueueController
from kubi.controllers.deployment import plans
from kubi.controllers.deployment.actions import DEPLOYMENTS, REPLICASETS, DeploymentActions
from kubi.controllers.deployment.recreate import rollout_recreate
from kubi.controllers.deployment.rolling import rollout_rolling
from kubi.controllers.deployment.sync import (
    check_paused_conditions,
    get_all_replica_sets_and_sync_revision,
    sync_status_only,
    sync_without_rollout,
    writable_status,
)
from kubi.controllers.deployment.util import (
    RECREATE,
    ROLLING_UPDATE,
    Obj,
    is_deleting,
    spec,
    status,
    strategy_type,
)
from kubi.controllers.events import NAMESPACE_TERMINATING_CAUSE, WARNING, has_status_cause
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
from kubi.controllers.podcontrol import PODS

log = logging.getLogger(__name__)

EVENT_COMPONENT = "deployment-controller"


def _labels(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


class DeploymentController(QueueController):
    name = "deployment"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.actions = DeploymentActions(ctx.client, ctx.recorder(EVENT_COMPONENT), self.queue)
        self.deployments = ctx.informers.get(DEPLOYMENTS)
        self.replica_sets = ctx.informers.get(REPLICASETS)
        self.replica_sets.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.replica_sets.add_index(ORPHANS_INDEX, orphan_index)
        self.pods = ctx.informers.get(PODS)
        self.pods.add_index(CONTROLLER_UID_INDEX, controller_uid_index)
        self.deployments.on_add(self._deployment_changed)
        self.deployments.on_update(lambda old, cur: self._deployment_changed(cur))
        self.deployments.on_delete(self._deployment_changed)
        self.replica_sets.on_add(self._replica_set_added)
        self.replica_sets.on_update(self._replica_set_updated)
        self.replica_sets.on_delete(self._replica_set_deleted)
        self.pods.on_delete(self._pod_deleted)

    # ---- handlers: map changes to keys

    def _deployment_changed(self, d: Obj) -> None:
        self.queue.add(object_key(d))

    def _resolve(self, namespace: str, ref: dict[str, Any]) -> Obj | None:
        """The Deployment a controller reference points at, if it still exists."""
        if ref.get("kind") != "Deployment":
            return None
        d = self.deployments.get(f"{namespace}/{ref.get('name', '')}")
        if d is None or d["metadata"].get("uid") != ref.get("uid"):
            return None
        return d

    def _selecting_deployments(self, rs: Obj) -> list[Obj]:
        labels = _labels(rs)
        if not labels:
            return []
        found = []
        for d in self.deployments.in_namespace(_namespace(rs)):
            try:
                selector = selector_from_label_selector(spec(d).get("selector"))
            except SelectorParseError:
                continue
            # A Deployment with an empty selector must adopt nothing, not everything.
            if not selector.empty and selector.matches(labels):
                found.append(d)
        return found

    def _enqueue(self, d: Obj | None) -> None:
        if d is not None:
            self.queue.add(object_key(d))

    def _replica_set_added(self, rs: Obj) -> None:
        if is_deleting(rs):
            # Seen for the first time already going (say, after a restart).
            self._replica_set_deleted(rs)
            return
        ref = controller_of(rs)
        if ref is not None:
            self._enqueue(self._resolve(_namespace(rs), ref))
            return
        for d in self._selecting_deployments(rs):
            self._enqueue(d)

    def _replica_set_updated(self, old: Obj, cur: Obj) -> None:
        if old["metadata"].get("resourceVersion") == cur["metadata"].get("resourceVersion"):
            return
        cur_ref, old_ref = controller_of(cur), controller_of(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            self._enqueue(self._resolve(_namespace(old), old_ref))
        if cur_ref is not None:
            self._enqueue(self._resolve(_namespace(cur), cur_ref))
            return
        if ref_changed or _labels(old) != _labels(cur):
            for d in self._selecting_deployments(cur):
                self._enqueue(d)

    def _replica_set_deleted(self, rs: Obj) -> None:
        ref = controller_of(rs)
        if ref is not None:
            self._enqueue(self._resolve(_namespace(rs), ref))

    def _deployment_for_pod(self, pod: Obj) -> Obj | None:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        rs = self.replica_sets.get(f"{_namespace(pod)}/{ref.get('name', '')}")
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        rs_ref = controller_of(rs)
        return self._resolve(_namespace(rs), rs_ref) if rs_ref is not None else None

    def _pod_deleted(self, pod: Obj) -> None:
        d = self._deployment_for_pod(pod)
        if d is None or strategy_type(d) != RECREATE:
            return
        # Index lookups only: this runs for every pod a big Recreate removes.
        if not any(self.pods.by_index(CONTROLLER_UID_INDEX, rs["metadata"].get("uid", ""))
                   for rs in self._owned_replica_sets(d)):
            self.queue.add(object_key(d))

    # ---- reads from the caches

    def _owned_replica_sets(self, d: Obj) -> list[Obj]:
        namespace = _namespace(d)
        return [rs for rs in self.replica_sets.by_index(CONTROLLER_UID_INDEX,
                                                        d["metadata"].get("uid", ""))
                if _namespace(rs) == namespace]

    def _pods_by_replica_set(self, d: Obj, rs_list: list[Obj]) -> dict[str, list[Obj]]:
        """The Deployment's pods, grouped by the UID of the ReplicaSet controlling them."""
        try:
            selector = selector_from_label_selector(spec(d).get("selector"))
        except SelectorParseError:
            return {}
        namespace = _namespace(d)
        grouped: dict[str, list[Obj]] = {}
        for rs in rs_list:
            uid = rs["metadata"].get("uid", "")
            grouped[uid] = [pod for pod in self.pods.by_index(CONTROLLER_UID_INDEX, uid)
                            if _namespace(pod) == namespace and selector.matches(_labels(pod))]
        return grouped

    async def _claim_replica_sets(self, d: Obj, selector: LabelSelector) -> list[Obj]:
        """The ReplicaSets the Deployment controls, after adopting and releasing by labels."""
        md = d["metadata"]
        namespace = md["namespace"]
        candidates = self._owned_replica_sets(d) + self.replica_sets.by_index(ORPHANS_INDEX,
                                                                               namespace)
        claimed, errors = await claim_pods(
            candidates, owner=d,
            controller_ref=new_controller_ref(d, api_version="apps/v1", kind="Deployment"),
            selector=selector,
            recheck_owner=lambda: self.client.get(DEPLOYMENTS, md["name"], namespace),
            patch=lambda rs, body: self.client.patch(REPLICASETS, rs["metadata"]["name"], body,
                                                     namespace, patch_type="strategic"))
        if errors:
            raise errors[0]
        # Copies: the steps modify what they are given, the cache must stay as it is.
        return [copy.deepcopy(rs) for rs in claimed]

    # ---- sync

    async def sync(self, key: str) -> None:
        started = time.monotonic()
        cached = self.deployments.get(key)
        if cached is None:
            self.actions.forget(DEPLOYMENTS, key)
            log.debug("deployment %s has been deleted", key)
            return
        if self.actions.cache_is_stale(DEPLOYMENTS, cached):
            # The watch has yet to deliver our own last write; it requeues the key.
            return
        d = copy.deepcopy(cached)
        try:
            selector = selector_from_label_selector(spec(d).get("selector"))
        except SelectorParseError as err:
            log.error("deployment %s has invalid label selector: %s", key, err)
            return
        if selector.empty:
            await self._refuse_selecting_all(d)
            return
        try:
            rs_list = await self._claim_replica_sets(d, selector)
            if any(self.actions.cache_is_stale(REPLICASETS, rs) for rs in rs_list):
                return  # likewise for a ReplicaSet: its update brings the Deployment back
            await self._sync_deployment(d, rs_list)
        except StatusError as err:
            # Every write fails in a namespace being deleted: nothing to retry.
            if not has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
                raise
        log.debug("finished syncing deployment %s in %.3fs", key, time.monotonic() - started)

    async def _sync_deployment(self, d: Obj, rs_list: list[Obj]) -> None:
        act = self.actions
        if is_deleting(d):
            await sync_status_only(act, d, rs_list)
            return
        await check_paused_conditions(act, d)
        new_rs, old_rss = await get_all_replica_sets_and_sync_revision(act, d, rs_list, False)
        # The steps below start from these: the new ReplicaSet's revision is
        # already brought up to date, so they do not write it again from a
        # stale copy (which would only fail with a Conflict).
        rs_list = [*old_rss, new_rs] if new_rs is not None else old_rss
        if spec(d).get("paused") or plans.is_scaling_event(d, new_rs, old_rss):
            await sync_without_rollout(act, d, rs_list)
            return
        kind = strategy_type(d)
        if kind == RECREATE:
            await rollout_recreate(act, d, rs_list, self._pods_by_replica_set(d, rs_list))
        elif kind == ROLLING_UPDATE:
            await rollout_rolling(act, d, rs_list)
        else:
            raise ValueError(f"unexpected deployment strategy type: {kind}")

    async def _refuse_selecting_all(self, d: Obj) -> None:
        self.actions.event(d, WARNING, "SelectingAll",
                           "This deployment is selecting all pods. A non-empty selector is "
                           "required.")
        generation = d["metadata"].get("generation") or 0
        if (status(d).get("observedGeneration") or 0) < generation:
            writable_status(d)["observedGeneration"] = generation
            await self.actions.save_deployment(d)


def deployment_controller(ctx: ControllerContext) -> DeploymentController:
    return DeploymentController(ctx)

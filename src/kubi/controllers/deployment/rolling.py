"""The RollingUpdate strategy: grow the new ReplicaSet, shrink the old ones.

`rollout_rolling` scales the new ReplicaSet up if the surge budget allows;
if it did not, it scales old ReplicaSets down as far as availability allows;
if neither moved and the rollout is complete, it trims the revision history;
and in every case it reports status. Each pass takes one step: the step's
writes change ReplicaSets, whose updates bring the Deployment back for the
next step.

With 3 replicas and the default 25% / 25%, maxSurge rounds up to 1 and
maxUnavailable down to 0: new 0→1, then (once that pod is available) old
3→2, new 1→2, old 2→1, new 2→3, old 1→0; never more than 4 pods, never
fewer than 3 available.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from kubi.controllers.deployment import plans
from kubi.controllers.deployment.actions import DeploymentActions
from kubi.controllers.deployment.progress import sync_rollout_status
from kubi.controllers.deployment.sync import (
    cleanup_deployment,
    get_all_replica_sets_and_sync_revision,
    scale_replica_set_and_record_event,
)
from kubi.controllers.deployment.util import (
    Obj,
    deployment_complete,
    filter_active,
    new_rs_new_replicas,
    replica_count,
    replicas,
    status,
)


async def rollout_rolling(act: DeploymentActions, d: Obj, rs_list: Sequence[Obj]) -> None:
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(act, d, rs_list, True)
    if new_rs is None:
        raise RuntimeError(f"no new replica set for deployment {d['metadata']['name']}")
    all_rss = [*old_rss, new_rs]
    if await reconcile_new_replica_set(act, all_rss, new_rs, d):
        await sync_rollout_status(act, all_rss, new_rs, d)
        return
    if await reconcile_old_replica_sets(act, all_rss, filter_active(old_rss), new_rs, d):
        await sync_rollout_status(act, all_rss, new_rs, d)
        return
    if deployment_complete(d, status(d)):
        await cleanup_deployment(act, old_rss, d)
    await sync_rollout_status(act, all_rss, new_rs, d)


async def reconcile_new_replica_set(act: DeploymentActions, all_rss: Sequence[Obj],
                                    new_rs: Obj, d: Obj) -> bool:
    """Scale the new ReplicaSet toward the desired count; True when it changed size."""
    if replicas(new_rs) == replicas(d):
        return False
    if replicas(new_rs) > replicas(d):
        scaled, _ = await scale_replica_set_and_record_event(act, new_rs, replicas(d), d)
        return scaled
    target = new_rs_new_replicas(d, all_rss, new_rs)
    scaled, _ = await scale_replica_set_and_record_event(act, new_rs, target, d)
    return scaled


async def reconcile_old_replica_sets(act: DeploymentActions, all_rss: Sequence[Obj],
                                     old_rss: Sequence[Obj], new_rs: Obj, d: Obj) -> bool:
    """Scale old ReplicaSets down within maxUnavailable; True when any shrank."""
    if replica_count(old_rss) == 0:
        return False
    budget = plans.max_scaled_down(d, all_rss, new_rs)
    if budget <= 0:
        return False
    old = [copy.deepcopy(rs) for rs in old_rss]
    cleaned = 0
    for step in plans.unhealthy_cleanup_plan(old, budget):
        _, updated = await scale_replica_set_and_record_event(act, step.rs, step.replicas, d)
        cleaned += replicas(step.rs) - step.replicas
        old = [updated if rs is step.rs else rs for rs in old]
    scaled_down = 0
    for step in plans.rolling_scale_down_plan(d, [*old, new_rs], old):
        await scale_replica_set_and_record_event(act, step.rs, step.replicas, d)
        scaled_down += replicas(step.rs) - step.replicas
    return cleaned + scaled_down > 0

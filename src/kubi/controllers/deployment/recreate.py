"""The Recreate strategy: every old pod gone before any new pod exists.

`rollout_recreate` scales all old ReplicaSets to zero, then waits until none
of their pods is left running (pods of the new ReplicaSet and finished pods
do not count), and only then creates the new ReplicaSet (it is not even
created earlier, so nothing scales up too soon) and sizes it to the desired
count. Pod deletions bring the Deployment back (see the controller's pod
handler) once the last old pod is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    replicas,
    status,
)


async def rollout_recreate(act: DeploymentActions, d: Obj, rs_list: Sequence[Obj],
                           pods_by_rs: Mapping[str, Sequence[Obj]]) -> None:
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(act, d, rs_list, False)
    all_rss: list[Obj | None] = [*old_rss, new_rs]
    if await scale_down_old_replica_sets(act, filter_active(old_rss), d):
        await sync_rollout_status(act, all_rss, new_rs, d)
        return
    if plans.old_pods_running(new_rs, old_rss, pods_by_rs):
        await sync_rollout_status(act, all_rss, new_rs, d)
        return
    if new_rs is None:
        new_rs, old_rss = await get_all_replica_sets_and_sync_revision(act, d, rs_list, True)
        all_rss = [*old_rss, new_rs]
    if new_rs is None:
        raise RuntimeError(f"no new replica set for deployment {d['metadata']['name']}")
    await scale_replica_set_and_record_event(act, new_rs, replicas(d), d)
    if deployment_complete(d, status(d)):
        await cleanup_deployment(act, old_rss, d)
    await sync_rollout_status(act, all_rss, new_rs, d)


async def scale_down_old_replica_sets(act: DeploymentActions, old_rss: Sequence[Obj],
                                      d: Obj) -> bool:
    scaled = False
    for rs in old_rss:
        if replicas(rs) == 0:
            continue
        resized, _ = await scale_replica_set_and_record_event(act, rs, 0, d)
        scaled = scaled or resized
    return scaled

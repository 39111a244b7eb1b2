"""The steps every Deployment sync shares: find or create the new ReplicaSet, scale,
clean up history, report status.

`get_all_replica_sets_and_sync_revision` splits the owned ReplicaSets into the
new one and the old ones, and keeps revisions in order: the new ReplicaSet's
revision becomes one above every old one (a rollback lifts an old ReplicaSet
this way) and the Deployment's revision annotation follows it. Creating the
new ReplicaSet sizes it with `new_rs_new_replicas`, names it after the
template hash, and on a name taken by a foreign template bumps
collisionCount so the next try hashes differently.

`sync_without_rollout` is what a paused Deployment, or one merely resized,
gets: replicas follow spec.replicas (proportionally across ReplicaSets in a
rolling update) and nothing rolls forward.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

from kubi.api.errors import StatusError
from kubi.controllers.deployment import plans
from kubi.controllers.deployment.actions import DeploymentActions
from kubi.controllers.deployment.conditions import (
    FAILED_RS_CREATE,
    FALSE,
    FOUND_NEW_RS,
    NEW_REPLICA_SET,
    PAUSED,
    PROGRESSING,
    RESUMED,
    TIMED_OUT,
    TRUE,
    UNKNOWN,
    get_condition,
    new_condition,
    set_condition,
)
from kubi.controllers.deployment.replicasets import (
    equal_ignore_hash,
    find_new_replica_set,
    find_old_replica_sets,
    max_revision,
    new_replica_set,
    replicas_annotations_need_update,
    set_deployment_revision,
    set_new_replica_set_annotations,
    set_replicas_annotations,
)
from kubi.controllers.deployment.status import calculate_status, same_status
from kubi.controllers.deployment.util import (
    REVISION,
    Obj,
    annotations_of,
    has_progress_deadline,
    max_surge,
    new_rs_new_replicas,
    replicas,
    spec,
    status,
)
from kubi.controllers.events import (
    NAMESPACE_TERMINATING_CAUSE,
    NORMAL,
    WARNING,
    has_status_cause,
)
from kubi.controllers.ownership import controller_of, new_controller_ref

log = logging.getLogger(__name__)

SCALING_REPLICA_SET = "ScalingReplicaSet"


def writable_status(d: Obj) -> Obj:
    if not isinstance(d.get("status"), dict):
        d["status"] = {}
    result: Obj = d["status"]
    return result


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


# ---- the new ReplicaSet and revisions


async def get_all_replica_sets_and_sync_revision(
        act: DeploymentActions, d: Obj, rs_list: Sequence[Obj],
        create: bool) -> tuple[Obj | None, list[Obj]]:
    """(the new ReplicaSet or None, the old ones), creating the new one if `create`."""
    _, old_rss = find_old_replica_sets(d, rs_list)
    new_rs = await get_new_replica_set(act, d, rs_list, old_rss, create)
    return new_rs, old_rss


async def get_new_replica_set(act: DeploymentActions, d: Obj, rs_list: Sequence[Obj],
                              old_rss: Sequence[Obj], create: bool) -> Obj | None:
    new_revision = str(max_revision(old_rss) + 1)
    existing = find_new_replica_set(d, rs_list)
    if existing is not None:
        return await _sync_existing(act, d, existing, new_revision)
    if not create:
        return None
    return await _create_new(act, d, old_rss, new_revision)


async def _sync_existing(act: DeploymentActions, d: Obj, existing: Obj,
                         new_revision: str) -> Obj:
    rs = copy.deepcopy(existing)
    annotations_changed = set_new_replica_set_annotations(d, rs, new_revision, exists=True)
    min_ready = spec(d).get("minReadySeconds") or 0
    if annotations_changed or (spec(rs).get("minReadySeconds") or 0) != min_ready:
        if min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
        else:
            rs["spec"].pop("minReadySeconds", None)
        # The Deployment's revision follows on the sync this update triggers.
        return await act.update_replica_set(rs)
    revision_changed = set_deployment_revision(d, annotations_of(rs).get(REVISION, ""))
    status_changed = False
    if has_progress_deadline(d) and get_condition(status(d), PROGRESSING) is None:
        # Progress is estimated from the first time this ReplicaSet is noticed.
        set_condition(writable_status(d), new_condition(
            PROGRESSING, TRUE, FOUND_NEW_RS, f'Found new replica set "{_name(rs)}"', act.now()))
        status_changed = True
    if revision_changed or status_changed:
        await act.save_deployment(d, revision=revision_changed)
    return rs


async def _create_new(act: DeploymentActions, d: Obj, old_rss: Sequence[Obj],
                      new_revision: str) -> Obj:
    rs = new_replica_set(d, new_controller_ref(d, api_version="apps/v1", kind="Deployment"))
    count = new_rs_new_replicas(d, [*old_rss, rs], rs)
    rs["spec"]["replicas"] = count
    set_new_replica_set_annotations(d, rs, new_revision, exists=False)
    name = _name(rs)
    already_exists = False
    try:
        created = await act.create_replica_set(rs)
    except StatusError as err:
        if err.reason == "AlreadyExists":
            created = await _existing_or_collision(act, d, rs, err)
            already_exists = True
        elif has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
            raise
        else:
            message = f'Failed to create new replica set "{name}": {err}'
            if has_progress_deadline(d):
                set_condition(writable_status(d), new_condition(
                    PROGRESSING, FALSE, FAILED_RS_CREATE, message, act.now()))
                await _save_quietly(act, d)
            act.event(d, WARNING, FAILED_RS_CREATE, message)
            raise
    if not already_exists and count > 0:
        act.event(d, NORMAL, SCALING_REPLICA_SET,
                  f"Scaled up replica set {name} from 0 to {count}")
    revision_changed = set_deployment_revision(d, new_revision)
    status_changed = False
    if not already_exists and has_progress_deadline(d):
        set_condition(writable_status(d), new_condition(
            PROGRESSING, TRUE, NEW_REPLICA_SET, f'Created new replica set "{name}"', act.now()))
        status_changed = True
    if revision_changed or status_changed:
        await act.save_deployment(d, revision=revision_changed)
    return created


async def _existing_or_collision(act: DeploymentActions, d: Obj, wanted: Obj,
                                 err: StatusError) -> Obj:
    """The ReplicaSet already holding the wanted name, when it is ours with our template.

    Otherwise two templates hashed alike: count the collision (the next hash
    differs) and fail this sync so it is retried.
    """
    md = wanted["metadata"]
    found = await act.get_replica_set(md["namespace"], md["name"])
    ref = controller_of(found)
    if ref is not None and ref.get("uid") == d["metadata"].get("uid") \
            and equal_ignore_hash(spec(d).get("template"), spec(found).get("template")):
        return found
    current = writable_status(d)
    before = current.get("collisionCount") or 0
    current["collisionCount"] = before + 1
    if await _save_quietly(act, d):
        log.info("hash collision for deployment %s/%s: collisionCount %d -> %d",
                 md["namespace"], _name(d), before, before + 1)
    raise err


async def _save_quietly(act: DeploymentActions, d: Obj) -> bool:
    """Write the status when a bigger failure is being reported anyway."""
    try:
        await act.save_deployment(d)
    except StatusError as err:
        log.debug("status update for %s failed: %s", _name(d), err)
        return False
    return True


# ---- scaling


async def scale_replica_set(act: DeploymentActions, rs: Obj, new_scale: int,
                            d: Obj) -> tuple[bool, Obj]:
    """Set the size and the replica annotations; (whether the size changed, the RS)."""
    resized = replicas(rs) != new_scale
    desired = replicas(d)
    maximum = desired + max_surge(d)
    if not resized and not replicas_annotations_need_update(rs, desired, maximum):
        return False, rs
    before = replicas(rs)
    updated = copy.deepcopy(rs)
    updated["spec"]["replicas"] = new_scale
    set_replicas_annotations(updated, desired, maximum)
    written = await act.update_replica_set(updated)
    if resized:
        direction = "up" if before < new_scale else "down"
        act.event(d, NORMAL, SCALING_REPLICA_SET,
                  f"Scaled {direction} replica set {_name(rs)} from {before} to {new_scale}")
    return resized, written


async def scale_replica_set_and_record_event(act: DeploymentActions, rs: Obj, new_scale: int,
                                             d: Obj) -> tuple[bool, Obj]:
    if replicas(rs) == new_scale:
        return False, rs
    return await scale_replica_set(act, rs, new_scale, d)


async def scale(act: DeploymentActions, d: Obj, new_rs: Obj | None,
                old_rss: Sequence[Obj]) -> None:
    for step in plans.scale_plan(d, new_rs, old_rss):
        if step.refresh:
            await scale_replica_set(act, step.rs, step.replicas, d)
        else:
            await scale_replica_set_and_record_event(act, step.rs, step.replicas, d)


# ---- history, status and the paused/resized path


async def cleanup_deployment(act: DeploymentActions, old_rss: Sequence[Obj], d: Obj) -> None:
    for rs in plans.history_to_delete(d, old_rss):
        log.info("deployment %s: deleting old replica set %s", _name(d), _name(rs))
        await act.delete_replica_set(rs)


async def sync_deployment_status(act: DeploymentActions, all_rss: Sequence[Obj | None],
                                 new_rs: Obj | None, d: Obj) -> None:
    new_status = calculate_status(all_rss, new_rs, d, act.now())
    if same_status(status(d), new_status):
        return
    d["status"] = new_status
    await act.save_deployment(d)


async def sync_without_rollout(act: DeploymentActions, d: Obj, rs_list: Sequence[Obj]) -> None:
    """Follow spec.replicas without rolling forward (paused, or resized mid-rollout)."""
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(act, d, rs_list, False)
    await scale(act, d, new_rs, old_rss)
    if spec(d).get("paused"):
        await cleanup_deployment(act, old_rss, d)
    await sync_deployment_status(act, [*old_rss, new_rs], new_rs, d)


async def sync_status_only(act: DeploymentActions, d: Obj, rs_list: Sequence[Obj]) -> None:
    new_rs, old_rss = await get_all_replica_sets_and_sync_revision(act, d, rs_list, False)
    await sync_deployment_status(act, [*old_rss, new_rs], new_rs, d)


async def check_paused_conditions(act: DeploymentActions, d: Obj) -> None:
    """Mark pausing and resuming in Progressing, so a long pause never reads as a timeout."""
    if not has_progress_deadline(d):
        return
    current = get_condition(status(d), PROGRESSING)
    if current is not None and current.get("reason") == TIMED_OUT:
        return
    paused_recorded = current is not None and current.get("reason") == PAUSED
    if spec(d).get("paused") and not paused_recorded:
        condition = new_condition(PROGRESSING, UNKNOWN, PAUSED, "Deployment is paused",
                                  act.now())
    elif not spec(d).get("paused") and paused_recorded:
        condition = new_condition(PROGRESSING, UNKNOWN, RESUMED, "Deployment is resumed",
                                  act.now())
    else:
        return
    set_condition(writable_status(d), condition)
    await act.save_deployment(d)

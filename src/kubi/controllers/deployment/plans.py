"""What to resize, and to how many: the decisions of a Deployment sync, without I/O.

Each planner takes the Deployment and its ReplicaSets as they are and returns
`Resize` steps (or ReplicaSets to delete) for the caller to write, in order:

- `scale_plan`: a resize of the Deployment (or of a paused one). One active
  ReplicaSet takes the whole size; otherwise the change is shared out in
  proportion to each ReplicaSet's size (`proportional_plan`).
- `unhealthy_cleanup_plan` and `rolling_scale_down_plan`: the scale-down half
  of a rolling update, within the maxUnavailable budget.
- `history_to_delete`: old ReplicaSets beyond revisionHistoryLimit.
- `old_pods_running`: whether Recreate must still wait before scaling up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from kubi.controllers.deployment.replicasets import (
    by_creation,
    by_revision,
    by_size_newer,
    by_size_older,
    creation_key,
)
from kubi.controllers.deployment.util import (
    DESIRED_REPLICAS,
    Obj,
    available_replica_count,
    filter_active,
    has_revision_history_limit,
    int32_annotation,
    is_deleting,
    is_rolling_update,
    is_saturated,
    max_surge,
    max_unavailable,
    proportion,
    replica_count,
    replicas,
    spec,
    status_int,
)


class Resize(NamedTuple):
    """Scale `rs` to `replicas`; with `refresh`, write even at the same size so
    that its replica annotations follow the Deployment."""

    rs: Obj
    replicas: int
    refresh: bool = False


# ---- resizing the Deployment


def find_active_or_latest(new_rs: Obj | None, old_rss: Sequence[Obj]) -> Obj | None:
    """The only active ReplicaSet; with none active, the newest one; with several, None."""
    if new_rs is None and not old_rss:
        return None
    newest_first = sorted(old_rss, key=creation_key, reverse=True)
    active = filter_active([*newest_first, new_rs])
    if not active:
        return new_rs if new_rs is not None else newest_first[0]
    return active[0] if len(active) == 1 else None


def is_scaling_event(d: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]) -> bool:
    """An active ReplicaSet was last sized for another replica count than the desired one."""
    for rs in filter_active([*old_rss, new_rs]):
        desired = int32_annotation(rs, DESIRED_REPLICAS)
        if desired is not None and desired != replicas(d):
            return True
    return False


def proportional_plan(d: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]) -> list[Resize]:
    """Share a resize between the active ReplicaSets in proportion to their sizes.

    The room is desired + maxSurge. Each ReplicaSet keeps its share of the old
    room (its max-replicas annotation): going from 5 to 10 with a new
    ReplicaSet of 2 and an old one of 3, they become 4 and 6. What rounding
    leaves over goes to the first in line: the largest, and among equals the
    newest when growing, the oldest when shrinking (3 → 4 with three
    ReplicaSets of 1: the newest becomes 2).
    """
    active = filter_active([*old_rss, new_rs])
    room = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
    to_add = room - replica_count(active)
    if to_add > 0:
        active = by_size_newer(active)
    elif to_add < 0:
        active = by_size_older(active)
    sizes: list[int] = []
    added = 0
    for rs in active:
        share = proportion(rs, d, to_add, added)
        sizes.append(replicas(rs) + share)
        added += share
    if active and to_add != 0:
        sizes[0] = max(sizes[0] + to_add - added, 0)
    return [Resize(rs, size, refresh=True) for rs, size in zip(active, sizes)]


def scale_plan(d: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]) -> list[Resize]:
    """How to follow a change of spec.replicas without advancing the rollout."""
    only = find_active_or_latest(new_rs, old_rss)
    if only is not None:
        return [] if replicas(only) == replicas(d) else [Resize(only, replicas(d))]
    if is_saturated(d, new_rs):
        # The new ReplicaSet runs everything (say, just after adopting old ones).
        return [Resize(rs, 0) for rs in filter_active(old_rss)]
    if is_rolling_update(d):
        return proportional_plan(d, new_rs, old_rss)
    return []


# ---- the scale-down half of a rolling update


def max_scaled_down(d: Obj, all_rss: Sequence[Obj], new_rs: Obj) -> int:
    """How many pods may go without eating into availability.

    Not only maxUnavailable and surge pods count, but also the new
    ReplicaSet's unavailable pods. 10 replicas, maxUnavailable 2, maxSurge 3:
    old at 8 and new at 5 whose pods never come up make 13 - 8 - 5 = 0, so
    nothing old goes even if an old pod fails. After `rollout undo` to the old
    template, the crashing ReplicaSet is the old one: 13 - 8 - 1 = 4 of its
    pods go, making room for the good one to grow back to 10.
    """
    min_available = replicas(d) - max_unavailable(d)
    new_unavailable = replicas(new_rs) - status_int(new_rs, "availableReplicas")
    return replica_count(all_rss) - min_available - new_unavailable


def unhealthy_cleanup_plan(old_rss: Sequence[Obj], max_cleanup: int) -> list[Resize]:
    """Drop the unavailable pods of old ReplicaSets first, oldest ReplicaSet first.

    Losing them costs no availability; the ReplicaSet controller deletes
    not-ready, unscheduled and pending pods before the others.
    """
    plan: list[Resize] = []
    total = 0
    for rs in by_creation(old_rss):
        if total >= max_cleanup:
            break
        unhealthy = replicas(rs) - status_int(rs, "availableReplicas")
        if replicas(rs) == 0 or unhealthy <= 0:
            continue
        count = min(max_cleanup - total, unhealthy)
        plan.append(Resize(rs, replicas(rs) - count))
        total += count
    return plan


def rolling_scale_down_plan(d: Obj, all_rss: Sequence[Obj],
                            old_rss: Sequence[Obj]) -> list[Resize]:
    """Scale old ReplicaSets down, oldest first, while availability stays above the minimum."""
    min_available = replicas(d) - max_unavailable(d)
    available = available_replica_count(all_rss)
    if available <= min_available:
        return []
    budget = available - min_available
    plan: list[Resize] = []
    total = 0
    for rs in by_creation(old_rss):
        if total >= budget:
            break
        if replicas(rs) == 0:
            continue
        count = min(replicas(rs), budget - total)
        plan.append(Resize(rs, replicas(rs) - count))
        total += count
    return plan


# ---- revision history and Recreate


def history_to_delete(d: Obj, old_rss: Sequence[Obj]) -> list[Obj]:
    """Old ReplicaSets past revisionHistoryLimit, lowest revision first.

    Only those fully scaled down (asked for and running no pods, their
    latest spec observed) are ever deleted.
    """
    if not has_revision_history_limit(d):
        return []
    alive = [rs for rs in old_rss if not is_deleting(rs)]
    excess = len(alive) - int(spec(d)["revisionHistoryLimit"])
    if excess <= 0:
        return []
    doomed = []
    for rs in by_revision(alive)[:excess]:
        generation = (rs.get("metadata") or {}).get("generation") or 0
        if status_int(rs, "replicas") != 0 or replicas(rs) != 0 \
                or generation > status_int(rs, "observedGeneration"):
            continue
        doomed.append(rs)
    return doomed


def old_pods_running(new_rs: Obj | None, old_rss: Sequence[Obj],
                     pods_by_rs: Mapping[str, Sequence[Obj]]) -> bool:
    """Whether any pod of an old ReplicaSet may still run (Recreate waits for none).

    `pods_by_rs` maps ReplicaSet UIDs to their pods. Finished pods do not
    count; pods in any other phase, Unknown included, might still be running.
    """
    if sum(status_int(rs, "replicas") for rs in old_rss) > 0:
        return True
    new_uid = ((new_rs or {}).get("metadata") or {}).get("uid")
    for uid, pods in pods_by_rs.items():
        if new_uid is not None and uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False

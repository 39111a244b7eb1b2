"""A Deployment's status, computed from its ReplicaSets: pure functions.

`calculate_status` sums the ReplicaSets (replicas, updated, ready, available,
unavailable), keeps collisionCount and the conditions already there, and sets
`Available` by whether availability reaches desired minus maxUnavailable.
`rollout_status` adds what a rollout reports through `Progressing`:
NewReplicaSetAvailable once complete, ReplicaSetUpdated whenever pods moved
forward (refreshing lastUpdateTime, which is what the progress deadline is
measured from), ProgressDeadlineExceeded once that deadline passed without
progress; and it mirrors a ReplicaSet's ReplicaFailure. `requeue_delay` says
when to look again so a stalled rollout is noticed on time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kubi.api.meta import parse_time
from kubi.controllers.deployment.conditions import (
    AVAILABLE,
    FALSE,
    HAS_MINIMUM_AVAILABILITY,
    MINIMUM_REPLICAS_AVAILABLE,
    MINIMUM_REPLICAS_UNAVAILABLE,
    NEW_RS_AVAILABLE,
    NO_MINIMUM_AVAILABILITY,
    PROGRESSING,
    REPLICA_FAILURE,
    REPLICA_SET_UPDATED,
    TIMED_OUT,
    TRUE,
    Condition,
    from_replica_set_condition,
    get_condition,
    new_condition,
    remove_condition,
    set_condition,
)
from kubi.controllers.deployment.util import (
    Obj,
    actual_replica_count,
    available_replica_count,
    deployment_complete,
    deployment_progressing,
    deployment_timed_out,
    has_progress_deadline,
    max_unavailable,
    ready_replica_count,
    replica_count,
    replicas,
    spec,
    status,
)

# DeploymentStatus fields in wire order; zero counts are omitted, as Go's omitempty does.
_COUNTS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
           "availableReplicas", "unavailableReplicas", "terminatingReplicas")


def canonical_status(value: Obj) -> Obj:
    result: Obj = {}
    for field in _COUNTS:
        if value.get(field):
            result[field] = value[field]
    if value.get("conditions"):
        result["conditions"] = [dict(c) for c in value["conditions"]]
    if value.get("collisionCount") is not None:
        result["collisionCount"] = value["collisionCount"]
    return result


def same_status(a: Obj, b: Obj) -> bool:
    return canonical_status(a) == canonical_status(b)


def calculate_status(all_rss: Sequence[Obj | None], new_rs: Obj | None, d: Obj,
                     now: float) -> Obj:
    available = available_replica_count(all_rss)
    result: dict[str, Any] = {
        "observedGeneration": (d.get("metadata") or {}).get("generation") or 0,
        "replicas": actual_replica_count(all_rss),
        "updatedReplicas": actual_replica_count([new_rs]),
        "readyReplicas": ready_replica_count(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(replica_count(all_rss) - available, 0),
        "conditions": [dict(c) for c in status(d).get("conditions") or ()],
        "collisionCount": status(d).get("collisionCount"),
    }
    if available >= replicas(d) - max_unavailable(d):
        set_condition(result, new_condition(AVAILABLE, TRUE, MINIMUM_REPLICAS_AVAILABLE,
                                            HAS_MINIMUM_AVAILABILITY, now))
    else:
        set_condition(result, new_condition(AVAILABLE, FALSE, MINIMUM_REPLICAS_UNAVAILABLE,
                                            NO_MINIMUM_AVAILABILITY, now))
    return canonical_status(result)


def _subject(d: Obj, new_rs: Obj | None) -> str:
    """What Progressing messages speak of: the new ReplicaSet, or the Deployment."""
    if new_rs is not None:
        return f'ReplicaSet "{new_rs["metadata"]["name"]}"'
    return f'Deployment "{d["metadata"]["name"]}"'


def replica_failures(all_rss: Sequence[Obj | None], new_rs: Obj | None) -> list[Condition]:
    """ReplicaFailure conditions of the ReplicaSets; the new one's take precedence."""
    def failures(rs: Obj | None) -> list[Condition]:
        return [from_replica_set_condition(c) for c in status(rs).get("conditions") or ()
                if c.get("type") == REPLICA_FAILURE]

    found = failures(new_rs)
    if found:
        return found
    return [c for rs in all_rss for c in failures(rs)]


def rollout_status(d: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None,
                   now: float) -> Obj:
    """The status to report during a rollout (upstream's syncRolloutStatus)."""
    new_status = calculate_status(all_rss, new_rs, d, now)
    if not has_progress_deadline(d):
        remove_condition(new_status, PROGRESSING)
    current = get_condition(status(d), PROGRESSING)
    # A rollout already reported complete is not estimated again on a resync.
    already_complete = (new_status.get("replicas", 0) == new_status.get("updatedReplicas", 0)
                        and current is not None
                        and current.get("reason") == NEW_RS_AVAILABLE)
    if has_progress_deadline(d) and not already_complete:
        subject = _subject(d, new_rs)
        if deployment_complete(d, new_status):
            set_condition(new_status, new_condition(
                PROGRESSING, TRUE, NEW_RS_AVAILABLE, f"{subject} has successfully progressed.",
                now))
        elif deployment_progressing(d, new_status):
            condition = new_condition(PROGRESSING, TRUE, REPLICA_SET_UPDATED,
                                      f"{subject} is progressing.", now)
            # The reason may stay the same while lastUpdateTime must move, so
            # the condition is replaced here rather than through set_condition.
            if current is not None:
                if current.get("status") == TRUE:
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(new_status, PROGRESSING)
            set_condition(new_status, condition)
        elif deployment_timed_out(d, new_status, now):
            set_condition(new_status, new_condition(
                PROGRESSING, FALSE, TIMED_OUT, f"{subject} has timed out progressing.", now))
    failures = replica_failures(all_rss, new_rs)
    if failures:
        set_condition(new_status, failures[0])
    else:
        remove_condition(new_status, REPLICA_FAILURE)
    return canonical_status(new_status)


def requeue_delay(d: Obj, new_status: Obj, now: float) -> float | None:
    """Seconds until the progress deadline should be checked again.

    None: no check needed (no deadline, no Progressing condition yet, rollout
    complete or already timed out). 0: check now. Otherwise the time left until
    lastUpdateTime + progressDeadlineSeconds, plus a second against clock
    rounding: updated 3 minutes ago with a 10-minute deadline, look again in 7m1s.
    """
    current = get_condition(status(d), PROGRESSING)
    if not has_progress_deadline(d) or current is None:
        return None
    if deployment_complete(d, new_status) or current.get("reason") == TIMED_OUT:
        return None
    since = parse_time(current.get("lastUpdateTime")) or 0.0
    left = since + int(spec(d)["progressDeadlineSeconds"]) - now
    if left < 1:
        return 0.0
    return left + 1

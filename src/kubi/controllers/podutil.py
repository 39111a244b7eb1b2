"""Pure decisions about pods, on plain dicts: readiness, availability, ranking.

These are the rules every workload controller shares. `is_pod_active` says
which pods still count toward a controller's replicas; `is_pod_ready` and
`is_pod_available` read the Ready condition (available means ready for at
least minReadySeconds). `pods_to_delete` orders surplus pods by upstream's
ActivePodsWithRanks: the pod that hurts least to lose comes first.

Times come in as RFC3339 strings and are compared as epoch seconds; `now` is
always passed in so the decisions stay deterministic under test.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from kubi.api.meta import parse_time

Pod = dict[str, Any]

POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_INT_RE = re.compile(r"[+-]?[0-9]+")

# Pending pods go first, running pods last; any other phase sorts with Pending.
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def pod_ready_condition(pod: Pod) -> dict[str, Any] | None:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return condition
    return None


def is_pod_ready(pod: Pod) -> bool:
    condition = pod_ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def is_pod_available(pod: Pod, min_ready_seconds: int, now: float) -> bool:
    """Ready, and ready for longer than minReadySeconds (strictly, as upstream)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time((pod_ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds < now


def is_pod_active(pod: Pod) -> bool:
    """Not finished and not being deleted: it still counts as a replica."""
    phase = (pod.get("status") or {}).get("phase")
    return (phase not in ("Succeeded", "Failed")
            and not (pod.get("metadata") or {}).get("deletionTimestamp"))


def filter_active_pods(pods: Iterable[Pod]) -> list[Pod]:
    return [pod for pod in pods if is_pod_active(pod)]


def node_name(pod: Pod) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


def pod_ready_time(pod: Pod) -> float | None:
    """When the pod last became ready; None when it is not ready."""
    if not is_pod_ready(pod):
        return None
    return parse_time((pod_ready_condition(pod) or {}).get("lastTransitionTime"))


def max_container_restarts(pod: Pod) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return max((s.get("restartCount") or 0 for s in statuses), default=0)


def deletion_cost(pod: Pod) -> int:
    """The pod-deletion-cost annotation as an int32; 0 when unset or malformed."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(POD_DELETION_COST)
    if raw is None or not _INT_RE.fullmatch(raw):
        return 0
    value = int(raw)
    return value if -(2**31) <= value < 2**31 else 0


def _after_or_zero(t1: float | None, t2: float | None) -> bool:
    """t1 later than t2, where a missing time counts as later than any time."""
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _log_rank(t: float, now: float) -> int:
    # Upstream takes log2 of the age in nanoseconds, so ages within a factor of
    # two of each other tie, and the tie is broken by UID: pseudo-random.
    age = (now - t) * 1e9
    return int(math.log2(age)) if age > 0 else -1


def _newer_first(t1: float | None, t2: float | None, uid1: str, uid2: str,
                 now: float | None) -> bool:
    if now is None or t1 is None or t2 is None:
        return _after_or_zero(t1, t2)
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


@dataclass(frozen=True, slots=True)
class DeletionFacts:
    """What the deletion ranking reads of one pod, read once per ranking."""

    unassigned: bool
    phase: int
    ready: bool
    cost: int
    rank: int
    uid: str
    ready_since: float | None
    restarts: int
    created: float | None

    @classmethod
    def of(cls, pod: Pod, rank: int) -> DeletionFacts:
        md = pod.get("metadata") or {}
        ready = is_pod_ready(pod)
        return cls(
            unassigned=not node_name(pod),
            phase=_PHASE_ORDINAL.get((pod.get("status") or {}).get("phase", ""), 0),
            ready=ready,
            cost=deletion_cost(pod),
            rank=rank,
            uid=md.get("uid", ""),
            ready_since=pod_ready_time(pod) if ready else None,
            restarts=max_container_restarts(pod),
            created=parse_time(md.get("creationTimestamp")),
        )


def delete_before(a: Pod, b: Pod, rank_a: int, rank_b: int, now: float | None) -> bool:
    """True when `a` should be deleted before `b` (upstream's ActivePodsWithRanks.Less).

    In order: unassigned before assigned; Pending before Unknown before Running;
    not ready before ready; lower deletion cost first; more colocated related
    pods (higher rank) first; ready for less time first; more restarts first;
    newer first. Ready and creation times compare on a log2 scale of their age.
    """
    return _delete_before(DeletionFacts.of(a, rank_a), DeletionFacts.of(b, rank_b), now)


def _delete_before(a: DeletionFacts, b: DeletionFacts, now: float | None) -> bool:
    if a.unassigned != b.unassigned:
        return a.unassigned
    if a.phase != b.phase:
        return a.phase < b.phase
    if a.ready != b.ready:
        return not a.ready
    if a.cost != b.cost:
        return a.cost < b.cost
    if a.rank != b.rank:
        return a.rank > b.rank
    if a.ready and b.ready and a.ready_since != b.ready_since:
        return _newer_first(a.ready_since, b.ready_since, a.uid, b.uid, now)
    if a.restarts != b.restarts:
        return a.restarts > b.restarts
    if a.created != b.created:
        return _newer_first(a.created, b.created, a.uid, b.uid, now)
    return False


def rank_by_colocation(pods: Sequence[Pod], related: Iterable[Pod]) -> list[int]:
    """For each pod, how many active related pods share its node."""
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            on_node[node_name(pod)] = on_node.get(node_name(pod), 0) + 1
    return [on_node.get(node_name(pod), 0) for pod in pods]


def sort_for_deletion(pods: Sequence[Pod], ranks: Sequence[int], now: float | None) -> list[Pod]:
    """The pods, most deletable first."""
    return _most_deletable(pods, ranks, now, len(pods))


def _most_deletable(pods: Sequence[Pod], ranks: Sequence[int], now: float | None,
                    count: int) -> list[Pod]:
    facts = [(DeletionFacts.of(pod, rank), index) for index, (pod, rank)
             in enumerate(zip(pods, ranks, strict=True))]

    def compare(x: tuple[DeletionFacts, int], y: tuple[DeletionFacts, int]) -> int:
        if _delete_before(x[0], y[0], now):
            return -1
        if _delete_before(y[0], x[0], now):
            return 1
        return 0

    # nsmallest is sorted(...)[:count], stable too, without sorting the rest.
    chosen = heapq.nsmallest(count, facts, key=cmp_to_key(compare))
    return [pods[index] for _, index in chosen]


def pods_to_delete(pods: Sequence[Pod], related: Iterable[Pod], count: int,
                   now: float) -> list[Pod]:
    """The `count` pods to delete when scaling down (all of them need no sorting)."""
    if count >= len(pods):
        return list(pods)
    ranks = rank_by_colocation(pods, related)
    return _most_deletable(pods, ranks, now, count)

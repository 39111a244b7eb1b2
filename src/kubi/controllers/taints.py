"""Taints and tolerations, on plain dicts: the node controllers' shared vocabulary.

Two sets of taints belong to the control plane. The NoSchedule ones mirror
node conditions (Ready False → `not-ready`, Ready Unknown → `unreachable`,
pressure conditions True → their `*-pressure` taint) and `spec.unschedulable`;
`condition_taints` says which a node should carry and `diff_taints` what to
change. The NoExecute `not-ready`/`unreachable` taints evict pods, and
`eviction_delay` says when a pod on a node with NoExecute taints must go:
now when some taint is not tolerated, after the smallest tolerationSeconds
among the tolerations used, or never.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kubi.scheduler.matching import tolerates

Obj = dict[str, Any]

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"

# Which condition status puts which NoSchedule taint on a node.
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": TAINT_MEMORY_PRESSURE},
    "DiskPressure": {"True": TAINT_DISK_PRESSURE},
    "NetworkUnavailable": {"True": TAINT_NETWORK_UNAVAILABLE},
    "PIDPressure": {"True": TAINT_PID_PRESSURE},
}
MANAGED_NO_SCHEDULE_KEYS = frozenset(
    {key for by_status in CONDITION_TAINTS.values() for key in by_status.values()}
    | {TAINT_UNSCHEDULABLE})
NODE_LIFECYCLE_NO_EXECUTE_KEYS = frozenset({TAINT_NOT_READY, TAINT_UNREACHABLE})


def node_taints(node: Obj) -> list[Obj]:
    return list((node.get("spec") or {}).get("taints") or [])


def no_execute_taints(taints: Iterable[Obj]) -> list[Obj]:
    return [t for t in taints if t.get("effect") == NO_EXECUTE]


def taint_matches(a: Obj, b: Obj) -> bool:
    """The same taint for bookkeeping: key and effect (upstream's MatchTaint)."""
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def has_taint(taints: Iterable[Obj], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints)


def condition_taints(node: Obj) -> list[Obj]:
    """The NoSchedule taints the node's conditions and spec call for."""
    wanted: list[Obj] = []
    for condition in (node.get("status") or {}).get("conditions") or ():
        key = CONDITION_TAINTS.get(condition.get("type", ""), {}).get(condition.get("status", ""))
        if key is not None:
            wanted.append({"key": key, "effect": NO_SCHEDULE})
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append({"key": TAINT_UNSCHEDULABLE, "effect": NO_SCHEDULE})
    return wanted


def diff_taints(current: Sequence[Obj], wanted: Sequence[Obj],
                managed: Iterable[str], effect: str) -> tuple[list[Obj], list[Obj]]:
    """(to add, to remove) so that the managed keys of `effect` are exactly `wanted`."""
    managed = set(managed)
    have = [t for t in current if t.get("key") in managed and t.get("effect") == effect]
    add = [t for t in wanted if not any(taint_matches(t, h) for h in have)]
    remove = [h for h in have if not any(taint_matches(h, t) for t in wanted)]
    return add, remove


def apply_taints(current: Sequence[Obj], add: Sequence[Obj], remove: Sequence[Obj]) -> list[Obj]:
    """The taint list with `remove` gone and `add` added (replacing same key and effect)."""
    out = [t for t in current
           if not any(taint_matches(t, r) for r in remove)
           and not any(taint_matches(t, a) for a in add)]
    return out + [dict(t) for t in add]


def matching_tolerations(taints: Sequence[Obj],
                         tolerations: Sequence[Obj]) -> tuple[bool, list[Obj]]:
    """(every taint tolerated, the first toleration used for each taint)."""
    used: list[Obj] = []
    for taint in taints:
        toleration = next((t for t in tolerations if tolerates(t, taint)), None)
        if toleration is None:
            return False, []
        used.append(toleration)
    return True, used


def min_toleration_seconds(used: Sequence[Obj]) -> float | None:
    """How long the used tolerations last; None means forever."""
    if not used:
        return 0.0
    shortest: float | None = None
    for toleration in used:
        seconds = toleration.get("tolerationSeconds")
        if seconds is None:
            continue
        if seconds <= 0:
            return 0.0
        shortest = float(seconds) if shortest is None else min(shortest, float(seconds))
    return shortest


def eviction_delay(taints: Sequence[Obj], tolerations: Sequence[Obj]) -> float | None:
    """Seconds until a pod facing these NoExecute taints must be deleted; None: never.

    Example: taints unreachable:NoExecute and not-ready:NoExecute, tolerations
    `unreachable Exists 300s` and `not-ready Exists 60s` → 60 seconds; drop the
    second toleration and the not-ready taint is untolerated → 0, delete now.
    """
    if not taints:
        return None
    tolerated, used = matching_tolerations(taints, tolerations)
    if not tolerated:
        return 0.0
    return min_toleration_seconds(used)

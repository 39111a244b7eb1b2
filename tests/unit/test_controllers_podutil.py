"""Pod readiness, availability, activity and upstream's deletion ranking."""

from __future__ import annotations

from typing import Any

from kubi.api.meta import format_time
from kubi.controllers.podutil import (
    POD_DELETION_COST,
    delete_before,
    deletion_cost,
    filter_active_pods,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    max_container_restarts,
    pods_to_delete,
    rank_by_colocation,
    sort_for_deletion,
)

NOW = 1_700_000_000.0


def pod(name: str, *, node: str = "", phase: str = "Pending", ready: bool | None = None,
        ready_since: float | None = None, created: float | None = NOW - 3600,
        restarts: int = 0, uid: str | None = None, deleting: bool = False,
        cost: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}"}
    if created is not None:
        md["creationTimestamp"] = format_time(created)
    if deleting:
        md["deletionTimestamp"] = format_time(NOW)
    if cost is not None:
        md["annotations"] = {POD_DELETION_COST: cost}
    status: dict[str, Any] = {"phase": phase}
    if ready is not None:
        condition = {"type": "Ready", "status": "True" if ready else "False"}
        if ready_since is not None:
            condition["lastTransitionTime"] = format_time(ready_since)
        status["conditions"] = [{"type": "PodScheduled", "status": "True"}, condition]
    if restarts:
        status["containerStatuses"] = [{"name": "a", "restartCount": 1},
                                       {"name": "b", "restartCount": restarts}]
    return {"metadata": md, "spec": {"nodeName": node} if node else {}, "status": status}


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# ---- readiness and availability


def test_ready_reads_the_ready_condition() -> None:
    assert is_pod_ready(pod("a", ready=True))
    assert not is_pod_ready(pod("a", ready=False))
    assert not is_pod_ready(pod("a"))
    assert not is_pod_ready({"metadata": {}})


def test_available_without_min_ready_seconds_is_ready() -> None:
    assert is_pod_available(pod("a", ready=True), 0, NOW)
    assert not is_pod_available(pod("a", ready=False), 0, NOW)


def test_available_needs_min_ready_seconds_strictly_elapsed() -> None:
    p = pod("a", ready=True, ready_since=NOW - 10)
    assert is_pod_available(p, 9, NOW)
    assert not is_pod_available(p, 10, NOW)  # ready + min == now is not yet available
    assert not is_pod_available(p, 30, NOW)
    assert not is_pod_available(pod("a", ready=True), 5, NOW)  # no transition time


def test_active_excludes_finished_and_terminating_pods() -> None:
    assert is_pod_active(pod("a", phase="Running"))
    assert is_pod_active(pod("a", phase="Pending"))
    assert is_pod_active(pod("a", phase="Unknown"))
    assert not is_pod_active(pod("a", phase="Succeeded"))
    assert not is_pod_active(pod("a", phase="Failed"))
    assert not is_pod_active(pod("a", phase="Running", deleting=True))
    kept = filter_active_pods([pod("a"), pod("b", phase="Failed"), pod("c", deleting=True)])
    assert names(kept) == ["a"]


def test_restarts_and_deletion_cost() -> None:
    assert max_container_restarts(pod("a", restarts=7)) == 7
    assert max_container_restarts(pod("a")) == 0
    assert deletion_cost(pod("a", cost="-5")) == -5
    assert deletion_cost(pod("a", cost="+12")) == 12
    assert deletion_cost(pod("a", cost="1_000")) == 0
    assert deletion_cost(pod("a", cost="abc")) == 0
    assert deletion_cost(pod("a", cost=str(2**31))) == 0
    assert deletion_cost(pod("a")) == 0


# ---- ranking, one rule at a time


def first(a: dict[str, Any], b: dict[str, Any], rank_a: int = 0, rank_b: int = 0) -> str:
    """Which of a and b goes first; checks the order is consistent both ways."""
    ab = delete_before(a, b, rank_a, rank_b, NOW)
    ba = delete_before(b, a, rank_b, rank_a, NOW)
    assert not (ab and ba)
    return a["metadata"]["name"] if ab else b["metadata"]["name"] if ba else "tie"


def test_unassigned_before_assigned() -> None:
    assert first(pod("on-node", node="n1", phase="Running"), pod("nowhere")) == "nowhere"


def test_pending_before_unknown_before_running() -> None:
    pending = pod("pending", node="n", phase="Pending")
    unknown = pod("unknown", node="n", phase="Unknown")
    running = pod("running", node="n", phase="Running")
    assert first(running, unknown) == "unknown"
    assert first(unknown, pending) == "pending"
    assert first(running, pending) == "pending"


def test_not_ready_before_ready() -> None:
    ready = pod("ready", node="n", phase="Running", ready=True, ready_since=NOW - 100)
    not_ready = pod("not-ready", node="n", phase="Running", ready=False)
    assert first(ready, not_ready) == "not-ready"


def test_lower_deletion_cost_first() -> None:
    cheap = pod("cheap", node="n", phase="Running", cost="-10")
    dear = pod("dear", node="n", phase="Running", cost="100")
    assert first(dear, cheap) == "cheap"
    # Cost outranks colocation.
    assert first(dear, cheap, rank_a=5, rank_b=0) == "cheap"


def test_more_colocated_pods_first() -> None:
    a = pod("crowded", node="n1", phase="Running")
    b = pod("alone", node="n2", phase="Running")
    assert first(a, b, rank_a=3, rank_b=1) == "crowded"


def test_ready_for_less_time_first() -> None:
    old = pod("old", node="n", phase="Running", ready=True, ready_since=NOW - 10_000)
    young = pod("young", node="n", phase="Running", ready=True, ready_since=NOW - 10)
    assert first(old, young) == "young"


def test_more_restarts_first() -> None:
    calm = pod("calm", node="n", phase="Running")
    flappy = pod("flappy", node="n", phase="Running", restarts=4)
    assert first(calm, flappy) == "flappy"


def test_newer_first_and_missing_creation_time_first_of_all() -> None:
    older = pod("older", node="n", phase="Running", created=NOW - 100_000)
    newer = pod("newer", node="n", phase="Running", created=NOW - 60)
    assert first(older, newer) == "newer"
    unknown = pod("no-time", node="n", phase="Running", created=None)
    assert first(newer, unknown) == "no-time"


def test_ages_within_a_factor_of_two_tie_on_the_log_scale_and_uid_decides() -> None:
    # 1200 s and 1800 s share floor(log2(age in ns)) = 40, so the UID breaks the tie.
    a = pod("a", node="n", phase="Running", created=NOW - 1200, uid="bbb")
    b = pod("b", node="n", phase="Running", created=NOW - 1800, uid="aaa")
    assert first(a, b) == "b"


def test_identical_pods_tie() -> None:
    a = pod("a", node="n", phase="Running", uid="same")
    b = pod("b", node="n", phase="Running", uid="same")
    assert first(a, b) == "tie"


# ---- whole orderings


def test_rank_counts_active_related_pods_on_the_same_node() -> None:
    pods = [pod("a", node="n1"), pod("b", node="n2"), pod("c")]
    related = pods + [pod("d", node="n1"), pod("e", node="n1", phase="Failed"), pod("f")]
    assert rank_by_colocation(pods, related) == [2, 1, 2]


def test_sort_for_deletion_applies_the_rules_in_order() -> None:
    pods = [
        pod("ready-old", node="n1", phase="Running", ready=True, ready_since=NOW - 50_000),
        pod("ready-young", node="n1", phase="Running", ready=True, ready_since=NOW - 5),
        pod("running-not-ready", node="n1", phase="Running", ready=False),
        pod("pending-assigned", node="n1"),
        pod("unassigned"),
    ]
    ordered = sort_for_deletion(pods, [0] * len(pods), NOW)
    assert names(ordered) == ["unassigned", "pending-assigned", "running-not-ready",
                              "ready-young", "ready-old"]


def test_pods_to_delete_picks_the_most_deletable() -> None:
    pods = [
        pod("a", node="n1", phase="Running", ready=True, ready_since=NOW - 1000),
        pod("b", node="n2", phase="Running", ready=True, ready_since=NOW - 1000),
        pod("c", node="n1", phase="Running", ready=True, ready_since=NOW - 1000),
        pod("d"),
    ]
    chosen = pods_to_delete(pods, pods, 2, NOW)
    # d is unassigned; then one of the two pods doubled up on n1.
    assert names(chosen)[0] == "d"
    assert names(chosen)[1] in ("a", "c")


def test_pods_to_delete_everything_keeps_the_order() -> None:
    pods = [pod("a", node="n", phase="Running"), pod("b")]
    assert names(pods_to_delete(pods, [], 5, NOW)) == ["a", "b"]

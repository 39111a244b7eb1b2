"""The scheduler cache: node totals, assumed pods, confirmation and forgetting."""

from __future__ import annotations

from kubi.scheduler.algorithm import schedule_pod
from kubi.scheduler.cache import SchedulerCache, scheduling_view
from kubi.scheduler.nodeinfo import PodInfo
from kubi.scheduler.status import condition_patch, truncate_message
from tests.unit.scheduler_fixtures import make_node, make_pod


def test_bound_pods_add_up_on_their_node():
    cache = SchedulerCache()
    cache.add_node(make_node("a"))
    cache.add_pod(make_pod("p1", cpu="1", memory="1Gi", node="a"))
    cache.add_pod(make_pod("p2", cpu="500m", node="a"))
    cache.add_pod(make_pod("pending"))  # not bound: not the cache's business
    node = cache.node("a")
    assert node.requested.milli_cpu == 1500 and node.requested.memory == 1024**3
    assert set(node.pods) == {"default/p1", "default/p2"}
    cache.remove_pod(make_pod("p1", node="a"))
    assert node.requested.milli_cpu == 500 and node.requested.memory == 0


def test_status_updates_do_not_recount():
    cache = SchedulerCache()
    cache.add_node(make_node("a"))
    pod = make_pod("p", cpu="1", node="a")
    cache.add_pod(pod)
    generation = cache.node("a").generation
    running = {**pod, "status": {"phase": "Running"}}
    cache.update_pod(running)
    assert cache.node("a").generation == generation
    assert cache.pod("default/p").pod is running


def test_assumed_pods_count_until_confirmed_and_a_burst_does_not_overcommit():
    cache = SchedulerCache()
    cache.add_node(make_node("a", cpu="1"))
    cache.add_node(make_node("b", cpu="1"))
    chosen = []
    for i in range(3):
        info = PodInfo(make_pod(f"p{i}", cpu="600m"))
        result = schedule_pod(info, cache.node_list())
        if result.node_name is None:
            chosen.append(None)
            continue
        cache.assume(info, result.node_name)
        chosen.append(result.node_name)
    assert sorted(chosen[:2]) == ["a", "b"] and chosen[2] is None
    assert cache.assumed_count == 2

    bound = make_pod("p0", cpu="600m", node=chosen[0])
    cache.add_pod(bound)
    assert not cache.is_assumed("default/p0")
    assert cache.node(chosen[0]).requested.milli_cpu == 600


def test_forgetting_a_failed_binding_frees_the_node():
    cache = SchedulerCache()
    cache.add_node(make_node("a", cpu="1"))
    cache.assume(PodInfo(make_pod("p", cpu="1")), "a")
    assert cache.node("a").requested.milli_cpu == 1000
    cache.forget("default/p")
    assert cache.node("a").requested.milli_cpu == 0 and not cache.is_assumed("default/p")


def test_confirmation_on_another_node_moves_the_pod():
    cache = SchedulerCache()
    for name in ("a", "b"):
        cache.add_node(make_node(name))
    cache.assume(PodInfo(make_pod("p", cpu="1")), "a")
    cache.add_pod(make_pod("p", cpu="1", node="b"))
    assert cache.node("a").requested.milli_cpu == 0
    assert cache.node("b").requested.milli_cpu == 1000


def test_deleting_an_assumed_pod_releases_it():
    cache = SchedulerCache()
    cache.add_node(make_node("a"))
    cache.assume(PodInfo(make_pod("p", cpu="1")), "a")
    cache.remove_pod(make_pod("p"))
    assert cache.node("a").requested.milli_cpu == 0 and cache.assumed_count == 0


def test_pods_of_unknown_nodes_wait_on_a_ghost_node():
    cache = SchedulerCache()
    cache.add_pod(make_pod("p", cpu="1", node="late"))
    assert cache.node_list() == []
    cache.add_node(make_node("late"))
    assert [n.name for n in cache.node_list()] == ["late"]
    assert cache.node("late").requested.milli_cpu == 1000
    cache.remove_node(make_node("late"))
    assert cache.node_list() == [] and cache.node("late") is not None
    cache.remove_pod(make_pod("p", node="late"))
    assert cache.node("late") is None


def test_node_updates_change_totals_and_heartbeats_do_not_matter():
    cache = SchedulerCache()
    node = make_node("a", cpu="1")
    cache.add_node(node)
    bigger = make_node("a", cpu="2")
    cache.update_node(bigger)
    assert cache.node("a").allocatable.milli_cpu == 2000
    beat = make_node("a", cpu="2")
    beat["status"]["conditions"][0]["lastHeartbeatTime"] = "2024-01-01T00:00:00Z"
    assert scheduling_view(beat) == scheduling_view(bigger)
    assert scheduling_view(node) != scheduling_view(bigger)


# ---------------------------------------------------------------- status write-back


def test_condition_patch_and_its_idempotence():
    pod = make_pod("p")
    patch = condition_patch(pod, "Unschedulable", "0/1 nodes are available: 1 Too many pods.",
                            now="2024-01-01T00:00:00Z")
    assert patch == {"status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "lastProbeTime": None,
        "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Too many pods."}]}}
    pod["status"]["conditions"] = patch["status"]["conditions"]
    assert condition_patch(pod, "Unschedulable", "0/1 nodes are available: 1 Too many pods.") \
        is None
    changed = condition_patch(pod, "Unschedulable", "other", now="2025-01-01T00:00:00Z")
    # Same status: the transition time stays.
    assert changed["status"]["conditions"][0]["lastTransitionTime"] == "2024-01-01T00:00:00Z"


def test_truncate_message():
    assert truncate_message("short") == "short"
    long = "x" * 2000
    assert len(truncate_message(long)) == 1024 and truncate_message(long).endswith(" ...")

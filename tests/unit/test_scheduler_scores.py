"""Scores: the arithmetic of upstream's default score plugins and their weights."""

from __future__ import annotations

import random

from kubi.scheduler.algorithm import schedule
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo
from kubi.scheduler.scores import (
    balanced_allocation,
    default_normalize,
    least_allocated,
    least_requested,
    prioritize,
)
from tests.unit.scheduler_fixtures import make_node, make_pod, taint


def node_info(cpu: str, memory: str, pods=()) -> NodeInfo:
    return NodeInfo.build(make_node("n", cpu=cpu, memory=memory), pods)


def test_least_requested_is_the_free_share_on_a_0_to_100_scale():
    assert least_requested(3000, 4000) == 25
    assert least_requested(0, 4000) == 100
    assert least_requested(5000, 4000) == 0
    assert least_requested(1, 0) == 0


def test_least_allocated_averages_cpu_and_memory():
    # cpu: (4000-3000)*100/4000 = 25; memory: (10000-5000)*100/10000 = 50; mean 37.
    pod = PodInfo(make_pod("p", cpu="3", memory="5000"))
    assert least_allocated(pod, node_info("4", "10000")) == 37


def test_least_allocated_counts_pods_without_requests_at_the_defaults():
    pod = PodInfo(make_pod("p"))
    node = node_info("1", str(400 * 1024 * 1024))
    # 100m of 1 cpu -> 90; 200Mi of 400Mi -> 50.
    assert least_allocated(pod, node) == 70


def test_balanced_allocation_rewards_equal_shares():
    # cpu 0.75, memory 0.5: deviation 0.125, score 87.
    pod = PodInfo(make_pod("p", cpu="3", memory="5000"))
    assert balanced_allocation(pod, node_info("4", "10000")) == 87
    even = PodInfo(make_pod("p", cpu="2", memory="5000"))
    assert balanced_allocation(even, node_info("4", "10000")) == 100


def test_balanced_allocation_caps_fractions_at_one():
    pod = PodInfo(make_pod("p", cpu="8", memory="5000"))
    assert balanced_allocation(pod, node_info("4", "10000")) == 75


def test_default_normalize():
    assert default_normalize({"a": 2, "b": 4, "c": 0}) == {"a": 50, "b": 100, "c": 0}
    assert default_normalize({"a": 1, "b": 2}, reverse=True) == {"a": 50, "b": 0}
    assert default_normalize({"a": 0, "b": 0}, reverse=True) == {"a": 100, "b": 100}
    assert default_normalize({"a": 0}) == {"a": 0}


def test_prefer_no_schedule_taints_push_pods_elsewhere():
    nodes = [make_node("soft", taints=[taint("a", "PreferNoSchedule")]), make_node("clean")]
    name, _ = schedule(make_pod("p"), nodes)
    assert name == "clean"
    tolerant = make_pod("p", tolerations=[{"key": "a", "operator": "Exists",
                                           "effect": "PreferNoSchedule"}])
    infos = [NodeInfo.build(n) for n in nodes]
    totals = prioritize(PodInfo(tolerant), infos, infos)
    assert totals["soft"] == totals["clean"]


def test_preferred_node_affinity_weights():
    nodes = [make_node("a", labels={"disk": "ssd"}), make_node("b", labels={"disk": "hdd"})]
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["hdd"]}]}},
        {"weight": 5, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}
    pod = PodInfo(make_pod("p", affinity=affinity))
    infos = [NodeInfo.build(n) for n in nodes]
    totals = prioritize(pod, infos, infos)
    # NodeAffinity weight 2: hdd 100, ssd 50.
    assert totals["b"] - totals["a"] == 2 * 50


def test_pods_spread_over_equal_nodes():
    nodes = [make_node(f"n{i}") for i in range(3)]
    placed: dict[str, list[dict]] = {n["metadata"]["name"]: [] for n in nodes}
    rng = random.Random(7)
    for i in range(9):
        name, _ = schedule(make_pod(f"p{i}", cpu="100m", memory="100Mi"), nodes, placed, rng=rng)
        placed[name].append(make_pod(f"p{i}", cpu="100m", memory="100Mi", node=name))
    assert sorted(len(p) for p in placed.values()) == [3, 3, 3]


def test_ties_are_broken_at_random():
    nodes = [make_node(f"n{i}") for i in range(4)]
    chosen = {schedule(make_pod("p"), nodes, rng=random.Random(seed))[0] for seed in range(40)}
    assert len(chosen) > 1

"""The whole decision: which node, or upstream's explanation of why none."""

from __future__ import annotations

from kubi.scheduler.algorithm import num_feasible_nodes_to_find, schedule, schedule_pod
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo
from tests.unit.scheduler_fixtures import make_node, make_pod, taint

UNREACHABLE = taint("node.kubernetes.io/unreachable")


def message(pod, nodes, pods_by_node=None) -> str:
    name, diagnosis = schedule(pod, nodes, pods_by_node)
    assert name is None
    return diagnosis.message


def test_the_classic_message():
    nodes = [make_node("a", taints=[UNREACHABLE]), make_node("b", cpu="1"), make_node("c", cpu="1")]
    assert message(make_pod("p", cpu="2"), nodes) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }, 2 Insufficient cpu. preemption: 0/3 nodes are "
        "available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found "
        "for incoming pod.")


def test_only_unresolvable_reasons():
    nodes = [make_node(n, labels={"disk": "hdd"}) for n in ("a", "b", "c")]
    assert message(make_pod("p", nodeSelector={"disk": "ssd"}), nodes) == (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


def test_reasons_are_counted_per_reason_and_sorted():
    nodes = [make_node("a", cpu="1", memory="1Gi"), make_node("b", cpu="1"),
             make_node("c", unschedulable=True)]
    assert message(make_pod("p", cpu="2", memory="2Gi"), nodes) == (
        "0/3 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful "
        "for scheduling, 2 No preemption victims found for incoming pod.")


def test_preemption_never():
    pod = make_pod("p", cpu="2", preemptionPolicy="Never")
    assert message(pod, [make_node("a", cpu="1")]) == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: not eligible due to preemptionPolicy=Never.")


def test_preemption_that_would_not_help_reports_the_remaining_reason():
    low = make_pod("low", cpu="500m", node="a", priority=0)
    pod = make_pod("p", cpu="2", priority=1000)
    assert message(pod, [make_node("a", cpu="1")], {"a": [low]}) == (
        "0/1 nodes are available: 1 Insufficient cpu. "
        "preemption: 0/1 nodes are available: 1 Insufficient cpu.")


def test_preemption_that_would_help_leaves_no_preemption_text():
    low = make_pod("low", cpu="800m", node="a", priority=0)
    pod = make_pod("p", cpu="500m", priority=1000)
    assert message(pod, [make_node("a", cpu="1")], {"a": [low]}) == \
        "0/1 nodes are available: 1 Insufficient cpu."


def test_no_nodes():
    assert message(make_pod("p"), []) == "no nodes available to schedule pods"


def test_match_fields_to_other_nodes():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["gone"]}]}]}}}
    assert message(make_pod("p", affinity=affinity), [make_node("a"), make_node("b")]) == (
        "0/2 nodes are available: 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchFields"][0]["values"] = ["b"]
    assert schedule(make_pod("p", affinity=affinity), [make_node("a"), make_node("b")])[0] == "b"


def test_prefilter_rejection_message():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["a"]},
            {"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}
    assert message(make_pod("p", affinity=affinity), [make_node("a"), make_node("b")]) == (
        "0/2 nodes are available: pod affinity terms conflict. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


def test_too_many_pods():
    nodes = [make_node("a", pods="1")]
    assert message(make_pod("p"), nodes, {"a": [make_pod("o", node="a")]}).startswith(
        "0/1 nodes are available: 1 Too many pods.")


def test_adaptive_number_of_nodes_to_find():
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(100) == 100
    assert num_feasible_nodes_to_find(1000) == 420
    assert num_feasible_nodes_to_find(5000) == 500
    assert num_feasible_nodes_to_find(1000, percentage=100) == 1000


def test_search_resumes_where_the_last_one_stopped():
    nodes = [NodeInfo.build(make_node(f"n{i:03}")) for i in range(1000)]
    first = schedule_pod(PodInfo(make_pod("p")), nodes, start_index=0)
    assert first.feasible == 420 and first.next_start == 420
    second = schedule_pod(PodInfo(make_pod("q")), nodes, start_index=first.next_start)
    assert second.next_start == 840
    assert int(second.node_name[1:]) >= 420


def test_unschedulable_plugins_are_recorded():
    nodes = [make_node("a", taints=[UNREACHABLE]), make_node("b", cpu="1")]
    _, diagnosis = schedule(make_pod("p", cpu="2"), nodes)
    assert diagnosis.unschedulable_plugins == {"TaintToleration", "NodeResourcesFit"}

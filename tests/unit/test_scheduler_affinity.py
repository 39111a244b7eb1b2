"""Inter-pod affinity and topology spread: filtering and scoring."""

from __future__ import annotations

from kubi.scheduler import interpod
from kubi.scheduler.algorithm import schedule
from kubi.scheduler.filters import UNRESOLVABLE, UNSCHEDULABLE, prefilter, run_filters
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo
from kubi.scheduler.scores import prioritize
from kubi.scheduler.spread import default_selector
from tests.unit.scheduler_fixtures import make_node, make_pod

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def cluster(layout: dict[str, tuple[str, list[dict]]]) -> list[NodeInfo]:
    """{node: (zone, pods)} -> NodeInfos."""
    return [NodeInfo.build(make_node(name, labels={ZONE: zone}), pods)
            for name, (zone, pods) in layout.items()]


def statuses(pod: dict, nodes: list[NodeInfo]) -> dict[str, object]:
    ctx = prefilter(PodInfo(pod), nodes)
    return {n.name: run_filters(ctx, n) for n in nodes}


def term(labels: dict, key: str = HOST) -> dict:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key}


def required(kind: str, *terms: dict) -> dict:
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


# ---------------------------------------------------------------- inter-pod affinity


def test_required_affinity_follows_peers_by_topology():
    nodes = cluster({"a": ("z1", [make_pod("db", labels={"app": "db"}, node="a")]),
                     "b": ("z1", []), "c": ("z2", [])})
    pod = make_pod("web", affinity=required("podAffinity", term({"app": "db"}, ZONE)))
    result = statuses(pod, nodes)
    assert result["a"] is None and result["b"] is None
    assert result["c"].reasons == ("node(s) didn't match pod affinity rules",)
    assert result["c"].code == UNRESOLVABLE


def test_first_pod_of_a_self_affine_group_may_go_anywhere():
    nodes = cluster({"a": ("z1", []), "b": ("z2", [])})
    pod = make_pod("web-0", labels={"app": "web"},
                   affinity=required("podAffinity", term({"app": "web"}, ZONE)))
    assert all(s is None for s in statuses(pod, nodes).values())
    other = make_pod("x", labels={"app": "x"},
                     affinity=required("podAffinity", term({"app": "web"}, ZONE)))
    assert all(s is not None for s in statuses(other, nodes).values())


def test_affinity_needs_the_topology_label_on_the_node():
    nodes = [NodeInfo.build(make_node("bare"), [make_pod("db", labels={"app": "db"}, node="bare")])]
    pod = make_pod("web", affinity=required("podAffinity", term({"app": "db"}, "rack")))
    assert statuses(pod, nodes)["bare"].reasons == ("node(s) didn't match pod affinity rules",)


def test_required_anti_affinity_keeps_replicas_apart():
    nodes = cluster({"a": ("z1", [make_pod("web-0", labels={"app": "web"}, node="a")]),
                     "b": ("z1", [])})
    pod = make_pod("web-1", labels={"app": "web"},
                   affinity=required("podAntiAffinity", term({"app": "web"})))
    result = statuses(pod, nodes)
    assert result["a"].reasons == ("node(s) didn't match pod anti-affinity rules",)
    assert result["a"].code == UNSCHEDULABLE and result["b"] is None


def test_existing_pods_anti_affinity_is_respected():
    guard = make_pod("guard", labels={"app": "guard"}, node="a",
                     affinity=required("podAntiAffinity", term({"app": "web"}, ZONE)))
    nodes = cluster({"a": ("z1", [guard]), "b": ("z1", []), "c": ("z2", [])})
    result = statuses(make_pod("web", labels={"app": "web"}), nodes)
    assert result["b"].reasons == ("node(s) didn't satisfy existing pods anti-affinity rules",)
    assert result["c"] is None


def test_affinity_terms_default_to_the_pods_namespace():
    nodes = cluster({"a": ("z1", [make_pod("db", namespace="other", labels={"app": "db"},
                                           node="a")])})
    pod = make_pod("web", affinity=required("podAffinity", term({"app": "db"})))
    assert statuses(pod, nodes)["a"] is not None
    across = term({"app": "db"})
    across["namespaces"] = ["other"]
    assert statuses(make_pod("web", affinity=required("podAffinity", across)), nodes)["a"] is None


def test_preferred_affinity_scores_nodes_with_peers_higher():
    nodes = cluster({"a": ("z1", [make_pod("db", labels={"app": "db"}, node="a")]),
                     "b": ("z2", [])})
    pod = make_pod("web", affinity={"podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": term({"app": "db"})}]}})
    scores = interpod.prescore(PodInfo(pod), nodes)
    raw = {n.name: interpod.score_node(scores, n) for n in nodes}
    assert raw == {"a": 50, "b": 0}
    assert interpod.normalize(raw) == {"a": 100, "b": 0}
    totals = prioritize(PodInfo(pod), nodes, nodes)
    assert totals["a"] > totals["b"]


def test_preferred_anti_affinity_scores_nodes_with_peers_lower():
    nodes = cluster({"a": ("z1", [make_pod("w0", labels={"app": "web"}, node="a")]),
                     "b": ("z2", [])})
    pod = make_pod("w1", labels={"app": "web"}, affinity={"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term({"app": "web"})}]}})
    name, _ = schedule(pod, [n.node for n in nodes],
                       {"a": [make_pod("w0", labels={"app": "web"}, node="a")]})
    assert name == "b"


# ---------------------------------------------------------------- topology spread


def spread_pod(name: str, max_skew: int = 1, key: str = ZONE, when: str = "DoNotSchedule",
               **extra) -> dict:
    constraint = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
                  "labelSelector": {"matchLabels": {"app": "web"}}, **extra}
    return make_pod(name, labels={"app": "web"}, topologySpreadConstraints=[constraint])


def web(name: str, node: str, **kw) -> dict:
    return make_pod(name, labels={"app": "web"}, node=node, **kw)


def test_do_not_schedule_keeps_skew_within_max():
    nodes = cluster({"a": ("z1", [web("w0", "a"), web("w1", "a")]),
                     "b": ("z2", [web("w2", "b")])})
    result = statuses(spread_pod("new"), nodes)
    assert result["a"].reasons == ("node(s) didn't match pod topology spread constraints",)
    assert result["a"].code == UNSCHEDULABLE and result["b"] is None
    assert all(s is None for s in statuses(spread_pod("new", max_skew=2), nodes).values())


def test_spread_counts_only_matching_live_pods_of_the_namespace():
    dying = web("w1", "a")
    dying["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    nodes = cluster({"a": ("z1", [web("w0", "a"), dying,
                                  make_pod("x", namespace="other", labels={"app": "web"},
                                           node="a")]),
                     "b": ("z2", [])})
    result = statuses(spread_pod("new"), nodes)
    assert result["a"] is not None and result["b"] is None
    nodes = cluster({"a": ("z1", [web("w0", "a")]), "b": ("z2", [web("w2", "b")])})
    assert all(s is None for s in statuses(spread_pod("new"), nodes).values())


def test_node_without_the_topology_key_cannot_take_a_constrained_pod():
    nodes = [NodeInfo.build(make_node("bare"))]
    status = statuses(spread_pod("new"), nodes)["bare"]
    assert status.reasons == (
        "node(s) didn't match pod topology spread constraints (missing required label)",)
    assert status.code == UNRESOLVABLE


def test_min_domains_counts_missing_domains_as_empty():
    nodes = cluster({"a": ("z1", [web("w0", "a")]), "b": ("z1", [])})
    # Only one zone exists, so with minDomains 2 the global minimum is 0.
    result = statuses(spread_pod("new", minDomains=2), nodes)
    assert all(s is not None for s in result.values())
    assert all(s is None for s in statuses(spread_pod("new"), nodes).values())


def test_spread_honours_node_affinity_when_counting_domains():
    nodes = cluster({"a": ("z1", [web("w0", "a")]), "b": ("z2", [])})
    pod = spread_pod("new", nodeSelector={ZONE: "z1"})
    pod["spec"]["nodeSelector"] = {ZONE: "z1"}
    # z2 is not eligible, so z1 alone is the minimum: skew 1 + 1 - 1 = 1.
    assert statuses(pod, nodes)["a"] is None


def test_schedule_anyway_prefers_the_emptier_domain():
    pods = {"a": [web("w0", "a"), web("w1", "a")], "b": []}
    nodes = [make_node("a", labels={ZONE: "z1"}), make_node("b", labels={ZONE: "z2"})]
    name, _ = schedule(spread_pod("new", when="ScheduleAnyway"), nodes, pods)
    assert name == "b"


def test_default_spreading_uses_the_owning_replicaset_selector():
    pod = PodInfo(web("w9", ""))
    rs = {"spec": {"selector": {"matchLabels": {"app": "web"}}}}
    selector = default_selector(pod, [], rs, "ReplicaSet")
    assert selector.matches({"app": "web"}) and not selector.matches({"app": "db"})
    service = {"spec": {"selector": {"app": "web"}}}
    assert str(default_selector(pod, [service])) == "app=web"
    assert default_selector(pod, [{"spec": {"selector": {"app": "db"}}}]).empty

    infos = [NodeInfo.build(make_node("a"), [web("w0", "a"), web("w1", "a")]),
             NodeInfo.build(make_node("b"), [])]
    totals = prioritize(pod, infos, infos, default_spread_selector=selector)
    assert totals["b"] > totals["a"]

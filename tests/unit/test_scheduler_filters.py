"""Filters: each of upstream's default filter plugins, and the reasons they give."""

from __future__ import annotations

import pytest

from kubi.scheduler.filters import (
    UNRESOLVABLE,
    UNSCHEDULABLE,
    PreFilterRejected,
    prefilter,
    run_filters,
)
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo
from kubi.scheduler.resources import non_zero_requests, pod_requests
from tests.unit.scheduler_fixtures import make_node, make_pod, taint


def check(pod: dict, node: dict, pods_on_node: list[dict] = (), others: list[NodeInfo] = ()):
    info = NodeInfo.build(node, pods_on_node)
    ctx = prefilter(PodInfo(pod), [info, *others])
    return run_filters(ctx, info)


# ---------------------------------------------------------------- requests


def test_pod_requests_take_the_larger_of_containers_and_init_containers():
    spec = {
        "initContainers": [
            {"name": "i1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
            {"name": "i2", "resources": {"requests": {"cpu": "2", "memory": "3G"}}},
        ],
        "containers": [
            {"name": "c1", "resources": {"requests": {"cpu": "2", "memory": "1G"}}},
            {"name": "c2", "resources": {"requests": {"cpu": "1", "memory": "1G"}}},
        ],
    }
    assert pod_requests(spec) == {"cpu": 3000, "memory": 3_000_000_000}


def test_pod_requests_count_sidecars_and_overhead():
    spec = {
        "initContainers": [
            {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
            {"name": "init", "resources": {"requests": {"cpu": "1"}}},
        ],
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "200m"}}}],
        "overhead": {"cpu": "10m"},
    }
    # The init container runs beside the sidecar: 1 + 0.5; the app with it: 0.2 + 0.5.
    assert pod_requests(spec)["cpu"] == 1500 + 10


def test_non_zero_requests_default_only_unstated_resources():
    spec = {"containers": [{"name": "a"}, {"name": "b", "resources": {"requests": {"cpu": "0"}}}]}
    assert non_zero_requests(spec) == (100, 2 * 200 * 1024 * 1024)


# ---------------------------------------------------------------- simple plugins


def test_unschedulable_node_refused_unless_tolerated():
    node = make_node("n", unschedulable=True)
    status = check(make_pod("p"), node)
    assert status.reasons == ("node(s) were unschedulable",) and status.code == UNRESOLVABLE
    tolerant = make_pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                          "operator": "Exists", "effect": "NoSchedule"}])
    assert check(tolerant, node) is None


def test_untolerated_taint_reason_names_key_and_value():
    node = make_node("n", taints=[taint("dedicated", value="gpu"),
                                  taint("node.kubernetes.io/unreachable")])
    status = check(make_pod("p"), node)
    assert status.reasons == ("node(s) had untolerated taint {dedicated: gpu}",)
    assert status.plugin == "TaintToleration" and status.code == UNRESOLVABLE


@pytest.mark.parametrize("toleration, ok", [
    ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, True),
    ({"key": "dedicated", "value": "gpu"}, True),  # empty effect tolerates every effect
    ({"key": "dedicated", "operator": "Equal", "value": "cpu"}, False),
    ({"key": "dedicated", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),  # empty key with Exists tolerates everything
    ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False),
])
def test_toleration_matching(toleration, ok):
    node = make_node("n", taints=[taint("dedicated", value="gpu")])
    assert (check(make_pod("p", tolerations=[toleration]), node) is None) is ok


def test_prefer_no_schedule_taint_does_not_filter():
    node = make_node("n", taints=[taint("soft", "PreferNoSchedule")])
    assert check(make_pod("p"), node) is None


def test_not_ready_node_is_refused_through_its_taint():
    node = make_node("n", taints=[taint("node.kubernetes.io/not-ready", "NoExecute")])
    status = check(make_pod("p"), node)
    assert status.reasons == ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)


def test_node_selector_and_required_affinity():
    node = make_node("n", labels={"disk": "ssd", "gen": "5"})
    assert check(make_pod("p", nodeSelector={"disk": "ssd"}), node) is None
    status = check(make_pod("p", nodeSelector={"disk": "hdd"}), node)
    assert status.reasons == ("node(s) didn't match Pod's node affinity/selector",)

    def affinity(*expressions):
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]}}}

    cases = [
        ({"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}, True),
        ({"key": "disk", "operator": "NotIn", "values": ["ssd"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, True),
        ({"key": "disk", "operator": "Exists"}, True),
        ({"key": "zone", "operator": "DoesNotExist"}, True),
        ({"key": "gen", "operator": "Gt", "values": ["4"]}, True),
        ({"key": "gen", "operator": "Lt", "values": ["4"]}, False),
        ({"key": "disk", "operator": "Gt", "values": ["4"]}, False),
    ]
    for expression, ok in cases:
        assert (check(make_pod("p", affinity=affinity(expression)), node) is None) is ok, expression


def test_node_selector_terms_are_ored_and_empty_terms_match_nothing():
    node = make_node("n", labels={"disk": "ssd"})
    terms = [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]},
             {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": terms}}}
    assert check(make_pod("p", affinity=affinity), node) is None
    affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{}]}
    assert check(make_pod("p", affinity=affinity), node) is not None


def test_match_fields_on_metadata_name_narrow_the_nodes():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["a", "b"]}]}]}}}
    ctx = prefilter(PodInfo(make_pod("p", affinity=affinity)), [])
    assert ctx.node_names == {"a", "b"}


def test_conflicting_match_fields_reject_in_prefilter():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["a"]},
            {"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}
    with pytest.raises(PreFilterRejected) as raised:
        prefilter(PodInfo(make_pod("p", affinity=affinity)), [])
    assert raised.value.status.message == "pod affinity terms conflict"


def test_node_name_filter():
    status = check(make_pod("p", node="other"), make_node("n"))
    assert status.reasons == ("node(s) didn't match the requested node name",)


# ---------------------------------------------------------------- resources and ports


def test_insufficient_resources_lists_every_shortage_in_upstreams_order():
    node = make_node("n", cpu="1", memory="1Gi", pods="1", ephemeral="1Gi")
    existing = make_pod("old", cpu="500m", node="n")
    pod = make_pod("p", cpu="600m", memory="2Gi")
    pod["spec"]["containers"][0]["resources"]["requests"]["ephemeral-storage"] = "2Gi"
    pod["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "1"
    status = check(pod, node, [existing])
    assert status.code == UNSCHEDULABLE and status.plugin == "NodeResourcesFit"
    assert status.reasons == ("Too many pods", "Insufficient cpu", "Insufficient memory",
                              "Insufficient ephemeral-storage", "Insufficient example.com/gpu")


def test_pod_without_requests_only_needs_a_pod_slot():
    node = make_node("n", cpu="100m", pods="2")
    assert check(make_pod("p"), node, [make_pod("big", cpu="100m", node="n")]) is None


def test_exact_fit_is_accepted():
    node = make_node("n", cpu="1", memory="1Gi")
    assert check(make_pod("p", cpu="500m", memory="512Mi"), node,
                 [make_pod("o", cpu="500m", memory="512Mi", node="n")]) is None


def test_host_port_conflicts():
    def with_port(name, port, ip=None, protocol=None, node=None):
        pod = make_pod(name, node=node)
        spec = {"containerPort": 80, "hostPort": port}
        if ip:
            spec["hostIP"] = ip
        if protocol:
            spec["protocol"] = protocol
        pod["spec"]["containers"][0]["ports"] = [spec]
        return pod

    node = make_node("n")
    existing = [with_port("o", 8080, ip="10.0.0.1", node="n")]
    status = check(with_port("p", 8080), node, existing)
    assert status.reasons == ("node(s) didn't have free ports for the requested pod ports",)
    assert check(with_port("p", 8080, ip="10.0.0.2"), node, existing) is None
    assert check(with_port("p", 8080, protocol="UDP"), node, existing) is None
    assert check(with_port("p", 8081), node, existing) is None


def test_filter_order_reports_the_first_failing_plugin():
    node = make_node("n", cpu="100m", taints=[taint("x")], unschedulable=True)
    status = check(make_pod("p", cpu="1"), node)
    assert status.plugin == "NodeUnschedulable"

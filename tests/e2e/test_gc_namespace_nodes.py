"""Cascading deletion, namespace lifecycle and node health, driven through the real kubectl.

One kubi serves the module, started with `--no-controllers`; beside it run
the ReplicaSet controller, the garbage collector, the namespace, service
account and root CA controllers, node lifecycle (5 s grace period), taint
eviction, node IPAM, the scheduler and one simulated node (see
`gc_namespace_nodes_support`), so ReplicaSet pods really run and terminate
gracefully. Each test works in its own namespace. The node test adds two
bare Nodes: `n-alive`, whose Lease the support process keeps renewing, and
`n-dead`, whose Lease is written once and then left to expire.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e import tables
from tests.e2e.gc_namespace_nodes_support import start_components
from tests.e2e.harness import Cluster
from tests.e2e.statefulset_support import get_json, wait_until

REPLICASET = """\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
"""


@pytest.fixture(scope="module")
def gc_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("kubi-gc"), extra_args=["--no-controllers"]) as cluster:
        components = start_components(cluster, renew=("n-alive",))
        try:
            yield cluster
        finally:
            components.stop()


def pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return list(get_json(cluster, "pods", "-n", namespace)["items"])


def running_replicaset(cluster: Cluster, namespace: str) -> str:
    """Create namespace and ReplicaSet `web`; return its uid once both pods run."""
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=REPLICASET)
    uid = get_json(cluster, "rs", "web", "-n", namespace)["metadata"]["uid"]

    def both_running() -> bool:
        owned = [p for p in pods(cluster, namespace)
                 if p["metadata"]["ownerReferences"][0]["uid"] == uid
                 and p.get("status", {}).get("phase") == "Running"]
        return len(owned) == 2

    wait_until(both_running, 60, what="two running pods of ReplicaSet web")
    return str(uid)


def test_background_cascade_removes_the_pods(gc_cluster: Cluster) -> None:
    running_replicaset(gc_cluster, "gc-background")
    out = gc_cluster.kubectl("delete", "rs", "web", "-n", "gc-background",
                             "--cascade=background")
    assert out.stdout == 'replicaset.apps "web" deleted\n'
    wait_until(lambda: pods(gc_cluster, "gc-background") == [], 60, what="the pods gone")


def test_foreground_cascade_removes_the_owner_after_its_pods(gc_cluster: Cluster) -> None:
    running_replicaset(gc_cluster, "gc-foreground")
    out = gc_cluster.kubectl("delete", "rs", "web", "-n", "gc-foreground",
                             "--cascade=foreground", "--wait=false")
    assert out.stdout == 'replicaset.apps "web" deleted\n'
    # kubectl waits until the ReplicaSet is gone; by then no blocking pod may remain.
    gc_cluster.kubectl("wait", "--for=delete", "rs/web", "-n", "gc-foreground",
                       "--timeout=60s", check=False, timeout=90)
    assert gc_cluster.kubectl("get", "rs", "web", "-n", "gc-foreground",
                              check=False).returncode != 0
    assert pods(gc_cluster, "gc-foreground") == []


def test_orphan_cascade_keeps_the_pods(gc_cluster: Cluster) -> None:
    running_replicaset(gc_cluster, "gc-orphan")
    gc_cluster.kubectl("delete", "rs", "web", "-n", "gc-orphan", "--cascade=orphan",
                       timeout=60)
    left = pods(gc_cluster, "gc-orphan")
    assert len(left) == 2
    assert all(not p["metadata"].get("ownerReferences") for p in left)
    assert all(not p["metadata"].get("deletionTimestamp") for p in left)
    listed = tables.by_name(gc_cluster.kubectl("get", "pods", "-n", "gc-orphan").stdout)
    assert {row["STATUS"] for row in listed.values()} == {"Running"}


def test_deleting_a_namespace_empties_and_removes_it(gc_cluster: Cluster) -> None:
    running_replicaset(gc_cluster, "gc-doomed")
    kubectl = gc_cluster.kubectl
    kubectl("create", "configmap", "settings", "-n", "gc-doomed", "--from-literal=a=b")
    kubectl("create", "service", "clusterip", "web", "-n", "gc-doomed", "--tcp=80:80")
    out = kubectl("delete", "namespace", "gc-doomed", timeout=120)
    assert out.stdout == 'namespace "gc-doomed" deleted\n'
    gone = kubectl("get", "namespace", "gc-doomed", check=False)
    assert gone.returncode != 0
    assert 'namespaces "gc-doomed" not found' in gone.stderr
    # Creating in it again starts afresh: the old content did not survive.
    kubectl("create", "namespace", "gc-doomed")
    wait_until(lambda: kubectl("get", "sa", "default", "-n", "gc-doomed",
                               check=False).returncode == 0, 30, what="a default account")
    assert pods(gc_cluster, "gc-doomed") == []
    assert kubectl("get", "configmap", "settings", "-n", "gc-doomed",
                   check=False).returncode != 0


def test_new_namespaces_get_the_default_account_and_root_ca(gc_cluster: Cluster) -> None:
    kubectl = gc_cluster.kubectl
    kubectl("create", "namespace", "gc-fresh")
    wait_until(lambda: kubectl("get", "cm", "kube-root-ca.crt", "-n", "gc-fresh",
                               check=False).returncode == 0, 30, what="kube-root-ca.crt")
    wait_until(lambda: kubectl("get", "sa", "default", "-n", "gc-fresh",
                               check=False).returncode == 0, 30, what="the default account")
    accounts = tables.by_name(kubectl("get", "sa", "-n", "gc-fresh").stdout)
    assert list(accounts) == ["default"] and accounts["default"]["SECRETS"] == "0"
    cm = get_json(gc_cluster, "cm", "kube-root-ca.crt", "-n", "gc-fresh")
    assert cm["data"] == {"ca.crt": gc_cluster.ca_file.read_text()}
    assert cm["metadata"]["annotations"]["kubernetes.io/description"].startswith(
        "Contains a CA bundle that can be used to verify the kube-apiserver")


# ---- nodes


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _add_node(cluster: Cluster, name: str) -> None:
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "spec": {"unschedulable": True}}))
    now = _now()
    status = {"status": {"conditions": [{
        "type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
        "lastTransitionTime": now}]}}
    cluster.kubectl("patch", "node", name, "--subresource=status", "--type=merge",
                    "-p", json.dumps(status))


def _pod(name: str, tolerations: list[dict[str, Any]], grace: int = 30) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "n-dead", "terminationGracePeriodSeconds": grace,
                     "tolerations": tolerations,
                     "containers": [{"name": "c", "image": "nginx:1.14.2"}]}}


def _condition(node: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in node["status"]["conditions"] if c["type"] == ctype)


def test_a_silent_node_turns_unknown_is_tainted_and_its_pods_evicted(
        gc_cluster: Cluster) -> None:
    kubectl = gc_cluster.kubectl
    _add_node(gc_cluster, "n-alive")
    _add_node(gc_cluster, "n-dead")
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "n-dead", "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": "n-dead", "leaseDurationSeconds": 40,
                      "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}
    kubectl("create", "-f", "-", input=json.dumps(lease))
    kubectl("create", "namespace", "gc-evict")
    unreachable = {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                   "effect": "NoExecute"}
    not_ready = {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute"}
    manifests = [_pod("doomed", [{**unreachable, "tolerationSeconds": 2}], grace=0),
                 _pod("steady", [unreachable, not_ready])]
    for manifest in manifests:
        kubectl("create", "-n", "gc-evict", "-f", "-", input=json.dumps(manifest))
    now = _now()
    kubectl("patch", "pod", "steady", "-n", "gc-evict", "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now}]}}))

    # Each node got its own pod CIDR from 10.42.0.0/16.
    def pod_cidr(name: str) -> str:
        return str(get_json(gc_cluster, "node", name)["spec"].get("podCIDR") or "")

    cidrs = {}
    for name in ("n-alive", "n-dead"):
        wait_until(lambda: bool(pod_cidr(name)), 30, what=f"a podCIDR for {name}")  # noqa: B023
        spec = get_json(gc_cluster, "node", name)["spec"]
        assert spec["podCIDRs"] == [spec["podCIDR"]] and spec["podCIDR"].startswith("10.42.")
        cidrs[name] = spec["podCIDR"]
    assert len(set(cidrs.values())) == 2

    started = time.monotonic()
    wait_until(lambda: tables.by_name(kubectl("get", "nodes").stdout)["n-dead"]["STATUS"]
               == "NotReady,SchedulingDisabled", 60, what="n-dead NotReady")
    assert time.monotonic() - started < 30
    node = get_json(gc_cluster, "node", "n-dead")
    ready = _condition(node, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert _condition(node, "MemoryPressure")["status"] == "Unknown"
    assert tables.by_name(kubectl("get", "nodes").stdout)["n-alive"]["STATUS"] == \
        "Ready,SchedulingDisabled"

    def taints() -> set[tuple[str, str]]:
        spec = get_json(gc_cluster, "node", "n-dead")["spec"]
        return {(t["key"], t["effect"]) for t in spec.get("taints") or []}

    wait_until(lambda: {("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/unreachable", "NoSchedule")} <= taints(),
               30, what="the unreachable taints")
    assert get_json(gc_cluster, "node", "n-alive")["spec"]["taints"] == [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]

    # The pod tolerating unreachable for 2 s is evicted; the other stays, not ready.
    wait_until(lambda: [p["metadata"]["name"] for p in pods(gc_cluster, "gc-evict")]
               == ["steady"], 30, what="doomed evicted")
    steady = get_json(gc_cluster, "pod", "steady", "-n", "gc-evict")
    assert _condition(steady, "Ready")["status"] == "False"
    events = get_json(gc_cluster, "events", "-n", "gc-evict")["items"]
    seen = {(e["reason"], e["message"]) for e in events}
    assert ("TaintManagerEviction", "Marking for deletion Pod gc-evict/doomed") in seen
    assert ("NodeNotReady", "Node is not ready") in seen
    node_events = {(e["reason"], e["message"])
                   for e in get_json(gc_cluster, "events", "-n", "default")["items"]
                   if e["involvedObject"]["name"] == "n-dead"}
    assert ("NodeNotReady", "Node n-dead status is now: NodeNotReady") in node_events

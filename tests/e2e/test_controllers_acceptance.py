"""Acceptance of the controllers, scheduler and simulated nodes, as a user meets them.

One `kubi up --sim-nodes 3` serves the module, with nothing beside it: the
controller manager, the scheduler and the three simulated nodes are the ones
`kubi up` runs in its own child process. The real kubectl drives the seed's
Deployment and StatefulSet sections step by step, with watches whose output
is replayed afterwards to check the rollout rules (maxSurge, maxUnavailable,
ordered creation and deletion). Each test works in its own namespace, except
the one that deletes the seed's namespace `demo`. The last test stops a
simulated node through its `kubi.dev/sim-stopped` annotation and waits for
upstream's timings (40 s grace period), so it takes about a minute.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from kubi.node.sim.nodes import STOPPED_ANNOTATION
from tests.e2e import tables
from tests.e2e.acceptance_support import (
    JSON,
    available,
    bare_pod,
    condition_time,
    counted,
    get_json,
    is_ready,
    pods_by_name,
    ready_nodes,
    replay,
    replication_controller,
    set_based_replica_set,
    tolerant_deployment,
    tolerant_statefulset,
    watch_rows,
)
from tests.e2e.deployment_support import (
    DEPLOY_FILE,
    DEPLOY_V2_FILE,
    DEPLOYMENT,
    DEPLOYMENT_REF,
    Kubectl,
    create_namespace,
    seed_manifest,
    seed_object,
)
from tests.e2e.harness import Cluster
from tests.e2e.statefulset_support import NGINX_SVC, STS_VCT, WEB_STS, first_index, wait_until
from tests.tools.background import Background

pytestmark = pytest.mark.e2e

CLUSTER_ARGS = ("--sim-nodes", "3")
NODES = ["sim-node-0", "sim-node-1", "sim-node-2"]
# The alphabet of upstream's SafeEncodeString: no vowels, no look-alikes.
HASH = r"[bcdfghjklmnpqrstvwxz2456789]{1,10}"
SUFFIX = r"[bcdfghjklmnpqrstvwxz2456789]{5}"
TOLERATION_SECONDS = 5


@pytest.fixture(scope="module", autouse=True)
def three_ready_nodes(cluster: Cluster) -> None:
    wait_until(lambda: ready_nodes(cluster) == NODES, 60, what="three Ready simulated nodes")


def replica_sets(cluster: Cluster, namespace: str) -> dict[str, dict[str, str]]:
    listed = cluster.kubectl("get", "rs", "-n", namespace).stdout
    if not listed.strip():
        return {}  # "No resources found" goes to stderr
    assert tables.columns(listed) == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    return tables.by_name(listed)


def counts(row: dict[str, str]) -> tuple[str, str, str]:
    return row["DESIRED"], row["CURRENT"], row["READY"]


def rolled_out(kubectl: Kubectl, ref: str, namespace: str) -> str:
    result = kubectl("rollout", "status", ref, "-n", namespace, "--timeout=90s", timeout=120)
    return result.stdout


def pod_rows(cluster: Cluster, namespace: str, selector: str) -> dict[str, dict[str, str]]:
    result = cluster.kubectl("get", "pod", "-n", namespace, "-l", selector)
    return tables.by_name(result.stdout) if result.stdout.strip() else {}


def scaling_messages(cluster: Cluster, namespace: str) -> set[str]:
    listed = get_json(cluster, "events", "-n", namespace,
                      "--field-selector", "reason=ScalingReplicaSet")
    return {event["message"] for event in listed["items"]}


# ---- the seed's Deployment section


@pytest.mark.kubectl_skew
def test_seed_deployment_section(cluster: Cluster, kubectl: Kubectl, kubectl_version: str,
                                 request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    created = kubectl("create", "-f", "-", input=seed_manifest(DEPLOY_FILE, namespace=namespace))
    assert created.stdout == f"{DEPLOYMENT_REF} created\n"
    wait_until(lambda: bool(replica_sets(cluster, namespace)), 30, what="a ReplicaSet")
    [(first, row)] = replica_sets(cluster, namespace).items()
    assert re.fullmatch(rf"{DEPLOYMENT}-{HASH}", first) and row["DESIRED"] == "3"

    def v1_running() -> bool:
        rows = pod_rows(cluster, namespace, "app=nginx,version=v1")
        return len(rows) == 3 and all((r["READY"], r["STATUS"]) == ("1/1", "Running")
                                      for r in rows.values())

    wait_until(v1_running, 60, what="three v1 pods Running")
    old_pods = sorted(pod_rows(cluster, namespace, "app=nginx,version=v1"))
    assert all(re.fullmatch(rf"{first}-{SUFFIX}", name) for name in old_pods)
    assert counts(replica_sets(cluster, namespace)[first]) == ("3", "3", "3")

    watch = cluster.spawn("get", "pod", "-n", namespace, "-l", "app=nginx", "-w",
                          "--output-watch-events", version=kubectl_version)
    watch.wait_for_line(rf"^ADDED\s+{old_pods[-1]}\s", timeout=30)
    kubectl("apply", "-f", "-", input=seed_manifest(DEPLOY_V2_FILE, namespace=namespace))
    status = rolled_out(kubectl, f"deployment/{DEPLOYMENT}", namespace)
    assert status.endswith(f'deployment "{DEPLOYMENT}" successfully rolled out\n')
    sets = replica_sets(cluster, namespace)
    [second] = set(sets) - {first}
    assert counts(sets[first]) == ("0", "0", "0") and counts(sets[second]) == ("3", "3", "3")
    for name in old_pods:
        watch.wait_for_line(rf"^DELETED\s+{name}\s", timeout=30)

    # 3 replicas with the default 25 %: maxSurge rounds up to 1, maxUnavailable
    # down to 0. So at every moment at most 4 pods count (terminating ones do
    # not) and at least 3 are available.
    rows = watch_rows(watch.lines)
    states = list(replay(rows))[len(old_pods) - 1:]
    assert max(counted(state) for state in states) == 4
    assert min(available(state) for state in states) == 3
    new_rows = [r for r in rows if r.name.startswith(f"{second}-")]
    assert {r.status for r in new_rows} >= {"Pending", "ContainerCreating", "Running"}
    assert {r.status for r in rows if r.name in old_pods} >= {"Running", "Terminating"}
    assert scaling_messages(cluster, namespace) == {
        f"Scaled up replica set {first} from 0 to 3",
        f"Scaled up replica set {second} from 0 to 1",
        f"Scaled down replica set {first} from 3 to 2",
        f"Scaled up replica set {second} from 1 to 2",
        f"Scaled down replica set {first} from 2 to 1",
        f"Scaled up replica set {second} from 2 to 3",
        f"Scaled down replica set {first} from 1 to 0"}

    undone = kubectl("rollout", "undo", f"deployment/{DEPLOYMENT}", "-n", namespace)
    assert undone.stdout == f"{DEPLOYMENT_REF} rolled back\n"
    rolled_out(kubectl, f"deployment/{DEPLOYMENT}", namespace)
    sets = replica_sets(cluster, namespace)
    assert set(sets) == {first, second}
    assert counts(sets[first]) == ("3", "3", "3") and counts(sets[second]) == ("0", "0", "0")
    wait_until(lambda: len(pods_by_name(cluster, namespace)) == 3, 30, what="three pods")
    for name, pod in pods_by_name(cluster, namespace).items():
        assert name.startswith(f"{first}-") and pod["metadata"]["labels"]["version"] == "v1"
        assert pod["spec"]["containers"][0]["image"] == "nginx:1.14.2"


def test_recreate_deletes_all_old_pods_before_creating_new_ones(
        cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    deploy = seed_object(DEPLOY_FILE, namespace=namespace)
    deploy["spec"]["strategy"] = {"type": "Recreate"}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(deploy))
    rolled_out(cluster.kubectl, f"deployment/{DEPLOYMENT}", namespace)
    [first] = replica_sets(cluster, namespace)
    old_pods = sorted(pods_by_name(cluster, namespace))
    watch = cluster.spawn("get", "pod", "-n", namespace, "-w", "--output-watch-events")
    watch.wait_for_line(rf"^ADDED\s+{old_pods[-1]}\s", timeout=30)

    cluster.kubectl("set", "image", f"deployment/{DEPLOYMENT}", "-n", namespace,
                    "nginx=nginx:1.19.2")
    rolled_out(cluster.kubectl, f"deployment/{DEPLOYMENT}", namespace)
    [second] = set(replica_sets(cluster, namespace)) - {first}
    for name in old_pods:
        watch.wait_for_line(rf"^DELETED\s+{name}\s", timeout=30)
    rows = watch_rows(watch.lines)
    states = list(replay(rows))
    arrival = next(i for i, r in enumerate(rows) if r.name.startswith(f"{second}-"))
    # As upstream, old pods that have finished (phase Succeeded, "Completed")
    # no longer hold the new ones back; running or terminating ones do.
    assert counted(states[arrival - 1], f"{first}-") == 0, states[arrival - 1]
    assert available(states[-1], f"{second}-") == 3
    assert f"Scaled down replica set {first} from 3 to 0" in scaling_messages(cluster, namespace)


# ---- the seed's StatefulSet section


@pytest.mark.kubectl_skew
def test_seed_statefulset_section(cluster: Cluster, kubectl: Kubectl, kubectl_version: str,
                                  request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    kubectl("create", "-f", "-", input=seed_manifest(NGINX_SVC, namespace=namespace))
    pods = cluster.spawn("get", "pod", "-n", namespace, "-w", "-l", "app=nginx",
                         "--output-watch-events", version=kubectl_version)
    events = cluster.spawn("get", "event", "-n", namespace, "-w", version=kubectl_version)
    created = kubectl("create", "-f", "-", input=seed_manifest(WEB_STS, namespace=namespace))
    assert created.stdout == "statefulset.apps/web-demo created\n"
    assert tables.columns(kubectl("get", "sts", "-n", namespace).stdout) == \
        ["NAME", "READY", "AGE"]

    # web-demo-1 is created only once web-demo-0 is Running and Ready.
    pods.wait_for_line(r"^MODIFIED\s+web-demo-1\s+1/1\s+Running", timeout=60)
    assert ready_after(pods.lines, 0) < first_index(pods.lines, r"^ADDED\s+web-demo-1\s")
    listed = pods_by_name(cluster, namespace)
    assert listed["web-demo-1"]["metadata"]["creationTimestamp"] >= \
        condition_time(listed["web-demo-0"], "Ready")
    assert_in_order(events, "create", [0, 1])
    for name in ("web-demo-0", "web-demo-1"):
        spec = listed[name]["spec"]
        assert (spec["hostname"], spec["subdomain"]) == (name, "nginx-demo")

    # Scaling to 5 creates 2, 3 and 4, each once the one before is ready.
    scaled = kubectl("scale", "sts", "web-demo", "-n", namespace, "--replicas=5")
    assert scaled.stdout == "statefulset.apps/web-demo scaled\n"
    pods.wait_for_line(r"^MODIFIED\s+web-demo-4\s+1/1\s+Running", timeout=60)
    for ordinal in (2, 3):
        assert ready_after(pods.lines, ordinal) < \
            first_index(pods.lines, rf"^ADDED\s+web-demo-{ordinal + 1}\s")
    assert_in_order(events, "create", [2, 3, 4])

    # Scaling to 2 deletes 4, 3 and 2, each once the one before is gone.
    kubectl("scale", "sts", "web-demo", "-n", namespace, "--replicas=2")
    pods.wait_for_line(r"^DELETED\s+web-demo-2\s", timeout=60)
    for ordinal in (4, 3):
        assert first_index(pods.lines, rf"^DELETED\s+web-demo-{ordinal}\s") < \
            first_index(pods.lines, rf"^MODIFIED\s+web-demo-{ordinal - 1}\s+\S+\s+Terminating")
    assert_in_order(events, "delete", [4, 3, 2])
    assert sorted(pods_by_name(cluster, namespace)) == ["web-demo-0", "web-demo-1"]

    # Deleting every pod brings back the same names, as new pods.
    before = {name: pod["metadata"]["uid"] for name, pod in pods_by_name(
        cluster, namespace).items()}
    deleted = kubectl("delete", "pod", "-l", "app=nginx", "-n", namespace).stdout
    assert re.findall(r'pod "(web-demo-\d)" deleted', deleted) == ["web-demo-0", "web-demo-1"]

    def back_under_their_names() -> bool:
        now = pods_by_name(cluster, namespace)
        return set(now) == set(before) and all(
            is_ready(pod) and pod["metadata"]["uid"] != before[name]
            for name, pod in now.items())

    wait_until(back_under_their_names, 60, what="web-demo-0 and web-demo-1 back")


def ready_after(lines: list[str], ordinal: int) -> int:
    """Where the watch first shows web-demo-<ordinal> Running with its container ready."""
    return first_index(lines, rf"^\w+\s+web-demo-{ordinal}\s+1/1\s+Running")


def assert_in_order(events: Background, verb: str, ordinals: list[int]) -> None:
    """`kubectl get event -w` shows the StatefulSet's create or delete events in this order."""
    messages = [f"{verb} Pod web-demo-{o} in StatefulSet web-demo successful" for o in ordinals]
    events.wait_for_line(re.escape(messages[-1]), timeout=60)
    lines = events.lines
    positions = [first_index(lines, re.escape(message)) for message in messages]
    assert positions == sorted(positions), "\n".join(lines)


def create_web_demo(cluster: Cluster, namespace: str, replicas: int, strategy: dict) -> None:
    sts = yaml.safe_load(seed_manifest(WEB_STS, namespace=namespace))
    sts["spec"]["replicas"] = replicas
    sts["spec"]["updateStrategy"] = strategy
    cluster.kubectl("create", "-f", "-", input=yaml.safe_dump(sts))


def pod_versions(cluster: Cluster, namespace: str) -> dict[str, tuple[str, str]]:
    """Every live pod's (uid, image)."""
    return {name: (pod["metadata"]["uid"], pod["spec"]["containers"][0]["image"])
            for name, pod in pods_by_name(cluster, namespace).items()
            if not pod["metadata"].get("deletionTimestamp")}


def test_partitioned_rolling_update_touches_only_ordinals_from_the_partition(
        cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    create_web_demo(cluster, namespace, 4, {"type": "RollingUpdate",
                                            "rollingUpdate": {"partition": 2}})
    rolled_out(cluster.kubectl, "sts/web-demo", namespace)
    before = pod_versions(cluster, namespace)
    cluster.kubectl("set", "image", "sts/web-demo", "-n", namespace, "nginx=nginx:1.20")
    status = rolled_out(cluster.kubectl, "sts/web-demo", namespace)
    assert status.endswith("partitioned roll out complete: 2 new pods have been updated...\n")
    after = pod_versions(cluster, namespace)
    assert {name: after[name] for name in ("web-demo-0", "web-demo-1")} == \
        {name: before[name] for name in ("web-demo-0", "web-demo-1")}
    for name in ("web-demo-2", "web-demo-3"):
        assert after[name][0] != before[name][0] and after[name][1] == "nginx:1.20"
    sts_status = get_json(cluster, "sts", "web-demo", "-n", namespace)["status"]
    assert (sts_status["updatedReplicas"], sts_status["currentReplicas"]) == (2, 2)


def test_on_delete_updates_only_deleted_pods(cluster: Cluster,
                                             request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    create_web_demo(cluster, namespace, 3, {"type": "OnDelete"})
    wait_until(lambda: len([p for p in pods_by_name(cluster, namespace).values()
                            if is_ready(p)]) == 3, 60, what="three ready pods")
    before = pod_versions(cluster, namespace)
    cluster.kubectl("set", "image", "sts/web-demo", "-n", namespace, "nginx=nginx:1.21")
    wait_until(lambda: get_json(cluster, "sts", "web-demo", "-n", namespace)["status"].get(
        "observedGeneration") == 2, 30, what="the new generation observed")
    assert pod_versions(cluster, namespace) == before
    cluster.kubectl("delete", "pod", "web-demo-1", "-n", namespace)

    def replaced() -> bool:
        pod = pods_by_name(cluster, namespace).get("web-demo-1")
        return pod is not None and is_ready(pod) and pod["metadata"]["uid"] != before[
            "web-demo-1"][0]

    wait_until(replaced, 60, what="web-demo-1 back")
    after = pod_versions(cluster, namespace)
    assert after["web-demo-1"][1] == "nginx:1.21"
    assert {n: after[n] for n in ("web-demo-0", "web-demo-2")} == \
        {n: before[n] for n in ("web-demo-0", "web-demo-2")}


def test_volume_claim_templates_make_claims_that_survive_pod_deletion(
        cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    cluster.kubectl("create", "-n", namespace, "-f", str(STS_VCT))
    rolled_out(cluster.kubectl, "sts/web", namespace)
    claims = tables.by_name(cluster.kubectl("get", "pvc", "-n", namespace).stdout)
    assert sorted(claims) == ["www-web-0", "www-web-1"]
    uids = {name: get_json(cluster, "pvc", name, "-n", namespace)["metadata"]["uid"]
            for name in claims}
    cluster.kubectl("delete", "pod", "web-0", "web-1", "-n", namespace)
    wait_until(lambda: sorted(n for n, p in pods_by_name(cluster, namespace).items()
                              if is_ready(p)) == ["web-0", "web-1"], 60, what="both pods back")
    assert {name: get_json(cluster, "pvc", name, "-n", namespace)["metadata"]["uid"]
            for name in claims} == uids
    volumes = pods_by_name(cluster, namespace)["web-0"]["spec"]["volumes"]
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-0"}} in volumes


# ---- ReplicationController and ReplicaSet


def test_replication_controller_and_set_based_replica_set_keep_their_counts(
        cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    cluster.kubectl("create", "-f", "-", input=json.dumps(replication_controller(namespace)))
    cluster.kubectl("create", "-f", "-", input=json.dumps(set_based_replica_set(namespace)))
    # Excluded by `env NotIn (dev, test)`: the ReplicaSet must leave it alone.
    cluster.kubectl("create", "-f", "-", input=json.dumps(bare_pod(
        namespace, "frontend-dev", {"tier": "frontend", "env": "dev", "release": "stable"})))
    selectors = {"rc": "app=nginx-rc", "rs": "tier=frontend,env notin (dev,test),release"}

    def ready_pods(selector: str) -> dict[str, JSON]:
        return {name: pod for name, pod in pods_by_name(cluster, namespace, "-l", selector)
                .items() if is_ready(pod) and not pod["metadata"].get("deletionTimestamp")}

    def three_each() -> bool:
        return all(len(ready_pods(s)) == 3 for s in selectors.values())

    wait_until(three_each, 60, what="three ready pods each")
    for kind, name in (("rc", "nginx-rc"), ("rs", "frontend")):
        listed = tables.by_name(cluster.kubectl("get", kind, name, "-n", namespace).stdout)
        assert counts(listed[name]) == ("3", "3", "3")
    for kind, selector in selectors.items():
        before = ready_pods(selector)
        owner = {"rc": "ReplicationController", "rs": "ReplicaSet"}[kind]
        assert all(p["metadata"]["ownerReferences"][0]["kind"] == owner
                   for p in before.values())
        victims = sorted(before)[:2]
        cluster.kubectl("delete", "pod", *victims, "-n", namespace)
        wait_until(three_each, 60, what=f"the {kind} back at three pods")
        assert not set(victims) & set(ready_pods(selector))
    bystander = pods_by_name(cluster, namespace)["frontend-dev"]
    assert "ownerReferences" not in bystander["metadata"]


# ---- cascading deletion


def test_deleting_a_deployment_cascades_unless_orphaned(
        cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    manifest = seed_manifest(DEPLOY_FILE, namespace=namespace)
    cluster.kubectl("create", "-f", "-", input=manifest)
    rolled_out(cluster.kubectl, f"deployment/{DEPLOYMENT}", namespace)
    deleted = cluster.kubectl("delete", "deploy", DEPLOYMENT, "-n", namespace).stdout
    assert re.fullmatch(rf'deployment.apps "{DEPLOYMENT}" deleted( from {namespace} '
                        r"namespace)?\n", deleted)
    wait_until(lambda: not get_json(cluster, "rs,pods", "-n", namespace)["items"], 60,
               what="ReplicaSets and pods gone")

    cluster.kubectl("create", "-f", "-", input=manifest)
    rolled_out(cluster.kubectl, f"deployment/{DEPLOYMENT}", namespace)
    [kept] = replica_sets(cluster, namespace)
    pods = {name: pod["metadata"]["uid"] for name, pod in pods_by_name(cluster, namespace).items()}
    cluster.kubectl("delete", "deploy", DEPLOYMENT, "-n", namespace, "--cascade=orphan")

    def released() -> bool:
        owners = get_json(cluster, "rs", kept, "-n", namespace)["metadata"].get(
            "ownerReferences")
        return not owners
    wait_until(released, 30, what="the ReplicaSet released")
    assert counts(replica_sets(cluster, namespace)[kept]) == ("3", "3", "3")
    assert {name: pod["metadata"]["uid"] for name, pod in
            pods_by_name(cluster, namespace).items()} == pods


def test_deleting_namespace_demo_removes_everything_in_it(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "demo")
    for manifest in (DEPLOY_FILE, NGINX_SVC, WEB_STS):
        cluster.kubectl("create", "-f", str(manifest))
    rolled_out(cluster.kubectl, f"deployment/{DEPLOYMENT}", "demo")
    rolled_out(cluster.kubectl, "sts/web-demo", "demo")
    cluster.kubectl("create", "configmap", "settings", "-n", "demo", "--from-literal=a=b")
    kinds = "pods,rs,deploy,sts,svc,cm,sa,events,controllerrevisions"
    assert get_json(cluster, kinds, "-n", "demo")["items"]

    deleted = cluster.kubectl("delete", "namespace", "demo", "--timeout=90s", timeout=120)
    assert deleted.stdout == 'namespace "demo" deleted\n'
    missing = cluster.kubectl("get", "namespace", "demo", check=False)
    assert missing.stderr.strip() == 'Error from server (NotFound): namespaces "demo" not found'
    assert not [item for item in get_json(cluster, kinds, "-A")["items"]
                if item["metadata"].get("namespace") == "demo"]


# ---- a failed node


def test_stopped_node_pods_are_replaced_but_statefulset_pods_not_duplicated(
        cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(cluster, request.node.name)
    for obj in (tolerant_deployment(namespace, 6, TOLERATION_SECONDS),
                tolerant_statefulset(namespace, 3, TOLERATION_SECONDS)):
        cluster.kubectl("create", "-f", "-", input=json.dumps(obj))
    rolled_out(cluster.kubectl, "deployment/survivor", namespace)
    rolled_out(cluster.kubectl, "sts/db", namespace)
    placed = pods_by_name(cluster, namespace)
    node_of = {name: pod["spec"]["nodeName"] for name, pod in placed.items()}
    victim, member = next(
        ((node, name) for name, node in sorted(node_of.items()) if name.startswith("db-")
         and any(n.startswith("survivor-") and v == node for n, v in node_of.items())),
        (None, None))
    assert victim is not None and member is not None, f"no node runs both kinds: {node_of}"
    doomed = sorted(n for n, v in node_of.items() if v == victim and n.startswith("survivor-"))
    member_uid = placed[member]["metadata"]["uid"]
    db_watch = cluster.spawn("get", "pod", "-n", namespace, "-l", "app=db", "-w",
                             "--output-watch-events")
    db_watch.wait_for_line(r"^ADDED\s+db-2\s", timeout=30)
    initial = len(db_watch.lines)

    cluster.kubectl("annotate", "node", victim, f"{STOPPED_ANNOTATION}=true")
    # Upstream's timings: 40 s without a lease renewal, then the taint, then
    # the pods' own 5 s tolerations.
    wait_until(lambda: victim not in ready_nodes(cluster), 75, what=f"{victim} NotReady")

    def tainted() -> bool:
        taints = get_json(cluster, "node", victim)["spec"].get("taints") or []
        return ("node.kubernetes.io/unreachable", "NoExecute") in {
            (t["key"], t["effect"]) for t in taints}

    wait_until(tainted, 30, what=f"{victim} tainted unreachable:NoExecute")

    def replaced_elsewhere() -> bool:
        pods = pods_by_name(cluster, namespace, "-l", "app=survivor")
        live = [p for p in pods.values() if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 6 and all(is_ready(p) and p["spec"]["nodeName"] != victim
                                      for p in live)

    wait_until(replaced_elsewhere, 60, what="six survivor pods on the other nodes")
    pods = pods_by_name(cluster, namespace)
    for name in doomed:
        assert pods[name]["metadata"].get("deletionTimestamp"), f"{name} not evicted"
    evictions = get_json(cluster, "events", "-n", namespace,
                         "--field-selector", "reason=TaintManagerEviction")["items"]
    assert {e["involvedObject"]["name"] for e in evictions} >= set(doomed)

    # The StatefulSet's pod on the lost node is evicted too, but no other pod
    # takes its name while the node cannot confirm that it stopped.
    wait_until(lambda: bool(pods_by_name(cluster, namespace)[member]["metadata"].get(
        "deletionTimestamp")), 30, what=f"{member} evicted")
    db_pods = pods_by_name(cluster, namespace, "-l", "app=db")
    assert sorted(db_pods) == ["db-0", "db-1", "db-2"]
    assert db_pods[member]["metadata"]["uid"] == member_uid
    assert db_pods[member]["spec"]["nodeName"] == victim
    assert not [line for line in db_watch.lines[initial:] if line.startswith("ADDED")]

    cluster.kubectl("annotate", "node", victim, f"{STOPPED_ANNOTATION}-")
    wait_until(lambda: victim in ready_nodes(cluster), 30, what=f"{victim} Ready again")

    def member_back() -> bool:
        pod = pods_by_name(cluster, namespace).get(member)
        return pod is not None and is_ready(pod) and pod["metadata"]["uid"] != member_uid

    wait_until(member_back, 60, what=f"{member} running again")
    wait_until(lambda: not get_json(cluster, "node", victim)["spec"].get("taints"), 30,
               what=f"{victim} untainted")

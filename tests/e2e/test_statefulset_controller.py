"""The seed's StatefulSet chapter, driven through the real kubectl.

One kubi serves the module, started with `--no-controllers`; beside it run
the StatefulSet controller, the scheduler and one simulated node (see
`statefulset_support`), so pods really go Pending → Running and Ready and
terminate gracefully. The walkthrough follows the seed in namespace `demo`:
web-demo-0 before web-demo-1, scale to 5 and back to 2, every pod deleted
and back under its name. The other tests use their own namespaces: a
partitioned rolling update with `rollout status` and `rollout history`,
OnDelete, and the storage chapter's volumeClaimTemplates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.e2e import tables
from tests.e2e.deployment_support import create_namespace, seed_manifest
from tests.e2e.harness import Cluster
from tests.e2e.statefulset_support import (
    NGINX_SVC,
    STS_VCT,
    WEB_STS,
    first_index,
    get_json,
    pod_names,
    start_components,
    wait_until,
)


@pytest.fixture(scope="module")
def sts_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("kubi-sts"), extra_args=["--no-controllers"]) as cluster:
        components = start_components(cluster)
        try:
            yield cluster
        finally:
            components.stop()


def ready_count(cluster: Cluster, namespace: str, name: str) -> str:
    listed = cluster.kubectl("get", "sts", name, "-n", namespace).stdout
    return tables.by_name(listed)[name]["READY"]


def images(cluster: Cluster, namespace: str) -> dict[str, str]:
    pods = get_json(cluster, "pods", "-n", namespace)["items"]
    return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in pods
            if not p["metadata"].get("deletionTimestamp")}


def uids(cluster: Cluster, namespace: str) -> dict[str, str]:
    pods = get_json(cluster, "pods", "-n", namespace)["items"]
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in pods}


def create_seed_set(cluster: Cluster, namespace: str, *, replicas: int = 2,
                    extra: str = "") -> None:
    manifest = seed_manifest(WEB_STS, namespace=namespace).replace(
        "replicas: 2", f"replicas: {replicas}") + extra
    cluster.kubectl("create", "-f", "-", input=manifest)


def test_seed_walkthrough_order_scale_and_identity(sts_cluster: Cluster) -> None:
    kubectl = sts_cluster.kubectl
    kubectl("create", "ns", "demo")
    assert kubectl("create", "-f", str(NGINX_SVC)).stdout == "service/nginx-demo created\n"
    pods = sts_cluster.watch("pod", "-n", "demo", "-l", "app=nginx")
    events = sts_cluster.watch("event", "-n", "demo")
    assert kubectl("create", "-f", str(WEB_STS)).stdout == "statefulset.apps/web-demo created\n"

    # web-demo-1 is created only once web-demo-0 is Running and Ready.
    pods.wait_for_line(r"^web-demo-1\s+1/1\s+Running", timeout=60)
    lines = pods.lines
    assert first_index(lines, r"^web-demo-0\s+1/1\s+Running") < first_index(lines, r"^web-demo-1")
    events.wait_for_line("create Pod web-demo-1 in StatefulSet web-demo successful")
    assert first_index(events.lines, "create Pod web-demo-0 in StatefulSet web-demo successful") \
        < first_index(events.lines, "create Pod web-demo-1 in StatefulSet web-demo successful")
    wait_until(lambda: ready_count(sts_cluster, "demo", "web-demo") == "2/2", what="READY 2/2")
    for name in ("web-demo-0", "web-demo-1"):
        spec = get_json(sts_cluster, "pod", name, "-n", "demo")["spec"]
        assert (spec["hostname"], spec["subdomain"]) == (name, "nginx-demo")

    # Scaling to 5 creates 2, 3 and 4, each after the previous one is ready.
    assert kubectl("scale", "sts", "web-demo", "-n", "demo", "--replicas=5").stdout == \
        "statefulset.apps/web-demo scaled\n"
    pods.wait_for_line(r"^web-demo-4\s+1/1\s+Running", timeout=60)
    lines = pods.lines
    for ordinal in (2, 3):
        assert first_index(lines, rf"^web-demo-{ordinal}\s+1/1\s+Running") \
            < first_index(lines, rf"^web-demo-{ordinal + 1}\s")
    wait_until(lambda: ready_count(sts_cluster, "demo", "web-demo") == "5/5", what="READY 5/5")

    # Scaling to 2 deletes 4, 3 and 2, in that order.
    kubectl("scale", "sts", "web-demo", "-n", "demo", "--replicas=2")
    events.wait_for_line("delete Pod web-demo-2 in StatefulSet web-demo successful", timeout=60)
    deletions = [first_index(events.lines, f"delete Pod web-demo-{o} in StatefulSet web-demo "
                                           "successful") for o in (4, 3, 2)]
    assert deletions == sorted(deletions)
    wait_until(lambda: pod_names(sts_cluster, "demo") == ["web-demo-0", "web-demo-1"],
               what="two pods left")

    # Deleting every pod brings back the same names, as new pods.
    before = uids(sts_cluster, "demo")
    deleted = kubectl("delete", "pod", "-l", "app=nginx", "-n", "demo").stdout
    assert re.findall(r'pod "(web-demo-\d)" deleted', deleted) == ["web-demo-0", "web-demo-1"]
    wait_until(lambda: ready_count(sts_cluster, "demo", "web-demo") == "2/2"
               and set(uids(sts_cluster, "demo")) == set(before)
               and not set(uids(sts_cluster, "demo").values()) & set(before.values()),
               what="both pods back under their names")
    warnings = kubectl("get", "events", "-n", "demo", "--field-selector", "type=Warning").stdout
    assert "StatefulSet" not in warnings


def test_partitioned_rolling_update(sts_cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(sts_cluster, request.node.name)
    kubectl = sts_cluster.kubectl
    create_seed_set(sts_cluster, namespace, replicas=3)
    status = kubectl("rollout", "status", "sts/web-demo", "-n", namespace, "--timeout=60s")
    assert status.stdout.endswith("partitioned roll out complete: 3 new pods have been updated...\n")

    kubectl("patch", "sts", "web-demo", "-n", namespace, "-p",
            '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}')
    kubectl("set", "image", "sts/web-demo", "-n", namespace, "nginx=nginx:1.20")
    status = kubectl("rollout", "status", "sts/web-demo", "-n", namespace, "--timeout=60s")
    assert status.stdout.endswith("partitioned roll out complete: 1 new pods have been updated...\n")
    assert images(sts_cluster, namespace) == {"web-demo-0": "nginx:1.19.2-alpine",
                                              "web-demo-1": "nginx:1.19.2-alpine",
                                              "web-demo-2": "nginx:1.20"}
    sts = get_json(sts_cluster, "sts", "web-demo", "-n", namespace)
    assert sts["status"]["updatedReplicas"] == 1 and sts["status"]["currentReplicas"] == 2
    assert sts["status"]["currentRevision"] != sts["status"]["updateRevision"]
    history = kubectl("rollout", "history", "sts/web-demo", "-n", namespace).stdout
    assert re.findall(r"^(\d+)\s+<none>$", history, re.MULTILINE) == ["1", "2"]
    revision = kubectl("rollout", "history", "sts/web-demo", "-n", namespace,
                       "--revision=2").stdout
    assert "Image:\tnginx:1.20" in revision

    # Partition 0 rolls the rest, highest ordinal first.
    kubectl("patch", "sts", "web-demo", "-n", namespace, "-p",
            '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    kubectl("rollout", "status", "sts/web-demo", "-n", namespace, "--timeout=60s")
    wait_until(lambda: set(images(sts_cluster, namespace).values()) == {"nginx:1.20"},
               what="every pod at nginx:1.20")
    sts = get_json(sts_cluster, "sts", "web-demo", "-n", namespace)
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    deleted = [e["message"] for e in sorted(
        get_json(sts_cluster, "events", "-n", namespace)["items"],
        key=lambda e: e["metadata"]["name"]) if e["reason"] == "SuccessfulDelete"]
    assert deleted == [f"delete Pod web-demo-{o} in StatefulSet web-demo successful"
                       for o in (2, 1, 0)]


def test_on_delete_updates_only_deleted_pods(sts_cluster: Cluster,
                                             request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(sts_cluster, request.node.name)
    kubectl = sts_cluster.kubectl
    create_seed_set(sts_cluster, namespace,
                    extra="  updateStrategy:\n    type: OnDelete\n")
    wait_until(lambda: ready_count(sts_cluster, namespace, "web-demo") == "2/2", what="2/2")
    kubectl("set", "image", "sts/web-demo", "-n", namespace, "nginx=nginx:1.21")
    wait_until(lambda: get_json(sts_cluster, "sts", "web-demo", "-n", namespace)["status"].get(
        "observedGeneration") == 2, what="the new generation observed")
    assert set(images(sts_cluster, namespace).values()) == {"nginx:1.19.2-alpine"}
    refused = kubectl("rollout", "status", "sts/web-demo", "-n", namespace, check=False)
    assert refused.stderr == "error: rollout status is only available for RollingUpdate " \
        "strategy type\n"
    kubectl("delete", "pod", "web-demo-1", "-n", namespace)
    wait_until(lambda: images(sts_cluster, namespace) == {"web-demo-0": "nginx:1.19.2-alpine",
                                                         "web-demo-1": "nginx:1.21"},
               what="web-demo-1 recreated at nginx:1.21")
    wait_until(lambda: ready_count(sts_cluster, namespace, "web-demo") == "2/2", what="2/2")


def test_volume_claim_templates_make_claims_that_outlive_pods(
        sts_cluster: Cluster, request: pytest.FixtureRequest) -> None:
    namespace = create_namespace(sts_cluster, request.node.name)
    kubectl = sts_cluster.kubectl
    kubectl("apply", "-n", namespace, "-f", str(STS_VCT))
    kubectl("rollout", "status", "sts/web", "-n", namespace, "--timeout=60s")
    claims = tables.by_name(kubectl("get", "pvc", "-n", namespace).stdout)
    assert sorted(claims) == ["www-web-0", "www-web-1"]
    claim = get_json(sts_cluster, "pvc", "www-web-0", "-n", namespace)
    assert claim["metadata"]["labels"] == {"app": "nginx"}
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
    volumes = get_json(sts_cluster, "pod", "web-1", "-n", namespace)["spec"]["volumes"]
    assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}} in volumes
    claim_uids = {n: get_json(sts_cluster, "pvc", n, "-n", namespace)["metadata"]["uid"]
                  for n in claims}

    kubectl("delete", "pod", "web-0", "web-1", "-n", namespace)
    wait_until(lambda: ready_count(sts_cluster, namespace, "web") == "2/2", what="2/2 again")
    after = {n: get_json(sts_cluster, "pvc", n, "-n", namespace)["metadata"]["uid"]
             for n in claims}
    assert after == claim_uids
    messages = {e["message"] for e in get_json(sts_cluster, "events", "-n", namespace)["items"]}
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in messages
    assert "create Claim www-web-1 Pod web-1 in StatefulSet web success" in messages


"""The Deployment controller end to end: the seed's Deployment driven with kubectl.

The cluster runs with `--no-controllers`; this module starts its own
controller process instead (run as `python -m tests.e2e.test_deployment_controller
KUBECONFIG`), holding exactly the ReplicaSet and Deployment controllers and a
stand-in for the nodes that reports every pod Running and Ready as soon as it
exists. That keeps these tests about rollouts, independent of the scheduler
and of simulated nodes. Each test works in its own namespace.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.deployment_support import (
    DEPLOY_FILE,
    DEPLOY_V2_FILE,
    DEPLOYMENT,
    create_namespace,
    get_object,
    seed_manifest,
    seed_object,
)
from tests.e2e.harness import Cluster
from tests.e2e.tables import by_name, rows
from tests.tools.background import Background

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEPLOY_REF = f"deployment/{DEPLOYMENT}"
HASH = r"[bcdfghjklmnpqrstvwxz2456789]{1,10}"
SUFFIX = r"[bcdfghjklmnpqrstvwxz2456789]{5}"
REVISION = "deployment.kubernetes.io/revision"
JSON = dict[str, Any]


# ---- the controller process


async def _serve(kubeconfig: str) -> None:
    """Run the two controllers and the readiness stand-in until terminated."""
    from kubi.api.meta import now_rfc3339
    from kubi.client import Client
    from kubi.client.informer import Informer
    from kubi.controllers import ControllerManager, replicaset_controller
    from kubi.controllers.deployment import deployment_controller
    from kubi.controllers.podcontrol import PODS
    from kubi.controllers.podutil import is_pod_ready

    client = Client.from_kubeconfig(kubeconfig, user_agent="kube-controller-manager/kubi")
    manager = ControllerManager(client, identity="e2e-deployments", leader_election=False,
                                controllers=[replicaset_controller, deployment_controller])
    pods = Informer(client, PODS)
    waiting: asyncio.Queue[JSON] = asyncio.Queue()

    def notice(pod: JSON) -> None:
        if not is_pod_ready(pod) and not pod["metadata"].get("deletionTimestamp"):
            waiting.put_nowait(pod)

    async def make_ready() -> None:
        while True:
            pod = await waiting.get()
            md, now = pod["metadata"], now_rfc3339()
            conditions = [{"type": kind, "status": "True", "lastTransitionTime": now}
                          for kind in ("Initialized", "Ready", "ContainersReady",
                                       "PodScheduled")]
            containers = [{"name": c["name"], "image": c["image"], "imageID": "",
                           "ready": True, "started": True, "restartCount": 0,
                           "state": {"running": {"startedAt": now}}}
                          for c in pod["spec"]["containers"]]
            try:
                await client.patch(PODS, md["name"], {"status": {
                    "phase": "Running", "conditions": conditions, "startTime": now,
                    "containerStatuses": containers}}, md["namespace"], subresource="status")
            except Exception as err:  # noqa: BLE001 - gone meanwhile, or a retry will come
                print(f"could not mark {md['name']} ready: {err}", flush=True)

    pods.on_add(notice)
    pods.on_update(lambda old, new: notice(new))
    try:
        await asyncio.gather(manager.run(), pods.run(), make_ready())
    finally:
        await client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("kubi-deployments")
    with Cluster(base, extra_args=["--no-controllers"]) as running:
        controllers = Background(
            [sys.executable, "-m", "tests.e2e.test_deployment_controller",
             str(running.kubeconfig)],
            stderr_path=base / "controllers.stderr", cwd=REPO)
        try:
            yield running
        finally:
            controllers.stop()


# ---- helpers


def rollout_status(cluster: Cluster, namespace: str) -> str:
    result = cluster.kubectl("rollout", "status", DEPLOY_REF, "-n", namespace,
                             "--timeout=90s", timeout=120)
    assert f'deployment "{DEPLOYMENT}" successfully rolled out' in result.stdout
    return result.stdout


def replica_sets(cluster: Cluster, namespace: str) -> dict[str, dict[str, str]]:
    return by_name(cluster.kubectl("get", "rs", "-n", namespace).stdout)


def replica_set_objects(cluster: Cluster, namespace: str) -> dict[str, JSON]:
    listed = json.loads(cluster.kubectl("get", "rs", "-n", namespace, "-o", "json").stdout)
    return {rs["metadata"]["name"]: rs for rs in listed["items"]}


def history(cluster: Cluster, namespace: str) -> list[str]:
    output = cluster.kubectl("rollout", "history", DEPLOY_REF, "-n", namespace).stdout
    return [line.split()[0] for line in output.splitlines() if re.match(r"\d+\s", line)]


def scaling_messages(cluster: Cluster, namespace: str) -> list[str]:
    listed = json.loads(cluster.kubectl(
        "get", "events", "-n", namespace, "--field-selector", "reason=ScalingReplicaSet",
        "-o", "json").stdout)
    return [event["message"] for event in listed["items"]]


def max_pods_at_once(watch_lines: list[str]) -> int:
    """The most pods alive at any moment, replaying `get pods -w --output-watch-events`."""
    alive: set[str] = set()
    most = 0
    for line in watch_lines:
        event, name = line.split()[:2]
        if event == "DELETED":
            alive.discard(name)
        else:
            alive.add(name)
        most = max(most, len(alive))
    return most


def apply(cluster: Cluster, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest)


# ---- tests


def test_seed_deployment_rolls_out_updates_and_rolls_back(cluster: Cluster) -> None:
    namespace = create_namespace(cluster, "test_seed_deployment_rollout")
    apply(cluster, seed_manifest(DEPLOY_FILE, namespace=namespace))
    rollout_status(cluster, namespace)

    [(first, row)] = replica_sets(cluster, namespace).items()
    assert re.fullmatch(rf"{DEPLOYMENT}-{HASH}", first)
    assert (row["DESIRED"], row["CURRENT"], row["READY"]) == ("3", "3", "3")
    pods = rows(cluster.kubectl("get", "pods", "-n", namespace, "-l", "app=nginx").stdout)
    assert len(pods) == 3
    for pod in pods:
        assert re.fullmatch(rf"{first}-{SUFFIX}", pod["NAME"]) and pod["READY"] == "1/1"
    deploy = get_object(cluster.kubectl, "deployment", DEPLOYMENT, namespace)
    assert deploy["metadata"]["annotations"][REVISION] == "1"
    assert {c["type"]: (c["status"], c["reason"]) for c in deploy["status"]["conditions"]} == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable")}

    watch = cluster.spawn("get", "pods", "-n", namespace, "-l", "app=nginx", "--watch",
                          "--output-watch-events", "--no-headers")
    watch.wait_for_line(r"^ADDED", timeout=30)
    apply(cluster, seed_manifest(DEPLOY_V2_FILE, namespace=namespace))
    rollout_status(cluster, namespace)
    sets = replica_sets(cluster, namespace)
    [second] = set(sets) - {first}
    watch.wait_for_line(rf"^MODIFIED\s+{second}-", timeout=30)
    assert max_pods_at_once(watch.lines) == 4   # 3 replicas + maxSurge 25% (rounded up: 1)
    assert (sets[first]["DESIRED"], sets[first]["CURRENT"]) == ("0", "0")
    assert (sets[second]["DESIRED"], sets[second]["READY"]) == ("3", "3")
    assert set(scaling_messages(cluster, namespace)) == {
        f"Scaled up replica set {first} from 0 to 3",
        f"Scaled up replica set {second} from 0 to 1",
        f"Scaled down replica set {first} from 3 to 2",
        f"Scaled up replica set {second} from 1 to 2",
        f"Scaled down replica set {first} from 2 to 1",
        f"Scaled up replica set {second} from 2 to 3",
        f"Scaled down replica set {first} from 1 to 0"}
    assert history(cluster, namespace) == ["1", "2"]

    cluster.kubectl("rollout", "undo", DEPLOY_REF, "-n", namespace)
    rollout_status(cluster, namespace)
    sets = replica_sets(cluster, namespace)
    assert set(sets) == {first, second}   # the first ReplicaSet came back, no third
    assert (sets[first]["DESIRED"], sets[second]["DESIRED"]) == ("3", "0")
    annotations = replica_set_objects(cluster, namespace)[first]["metadata"]["annotations"]
    assert annotations[REVISION] == "3"
    assert annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert history(cluster, namespace) == ["2", "3"]
    images = cluster.kubectl("get", "pods", "-n", namespace, "-o",
                             "jsonpath={.items[*].spec.containers[0].image}").stdout.split()
    assert images == ["nginx:1.14.2"] * 3


def test_recreate_deletes_every_old_pod_before_creating_new_ones(cluster: Cluster) -> None:
    namespace = create_namespace(cluster, "test_recreate")
    deploy = seed_object(DEPLOY_FILE, namespace=namespace)
    deploy["spec"]["strategy"] = {"type": "Recreate"}
    apply(cluster, yaml.safe_dump(deploy))
    rollout_status(cluster, namespace)
    watch = cluster.spawn("get", "pods", "-n", namespace, "--watch", "--output-watch-events",
                          "--no-headers")
    for index in range(3):   # the watch lists the old pods first: it is watching once they are out
        watch.wait_for_line(rf"^ADDED\s+{DEPLOYMENT}-{HASH}-", timeout=30, start=index)
    cluster.kubectl("set", "image", DEPLOY_REF, "-n", namespace, "nginx=nginx:1.19.2")
    rollout_status(cluster, namespace)
    new_hash = cluster.kubectl("get", "rs", "-n", namespace, "-l", "version=v1", "-o",
                               "jsonpath={.items[?(@.spec.replicas==3)].metadata.labels."
                               "pod-template-hash}").stdout
    watch.wait_for_line(rf"ADDED\s+{DEPLOYMENT}-{new_hash}-(\S+)(\s+\S+){{3}}", timeout=30)
    watch.wait_for_line(rf"MODIFIED\s+{DEPLOYMENT}-{new_hash}-\S+\s+1/1", timeout=30)
    alive: dict[str, str] = {}
    assert sum(line.startswith("DELETED") for line in watch.lines) == 3
    for line in watch.lines:
        event, name = line.split()[:2]
        pod_hash = name.rsplit("-", 2)[1]
        if event == "DELETED":
            alive.pop(name, None)
        else:
            alive[name] = pod_hash
        assert len(set(alive.values())) <= 1, f"old and new pods at once: {sorted(alive)}"
    messages = scaling_messages(cluster, namespace)
    assert any(re.fullmatch(rf"Scaled down replica set {DEPLOYMENT}-{HASH} from 3 to 0", m)
               for m in messages)
    assert f"Scaled up replica set {DEPLOYMENT}-{new_hash} from 0 to 3" in messages


def test_restart_pause_scale_resume_and_history_limit(cluster: Cluster) -> None:
    namespace = create_namespace(cluster, "test_restart_pause")
    deploy = seed_object(DEPLOY_FILE, namespace=namespace)
    deploy["spec"]["revisionHistoryLimit"] = 1
    apply(cluster, yaml.safe_dump(deploy))
    rollout_status(cluster, namespace)
    [first] = replica_sets(cluster, namespace)

    cluster.kubectl("rollout", "restart", DEPLOY_REF, "-n", namespace)
    rollout_status(cluster, namespace)
    sets = replica_set_objects(cluster, namespace)
    [restarted] = set(sets) - {first}
    assert "kubectl.kubernetes.io/restartedAt" in \
        sets[restarted]["spec"]["template"]["metadata"]["annotations"]

    cluster.kubectl("rollout", "pause", DEPLOY_REF, "-n", namespace)
    cluster.kubectl("set", "image", DEPLOY_REF, "-n", namespace, "nginx=nginx:1.25")
    cluster.kubectl("scale", DEPLOY_REF, "-n", namespace, "--replicas=5")
    cluster.kubectl("wait", DEPLOY_REF, "-n", namespace, "--timeout=60s",
                    "--for=jsonpath={.status.readyReplicas}=5", timeout=90)
    paused = get_object(cluster.kubectl, "deployment", DEPLOYMENT, namespace)
    assert paused["status"]["observedGeneration"] == paused["metadata"]["generation"]
    progressing = [c for c in paused["status"]["conditions"] if c["type"] == "Progressing"]
    assert [(c["status"], c["reason"], c["message"]) for c in progressing] == [
        ("Unknown", "DeploymentPaused", "Deployment is paused")]
    sets = replica_sets(cluster, namespace)
    # Scaled, not rolled. With the template changed both ReplicaSets count as
    # old, and a paused Deployment still trims its history: the first is gone.
    assert set(sets) == {restarted}
    assert sets[restarted]["DESIRED"] == "5"

    cluster.kubectl("rollout", "resume", DEPLOY_REF, "-n", namespace)
    rollout_status(cluster, namespace)
    sets = replica_sets(cluster, namespace)
    [latest] = set(sets) - {restarted}
    assert (sets[latest]["DESIRED"], sets[restarted]["DESIRED"]) == ("5", "0")
    assert history(cluster, namespace) == ["2", "3"]


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))

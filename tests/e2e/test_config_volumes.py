"""Acceptance of configuration and volumes in pods that really run on this machine.

The seed's ConfigMap, Secret, downward API, emptyDir and hostPath chapters,
driven with the real kubectl against `kubi up` as root: env from ConfigMaps
and Secrets, the kubelet's `..data` layout of configMap volumes and an edit
reaching a running pod, secret volumes on tmpfs, the downward API's
labels and annotations files, memory-backed and shared emptyDirs, hostPath
pre-checks and persistence, CreateContainerConfigError until a ConfigMap
exists, imagePullSecrets, emptyDir eviction, and the API server's 422s for
bad volume and envFrom input. The seed's busybox containers run host
commands (`sh`, `env`, `cat`, `ls`, `df` of the node). Host paths live in a
temporary directory; the last test stops the cluster and finds no mount left.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import Cluster
from tests.e2e.node_agent_support import (
    JSON,
    Footprint,
    container_status,
    events_of,
    local_node_cluster,
    mounts_under,
    pod_or_none,
    wait_for,
    wait_ready,
)

if os.geteuid() != 0:
    pytest.skip("pods with volumes need the host runtime, which needs root (mount "
                "namespaces, tmpfs)", allow_module_level=True)

pytestmark = pytest.mark.e2e

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
NS = "demo"
STOP_TIMEOUT = 60.0
SLEEP = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]
TIMESTAMPED = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}$")


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Footprint]]:
    with local_node_cluster(tmp_path_factory.mktemp("kubi-volumes"), STOP_TIMEOUT) as started:
        cluster = started[0]
        cluster.kubectl("create", "namespace", NS)
        wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", NS,
                                         check=False).returncode == 0,
                 30, what="the demo namespace's default ServiceAccount")
        yield started


@pytest.fixture(scope="module")
def node(node_cluster: tuple[Cluster, Footprint]) -> Cluster:
    return node_cluster[0]


@pytest.fixture(scope="module")
def host_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where hostPath volumes of these tests point; removed at the end."""
    path = tmp_path_factory.mktemp("hostpaths")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def seed(name: str) -> JSON:
    loaded: JSON = yaml.safe_load((SEED / name).read_text())
    return loaded


def apply(cluster: Cluster, obj: JSON | str) -> None:
    text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
    cluster.kubectl("apply", "-f", "-", input=text)


def pod(name: str, containers: list[JSON], volumes: list[JSON] | None = None,
        **spec: Any) -> JSON:
    body: JSON = {"containers": containers, "terminationGracePeriodSeconds": 2, **spec}
    if volumes is not None:
        body["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
            "spec": body}


def container(name: str, command: list[str], **extra: Any) -> JSON:
    return {"name": name, "image": "busybox:1.28", "command": command, **extra}


def exec_(cluster: Cluster, name: str, *argv: str, container_name: str = "") -> str:
    target = ["-c", container_name] if container_name else []
    return cluster.kubectl("exec", name, "-n", NS, *target, "--", *argv).stdout


def logs(cluster: Cluster, name: str) -> str:
    return cluster.kubectl("logs", name, "-n", NS).stdout


def delete(cluster: Cluster, name: str) -> None:
    cluster.kubectl("delete", "pod", name, "-n", NS, "--ignore-not-found", "--wait=true",
                    timeout=90)


def status_column(cluster: Cluster, name: str) -> str:
    row = cluster.kubectl("get", "pod", name, "-n", NS, "--no-headers").stdout.split()
    return row[2] if len(row) > 2 else ""


def event_messages(cluster: Cluster, name: str, reason: str) -> list[str]:
    """Messages of the `reason` events about the pod `name` as it is now (not an earlier one)."""
    current = pod_or_none(cluster, name, NS)
    uid = current["metadata"]["uid"] if current else None
    return [e.get("message", "") for e in events_of(cluster, name, NS)
            if e.get("reason") == reason and e["involvedObject"].get("uid") == uid]


# ---- ConfigMaps ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cm_demo_pod(node: Cluster) -> Iterator[JSON]:
    for name in ("cm-demo-mix.yaml", "cm-demo-all-env.yaml", "cm-demo-pod.yaml"):
        node.kubectl("apply", "-f", str(SEED / name))
    yield wait_ready(node, "cm-demo-pod", NS)
    if node.running:
        delete(node, "cm-demo-pod")


def test_cm_demo_pod_environment(node: Cluster, cm_demo_pod: JSON) -> None:
    env = exec_(node, "cm-demo-pod", "env").splitlines()
    for line in ("PLAYER_INITIAL_LIVES=3", "UI_PROPERTIES_FILE_NAME=user-interface.properties",
                 "SPECIAL_LEVEL=very", "SPECIAL_TYPE=charm"):
        assert line in env
    assert "PLAYER_INITIAL_LIVES=3" in logs(node, "cm-demo-pod")


def test_cm_demo_pod_config_files_are_links_into_data(node: Cluster, cm_demo_pod: JSON) -> None:
    listing = exec_(node, "cm-demo-pod", "ls", "-alh", "/config/")
    links = dict(re.findall(r"(\S+) -> (\S+)$", listing, re.MULTILINE))
    assert TIMESTAMPED.match(links["..data"]), listing
    for key in ("game.properties", "player_initial_lives", "ui_properties_file_name",
                "user-interface.properties"):
        assert links[key] == f"..data/{key}", listing
    assert links["..data"] in listing.split()
    assert exec_(node, "cm-demo-pod", "cat", "/etc/game/properties") == \
        "enemy.types=aliens,monsters\nplayer.maximum-lives=5\n"


def test_kubectl_edit_of_the_configmap_reaches_the_pod(node: Cluster, cm_demo_pod: JSON,
                                                       tmp_path: Path) -> None:
    before = exec_(node, "cm-demo-pod", "readlink", "/config/..data").strip()
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/player.maximum-lives=5/player.maximum-lives=7/' "
                      '"$1"\n')
    editor.chmod(0o755)
    node.kubectl("edit", "cm", "cm-demo-mix", "-n", NS, env={"KUBE_EDITOR": str(editor)})
    edited = time.monotonic()
    wait_for(lambda: "player.maximum-lives=7" in exec_(node, "cm-demo-pod", "cat",
                                                        "/config/game.properties"),
             60, what="the edited game.properties in the pod")
    assert time.monotonic() - edited < 60
    after = exec_(node, "cm-demo-pod", "readlink", "/config/..data").strip()
    assert after != before and TIMESTAMPED.match(after)


def test_a_missing_configmap_waits_in_create_container_config_error(node: Cluster) -> None:
    env = [{"name": "LATE", "valueFrom": {"configMapKeyRef": {"name": "late-cm",
                                                                "key": "value"}}}]
    node.kubectl("delete", "configmap", "late-cm", "-n", NS, "--ignore-not-found")
    apply(node, pod("late-config", [container("c", SLEEP, env=env)]))

    def config_error() -> JSON | None:
        found = pod_or_none(node, "late-config", NS)
        waiting = container_status(found or {}).get("state", {}).get("waiting") or {}
        return waiting if waiting.get("reason") == "CreateContainerConfigError" else None

    waiting = wait_for(config_error, 30, what="CreateContainerConfigError")
    assert waiting["message"] == 'configmap "late-cm" not found'
    assert status_column(node, "late-config") == "CreateContainerConfigError"
    node.kubectl("create", "configmap", "late-cm", "-n", NS, "--from-literal=value=arrived")
    wait_ready(node, "late-config", NS, timeout=30)
    assert "LATE=arrived" in exec_(node, "late-config", "env").splitlines()
    delete(node, "late-config")


# ---- Secrets ---------------------------------------------------------------------------------


def test_secret_test_pod_completes_with_the_seeds_log(node: Cluster) -> None:
    node.kubectl("apply", "-f", str(SEED / "secret-demo.yaml"))
    node.kubectl("apply", "-f", str(SEED / "pod-secret.yaml"))
    wait_for(lambda: status_column(node, "secret-test-pod") == "Completed", 60,
             what="secret-test-pod Completed")
    lines = logs(node, "secret-test-pod").splitlines()
    assert "username=devuser" in lines
    assert r"password=S!B\*d$zDsb=" in lines
    delete(node, "secret-test-pod")


def test_a_secret_volume_holds_the_decoded_values_on_tmpfs(node: Cluster) -> None:
    node.kubectl("apply", "-f", str(SEED / "secret-demo.yaml"))
    apply(node, pod("secret-files", [container("c", SLEEP, volumeMounts=[
        {"name": "creds", "mountPath": "/etc/creds", "readOnly": True}])],
        [{"name": "creds", "secret": {"secretName": "dev-db-secret"}}]))
    wait_ready(node, "secret-files", NS)
    assert exec_(node, "secret-files", "cat", "/etc/creds/username") == "devuser"
    assert exec_(node, "secret-files", "cat", "/etc/creds/password") == r"S!B\*d$zDsb="
    assert exec_(node, "secret-files", "df", "/etc/creds").splitlines()[-1].startswith("tmpfs")
    delete(node, "secret-files")


def test_a_missing_image_pull_secret_is_an_event(node: Cluster) -> None:
    node.kubectl("delete", "secret", "regcred", "-n", NS, "--ignore-not-found")
    node.kubectl("create", "secret", "docker-registry", "regcred", "-n", NS,
                 "--docker-server=yourprivateregistry.com", "--docker-username=allen",
                 "--docker-password=mypassw0rd", "--docker-email=allen@example.com")
    apply(node, pod("pull-secrets", [container("c", SLEEP)],
                    imagePullSecrets=[{"name": "regcred"}, {"name": "no-such-regcred"}]))
    wait_ready(node, "pull-secrets", NS)
    messages = wait_for(lambda: event_messages(node, "pull-secrets",
                                               "FailedToRetrieveImagePullSecret"),
                        30, what="a FailedToRetrieveImagePullSecret event")
    wanted = ("Unable to retrieve some image pull secrets (no-such-regcred); "
              "attempting to pull the image may not succeed.")
    assert messages == [wanted]
    delete(node, "pull-secrets")


# ---- downward API ----------------------------------------------------------------------------


def dash_lacks_double_brackets() -> bool:
    probe = subprocess.run(["sh", "-c", "[[ -e / ]]"], capture_output=True, check=False)
    return probe.returncode != 0


def test_downward_api_volume_prints_labels_and_annotations(node: Cluster) -> None:
    text = (SEED / "downwardapi-volume-demo.yaml").read_text()
    if dash_lacks_double_brackets():
        # The node's sh (dash) lacks busybox sh's [[ ]]; [ ] tests the same.
        text = text.replace("[[", "[").replace("]]", "]")
    apply(node, text)
    wait_ready(node, "downwardapi-volume-demo", NS)
    expected = ['cluster="downward-api-test-cluster1"', 'rack="rack-123"',
                'zone="us-east-coast"', 'annotation1="345"', 'annotation2="456"',
                'kubernetes.io/config.source="api"']

    def printed() -> list[str]:
        # dash's echo prints "-en " where busybox's takes it for options.
        lines = logs(node, "downwardapi-volume-demo").replace("-en ", "").splitlines()
        return lines if any("config.source" in ln for ln in lines) else []

    lines = wait_for(printed, 30, what="the downward API files in the log")
    for line in expected:
        assert line in lines
    assert any(re.fullmatch(r'kubernetes\.io/config\.seen="\d{4}-\d\d-\d\dT[\d:.]+Z"', ln)
               for ln in lines)
    delete(node, "downwardapi-volume-demo")


# ---- emptyDir --------------------------------------------------------------------------------


def test_a_memory_emptydir_is_a_tmpfs(node: Cluster) -> None:
    node.kubectl("apply", "-f", str(SEED / "empty-dir-vol-memory-demo.yaml"))
    wait_ready(node, "empty-dir-vol-memory-demo", NS)
    shown = exec_(node, "empty-dir-vol-memory-demo", "df", "-h", "/demo").splitlines()[-1]
    assert shown.split()[0] == "tmpfs" and shown.split()[-1] == "/demo"
    wait_for(lambda: "container is Running" in logs(node, "empty-dir-vol-memory-demo"), 10,
             what="the container's df output")
    assert any(ln.startswith("tmpfs") and ln.endswith(" /demo")
               for ln in logs(node, "empty-dir-vol-memory-demo").splitlines())
    delete(node, "empty-dir-vol-memory-demo")


def test_two_containers_share_an_emptydir(node: Cluster) -> None:
    demo = seed("empty-dir-vol-demo.yaml")
    writer = demo["spec"]["containers"][0]
    writer["command"] = ["sh", "-c", "echo from-writer > /cache/one; " + SLEEP[2]]
    reader = {**writer, "name": "reader", "command": SLEEP}
    demo["spec"]["containers"].append(reader)
    demo["spec"]["terminationGracePeriodSeconds"] = 2
    apply(node, demo)
    wait_ready(node, "empty-dir-vol-demo", NS)
    assert exec_(node, "empty-dir-vol-demo", "cat", "/cache/one",
                 container_name="reader") == "from-writer\n"
    exec_(node, "empty-dir-vol-demo", "sh", "-c", "echo from-reader > /cache/two",
          container_name="reader")
    assert exec_(node, "empty-dir-vol-demo", "cat", "/cache/two",
                 container_name="volume-test-container") == "from-reader\n"
    # The pods' directories are a tmpfs; an emptyDir on disk is bound in from the disk.
    assert exec_(node, "empty-dir-vol-demo", "stat", "-f", "-c", "%T", "/cache").strip() \
        != "tmpfs"
    uid = pod_or_none(node, "empty-dir-vol-demo", NS)["metadata"]["uid"]
    backing = node.data_dir / "agent" / "pods-emptydir" / uid / "cache-volume"
    assert (backing / "one").read_text() == "from-writer\n"
    delete(node, "empty-dir-vol-demo")
    assert not backing.parent.exists()


def test_an_emptydir_over_its_size_limit_evicts_the_pod(node: Cluster) -> None:
    fill = "head -c 3145728 /dev/zero > /scratch/fill; " + SLEEP[2]
    apply(node, pod("fills-scratch", [container("c", ["sh", "-c", fill], volumeMounts=[
        {"name": "scratch", "mountPath": "/scratch"}])],
        [{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}]))

    def evicted() -> JSON | None:
        found = pod_or_none(node, "fills-scratch", NS)
        return found if found and found["status"].get("reason") == "Evicted" else None

    found = wait_for(evicted, 45, what="the pod evicted")
    assert found["status"]["phase"] == "Failed"
    message = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    assert found["status"]["message"] == message
    assert message in event_messages(node, "fills-scratch", "Evicted")
    delete(node, "fills-scratch")


# ---- hostPath --------------------------------------------------------------------------------


def hostpath_demo(path: Path, kind: str, command: list[str]) -> JSON:
    demo = seed("hostpath-demo.yaml")
    demo["spec"]["volumes"][0]["hostPath"] = {"path": str(path), "type": kind}
    demo["spec"]["containers"][0]["command"] = command
    demo["spec"]["terminationGracePeriodSeconds"] = 2
    return demo


def test_hostpath_directory_missing_is_a_failed_mount(node: Cluster, host_dir: Path) -> None:
    missing = host_dir / "data"
    apply(node, hostpath_demo(missing, "Directory", SLEEP))
    wanted = (f'MountVolume.SetUp failed for volume "hostpath-volume" : hostPath type check '
              f"failed: {missing} is not a directory")
    wait_for(lambda: wanted in event_messages(node, "hostpath-demo", "FailedMount"), 30,
             what="a FailedMount event naming the path")
    assert status_column(node, "hostpath-demo") == "ContainerCreating"
    assert not missing.exists()
    delete(node, "hostpath-demo")


def test_hostpath_directory_or_create_keeps_data_across_pods(node: Cluster,
                                                             host_dir: Path) -> None:
    path = host_dir / "persisted"
    write = ["sh", "-c", "date +%s%N > /test-pd/stamp; " + SLEEP[2]]
    apply(node, hostpath_demo(path, "DirectoryOrCreate", write))
    wait_ready(node, "hostpath-demo", NS)
    assert path.is_dir() and path.stat().st_mode & 0o777 == 0o755
    stamp = exec_(node, "hostpath-demo", "cat", "/test-pd/stamp")
    delete(node, "hostpath-demo")
    assert (path / "stamp").read_text() == stamp
    apply(node, hostpath_demo(path, "DirectoryOrCreate", SLEEP))
    wait_ready(node, "hostpath-demo", NS)
    assert exec_(node, "hostpath-demo", "cat", "/test-pd/stamp") == stamp
    delete(node, "hostpath-demo")


# ---- projected service account token ---------------------------------------------------------


def test_a_projected_volume_gathers_its_sources(node: Cluster) -> None:
    node.kubectl("delete", "configmap", "projected-cm", "-n", NS, "--ignore-not-found")
    node.kubectl("create", "configmap", "projected-cm", "-n", NS, "--from-literal=ca.crt=CA")
    apply(node, pod("projected", [container("c", SLEEP, volumeMounts=[
        {"name": "api", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])],
        [{"name": "api", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "projected-cm"}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "fieldPath": "metadata.namespace"}}]}}]}}]))
    wait_ready(node, "projected", NS)
    root = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert exec_(node, "projected", "cat", f"{root}/namespace") == NS
    assert exec_(node, "projected", "cat", f"{root}/ca.crt") == "CA"
    assert exec_(node, "projected", "cat", f"{root}/token")
    delete(node, "projected")


# ---- bad input -------------------------------------------------------------------------------


BAD_INPUT = [
    ("mount-of-no-volume",
     {"containers": [container("c", SLEEP, volumeMounts=[{"name": "nope", "mountPath": "/x"}])]},
     'spec.containers[0].volumeMounts[0].name: Not found: "nope"'),
    ("twice-named",
     {"containers": [container("c", SLEEP)],
      "volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]},
     'spec.volumes[1].name: Duplicate value: "v"'),
    ("unknown-host-path-type",
     {"containers": [container("c", SLEEP)],
      "volumes": [{"name": "v", "hostPath": {"path": "/tmp", "type": "Folder"}}]},
     'spec.volumes[0].hostPath.type: Unsupported value: "Folder"'),
    ("bad-prefix",
     {"containers": [container("c", SLEEP, envFrom=[{"prefix": "A=B",
                                                     "configMapRef": {"name": "x"}}])]},
     'spec.containers[0].envFrom[0].prefix: Invalid value: "A=B"'),
]


@pytest.mark.parametrize(("name", "spec", "expected"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_volume_and_env_input_is_rejected(node: Cluster, name: str, spec: JSON,
                                              expected: str) -> None:
    body = yaml.safe_dump({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "namespace": NS}, "spec": spec})
    result = node.kubectl("create", "-f", "-", "-v=6", input=body, check=False)
    assert result.returncode != 0
    assert f'The Pod "{name}" is invalid' in result.stderr
    assert expected in result.stderr
    assert "422 Unprocessable Entity" in result.stderr


# ---- the end ---------------------------------------------------------------------------------


def test_stopping_the_cluster_leaves_no_mount(node_cluster: tuple[Cluster, Footprint]) -> None:
    cluster, footprint = node_cluster
    cluster.stop(STOP_TIMEOUT)
    assert mounts_under(footprint.base_dir) == []

"""The official `kubernetes` Python client against kubi, configured by its kubeconfig.

The client is loaded from the admin kubeconfig `kubi up` writes (client
certificate, cluster CA) with no extra settings, and runs the full life of a
ConfigMap and of a Deployment: create, read, list (with a label selector),
watch with `kubernetes.watch.Watch` from the list's resourceVersion, the three
patch types the client sends, and delete. Watches end by server-side timeout
or by the test breaking out, so nothing waits without a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.e2e.harness import Cluster

# These tests are about the API server itself: no controller touches their objects.
CLUSTER_ARGS = ("--no-controllers",)

NS = "pyclient"
WATCH_SECONDS = 20


@pytest.fixture(scope="module")
def api_client(cluster: Cluster) -> client.ApiClient:
    api = cluster.python_client()
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=NS))
    )
    return api


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


def collect_events(
    list_call: Callable[..., Any],
    resource_version: str,
    until: Callable[[list[tuple[str, Any]]], bool],
    **kwargs: Any,
) -> list[tuple[str, Any]]:
    """Watch from `resource_version` until `until(events)` holds or the watch times out."""
    events: list[tuple[str, Any]] = []
    watcher = watch.Watch()
    deadline = time.monotonic() + WATCH_SECONDS
    stream: Iterator[dict[str, Any]] = watcher.stream(
        list_call,
        resource_version=resource_version,
        timeout_seconds=WATCH_SECONDS,
        _request_timeout=WATCH_SECONDS + 10,
        **kwargs,
    )
    for event in stream:
        events.append((event["type"], event["object"]))
        if until(events) or time.monotonic() > deadline:
            watcher.stop()
            break
    return events


def test_configmap_lifecycle(core: client.CoreV1Api) -> None:
    start_rv = core.list_namespaced_config_map(NS).metadata.resource_version

    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="settings", labels={"app": "pyclient"}),
        data={"mode": "fast", "level": "3"},
    )
    created = core.create_namespaced_config_map(NS, body)
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert created.data == {"mode": "fast", "level": "3"}

    read = core.read_namespaced_config_map("settings", NS)
    assert read.metadata.resource_version == created.metadata.resource_version
    assert read.data == created.data

    listed = core.list_namespaced_config_map(NS, label_selector="app=pyclient")
    assert [item.metadata.name for item in listed.items] == ["settings"]
    assert core.list_namespaced_config_map(NS, label_selector="app=other").items == []

    # The client sends strategic merge patch for a dict body.
    patched = core.patch_namespaced_config_map("settings", NS, {"data": {"mode": "slow"}})
    assert patched.data == {"mode": "slow", "level": "3"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    # A list body is sent as a JSON patch.
    patched = core.patch_namespaced_config_map(
        "settings", NS, [{"op": "remove", "path": "/data/level"}]
    )
    assert patched.data == {"mode": "slow"}
    # A merge patch has to be asked for by content type.
    patched = core.patch_namespaced_config_map(
        "settings",
        NS,
        {"metadata": {"annotations": {"note": "merged"}}},
        _content_type="application/merge-patch+json",
    )
    assert patched.metadata.annotations == {"note": "merged"}
    assert patched.data == {"mode": "slow"}

    replaced = core.replace_namespaced_config_map(
        "settings",
        NS,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="settings", resource_version=patched.metadata.resource_version
            ),
            data={"mode": "replaced"},
        ),
    )
    assert replaced.data == {"mode": "replaced"}
    assert replaced.metadata.labels is None

    core.delete_namespaced_config_map("settings", NS)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("settings", NS)
    assert missing.value.status == 404

    events = collect_events(
        core.list_namespaced_config_map,
        start_rv,
        until=lambda seen: seen[-1][0] == "DELETED",
        namespace=NS,
        # Watch only this object; other ConfigMaps may appear in the namespace.
        field_selector="metadata.name=settings",
    )
    assert [kind for kind, _ in events] == ["ADDED", *["MODIFIED"] * 4, "DELETED"]
    assert [obj.data for _, obj in events][:5] == [
        {"mode": "fast", "level": "3"},
        {"mode": "slow", "level": "3"},
        {"mode": "slow"},
        {"mode": "slow"},
        {"mode": "replaced"},
    ]
    versions = [int(obj.metadata.resource_version) for _, obj in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert all(isinstance(obj, client.V1ConfigMap) for _, obj in events)


def test_configmap_create_conflict_is_an_api_exception(core: client.CoreV1Api) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="once"), data={"k": "v"})
    core.create_namespaced_config_map(NS, body)
    with pytest.raises(ApiException) as duplicate:
        core.create_namespaced_config_map(NS, body)
    assert duplicate.value.status == 409
    assert duplicate.value.reason == "Conflict"
    assert '"reason":"AlreadyExists"' in duplicate.value.body.replace(" ", "")


def deployment_body(name: str) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="web", image="nginx:1.14.2")]
                ),
            ),
        ),
    )


def test_deployment_lifecycle(apps: client.AppsV1Api) -> None:
    start_rv = apps.list_namespaced_deployment(NS).metadata.resource_version

    created = apps.create_namespaced_deployment(NS, deployment_body("web"))
    # Upstream's defaults come back in the typed model.
    assert created.metadata.generation == 1
    assert created.spec.revision_history_limit == 10
    assert created.spec.progress_deadline_seconds == 600
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.strategy.rolling_update.max_surge == "25%"
    assert created.spec.strategy.rolling_update.max_unavailable == "25%"
    container = created.spec.template.spec.containers[0]
    assert container.image_pull_policy == "IfNotPresent"
    assert created.spec.template.spec.restart_policy == "Always"

    read = apps.read_namespaced_deployment("web", NS)
    assert read.spec.replicas == 2
    listed = apps.list_namespaced_deployment(NS, label_selector="app=web")
    assert [item.metadata.name for item in listed.items] == ["web"]

    scaled = apps.patch_namespaced_deployment_scale("web", NS, {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    assert scaled.kind == "Scale"

    patched = apps.patch_namespaced_deployment(
        "web",
        NS,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.16.1"}]}}
            }
        },
    )
    assert patched.spec.template.spec.containers[0].image == "nginx:1.16.1"
    assert patched.spec.replicas == 4
    # A template change is a spec change; scaling was one too.
    assert patched.metadata.generation == 3

    def new_image(obj: Any) -> bool:
        return obj.spec.template.spec.containers[0].image == "nginx:1.16.1"

    # The deployment controller writes status in between: wait for the template change.
    events = collect_events(
        apps.list_namespaced_deployment,
        start_rv,
        until=lambda seen: new_image(seen[-1][1]),
        namespace=NS,
    )
    assert events[0][0] == "ADDED" and events[0][1].metadata.name == "web"
    assert {kind for kind, _ in events[1:]} == {"MODIFIED"}
    assert new_image(events[-1][1])

    apps.delete_namespaced_deployment("web", NS, propagation_policy="Background")
    deadline = time.monotonic() + 20
    while True:
        try:
            apps.read_namespaced_deployment("web", NS)
        except ApiException as gone:
            assert gone.status == 404
            break
        assert time.monotonic() < deadline, "deployment still present 20s after delete"
        time.sleep(0.1)


def test_watch_sees_changes_made_while_it_runs(cluster: Cluster, core: client.CoreV1Api) -> None:
    start_rv = core.list_namespaced_config_map(NS).metadata.resource_version
    # Made by another client (kubectl) while this one only watches.
    cluster.kubectl("create", "configmap", "from-kubectl", "-n", NS, "--from-literal=a=1")
    cluster.kubectl("label", "configmap", "from-kubectl", "-n", NS, "seen=yes")
    events = collect_events(
        core.list_namespaced_config_map,
        start_rv,
        until=lambda seen: True,
        namespace=NS,
        label_selector="seen=yes",
    )
    # Through a selector, the object enters the watched set on the label change.
    assert [(kind, obj.metadata.name) for kind, obj in events] == [("ADDED", "from-kubectl")]

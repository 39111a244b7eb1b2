"""The generic REST storage on a memory store: the write pipeline, updates with
preconditions, no-op writes, deletion states and the watch cache behind it."""

from __future__ import annotations

import asyncio

import pytest

from kubi.api import catalog
from kubi.api.errors import AlreadyExists, Conflict, Gone, Invalid, NotFound
from kubi.apiserver.rest import DeleteOptions, WriteOptions
from tests.unit.apiserver_fixtures import memory_registry

CM = catalog.lookup("", "v1", "configmaps")
DEPLOY = catalog.lookup("apps", "v1", "deployments")
PODS = catalog.lookup("", "v1", "pods")
NS = catalog.lookup("", "v1", "namespaces")


@pytest.fixture
async def registry():
    async with memory_registry() as reg:
        yield reg


def opts(**kw) -> WriteOptions:
    return WriteOptions(field_manager="test", **kw)


def configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def deployment(name: str, replicas: int = 1) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }


async def test_bootstrap_creates_system_namespaces_and_kubernetes_service(registry):
    names = {e.name for e in registry.cache.resource(NS).entries()}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names
    svc = registry.get(catalog.lookup("", "v1", "services"), "default", "kubernetes")
    assert svc.obj["spec"]["clusterIP"] == "10.43.0.1"


async def test_create_fills_server_fields_and_reads_back(registry):
    entry = await registry.create(CM, "default", configmap("a", k="v"), opts())
    md = entry.obj["metadata"]
    assert md["uid"] and md["creationTimestamp"] and md["resourceVersion"] == str(entry.rv)
    assert registry.get(CM, "default", "a").obj["data"] == {"k": "v"}
    assert md["managedFields"][0]["manager"] == "test"


async def test_create_twice_is_already_exists(registry):
    await registry.create(CM, "default", configmap("a"), opts())
    with pytest.raises(AlreadyExists) as err:
        await registry.create(CM, "default", configmap("a"), opts())
    assert err.value.message == 'configmaps "a" already exists'


async def test_create_in_missing_namespace_is_not_found(registry):
    with pytest.raises(NotFound) as err:
        await registry.create(CM, "nope", configmap("a"), opts())
    assert err.value.message == 'namespaces "nope" not found'


async def test_generate_name(registry):
    obj = configmap("")
    obj["metadata"] = {"generateName": "web-"}
    entry = await registry.create(CM, "default", obj, opts())
    assert entry.name.startswith("web-") and len(entry.name) == 9


async def test_dry_run_stores_nothing(registry):
    before = registry.cache.rev
    await registry.create(CM, "default", configmap("dry"), opts(dry_run=True))
    assert registry.find(CM, "default", "dry") is None
    assert registry.cache.rev == before


async def test_invalid_deployment_is_rejected_with_field_path(registry):
    bad = deployment("web")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(Invalid) as err:
        await registry.create(DEPLOY, "default", bad, opts())
    assert "spec.template.metadata.labels" in err.value.message
    assert registry.find(DEPLOY, "default", "web") is None


async def test_generation_bumps_on_spec_change_only(registry):
    await registry.create(DEPLOY, "default", deployment("web"), opts())

    def scale(obj: dict) -> dict:
        obj["spec"]["replicas"] = 3
        return obj

    def label(obj: dict) -> dict:
        obj["metadata"].setdefault("labels", {})["x"] = "y"
        return obj

    assert (await registry.update_with(DEPLOY, "default", "web", scale, opts())).obj[
        "metadata"]["generation"] == 2
    assert (await registry.update_with(DEPLOY, "default", "web", label, opts())).obj[
        "metadata"]["generation"] == 2


async def test_noop_update_keeps_resource_version(registry):
    first = await registry.create(CM, "default", configmap("a", k="v"), opts())
    again = await registry.update_with(CM, "default", "a", lambda o: o, opts())
    assert again.rv == first.rv


async def test_stale_resource_version_is_conflict(registry):
    first = await registry.create(CM, "default", configmap("a", k="v"), opts())
    body = configmap("a", k="w")
    body["metadata"]["resourceVersion"] = str(first.rv)
    await registry.update(CM, "default", "a", body, opts())
    stale = configmap("a", k="x")
    stale["metadata"]["resourceVersion"] = str(first.rv)
    with pytest.raises(Conflict):
        await registry.update(CM, "default", "a", stale, opts())
    assert registry.get(CM, "default", "a").obj["data"] == {"k": "w"}


async def test_status_is_kept_on_main_resource_update(registry):
    await registry.create(DEPLOY, "default", deployment("web"), opts())

    def set_status(obj: dict) -> dict:
        obj["status"] = {"replicas": 1, "observedGeneration": 1}
        return obj

    await registry.update_with(DEPLOY, "default", "web", set_status, opts(), subresource="status")

    def clobber(obj: dict) -> dict:
        obj["status"] = {}
        obj["spec"]["replicas"] = 2
        return obj

    entry = await registry.update_with(DEPLOY, "default", "web", clobber, opts())
    assert entry.obj["status"] == {"replicas": 1, "observedGeneration": 1}
    assert entry.obj["spec"]["replicas"] == 2


async def test_unbound_pod_is_deleted_at_once_and_bound_pod_gracefully(registry):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await registry.create(PODS, "default", pod, opts())
    _, removed = await registry.delete(PODS, "default", "p", DeleteOptions())
    assert removed

    pod["spec"]["nodeName"] = "n1"
    await registry.create(PODS, "default", pod, opts())
    entry, removed = await registry.delete(PODS, "default", "p", DeleteOptions())
    assert not removed
    assert entry.obj["metadata"]["deletionGracePeriodSeconds"] == 30
    _, removed = await registry.delete(PODS, "default", "p", DeleteOptions(grace_period=0))
    assert removed
    assert registry.find(PODS, "default", "p") is None


async def test_finalizers_hold_deletion_until_removed(registry):
    obj = configmap("f")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    await registry.create(CM, "default", obj, opts())
    entry, removed = await registry.delete(CM, "default", "f", DeleteOptions())
    assert not removed and entry.obj["metadata"]["deletionTimestamp"]

    def drop(o: dict) -> dict:
        o["metadata"]["finalizers"] = []
        return o

    await registry.update_with(CM, "default", "f", drop, opts())
    assert registry.find(CM, "default", "f") is None


async def test_foreground_and_orphan_add_their_finalizers(registry):
    await registry.create(DEPLOY, "default", deployment("fg"), opts())
    entry, _ = await registry.delete(DEPLOY, "default", "fg", DeleteOptions(propagation="Foreground"))
    assert entry.obj["metadata"]["finalizers"] == ["foregroundDeletion"]
    await registry.create(DEPLOY, "default", deployment("or"), opts())
    entry, _ = await registry.delete(DEPLOY, "default", "or", DeleteOptions(propagation="Orphan"))
    assert entry.obj["metadata"]["finalizers"] == ["orphan"]


async def test_namespace_delete_marks_terminating_and_blocks_new_content(registry):
    await registry.create(NS, "", {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": "gone"}}, opts())
    entry, removed = await registry.delete(NS, "", "gone", DeleteOptions())
    assert not removed and entry.obj["status"]["phase"] == "Terminating"
    with pytest.raises(Exception) as err:
        await registry.create(CM, "gone", configmap("x"), opts())
    assert "because it is being terminated" in str(err.value)


async def test_watch_replays_history_and_follows(registry):
    first = await registry.create(CM, "default", configmap("w1"), opts())
    await registry.create(CM, "default", configmap("w2"), opts())
    watcher, initial = registry.cache.watch(CM, namespace="default", match=None, since=first.rv)
    assert [(t, e.name) for t, e in initial] == [("ADDED", "w2")]
    await registry.create(CM, "default", configmap("w3"), opts())
    kind, entry = await asyncio.wait_for(watcher.queue.get(), 2)
    assert (kind, entry.name) == ("ADDED", "w3")
    registry.cache.unwatch(CM, watcher)


async def test_watch_from_before_history_is_gone(registry):
    res = registry.cache.resource(CM)
    res.floor = registry.cache.rev
    with pytest.raises(Gone):
        registry.cache.watch(CM, namespace=None, match=None, since=1)


async def test_service_gets_a_cluster_ip_and_keeps_it(registry):
    svc_rt = catalog.lookup("", "v1", "services")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}
    entry = await registry.create(svc_rt, "default", svc, opts())
    ip = entry.obj["spec"]["clusterIP"]
    assert ip.startswith("10.43.") and ip != "10.43.0.1"
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"selector": {"app": "y"}, "ports": [{"port": 80}]}}
    updated, _ = await registry.update(svc_rt, "default", "s", body, opts())
    assert updated.obj["spec"]["clusterIP"] == ip


async def test_admission_adds_fields_no_manager_owns():
    async with memory_registry(disabled_admission=()) as reg:
        account = {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "default", "namespace": "default"}}
        await reg.create(catalog.lookup("", "v1", "serviceaccounts"), "default", account, opts())
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        stored = (await reg.create(PODS, "default", pod, opts())).obj
    spec = stored["spec"]
    assert spec["serviceAccountName"] == "default" and spec["tolerations"]
    assert spec["volumes"][0]["name"].startswith("kube-api-access-")
    [entry] = stored["metadata"]["managedFields"]
    owned = entry["fieldsV1"]["f:spec"]
    assert "f:containers" in owned
    assert not {"f:volumes", "f:tolerations", "f:serviceAccountName", "f:priority",
                "f:preemptionPolicy"} & set(owned)
    assert "f:volumeMounts" not in owned["f:containers"]['k:{"name":"c"}']

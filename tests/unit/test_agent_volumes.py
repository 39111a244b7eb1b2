"""The agent's volume service: set up, mounts, refresh on change, back-off, eviction,
pull secrets and tokens, against an in-memory API (`FakeApi`) and a temp directory."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.node.agent.context import PodHooks, VolumeService
from kubi.node.agent.pullsecrets import (
    PullSecretError,
    failed_message,
    registry_credentials,
)
from kubi.node.agent.tokens import ServiceAccountTokens, refresh_time, token_request
from kubi.node.agent.volumes import NodeVolumes, VolumesNotReady, backoff_delay
from kubi.node.agent.watched import (
    CONFIGMAP,
    SECRET,
    ObjectRef,
    WatchedObjects,
    pod_references,
)
from kubi.node.envvars import ConfigError


def _not_found(plural: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{plural} "{name}" not found')


class FakeApi:
    """Objects by (plural, namespace, name), with list, watch, get and a POST that 404s."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.watchers: list[tuple[str, str, str, asyncio.Queue[tuple[str, dict[str, Any]]]]] = []
        self.gets = 0
        self.posts: list[tuple[str, Any]] = []
        self.rv = 1

    def remove(self, plural: str, namespace: str, name: str) -> None:
        obj = self.objects.pop((plural, namespace, name))
        for w_plural, ns, w_name, queue in self.watchers:
            if (w_plural, ns, w_name) == (plural, namespace, name):
                queue.put_nowait(("DELETED", obj))

    def put(self, plural: str, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        self.rv += 1
        md["resourceVersion"] = str(self.rv)
        key = (plural, md.get("namespace", ""), md["name"])
        kind = "MODIFIED" if key in self.objects else "ADDED"
        self.objects[key] = obj
        for w_plural, ns, name, queue in self.watchers:
            if (w_plural, ns, name) == key:
                queue.put_nowait((kind, obj))

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        self.gets += 1
        obj = self.objects.get((res.plural, namespace or "", name))
        if obj is None:
            raise _not_found(res.plural, name)
        return obj

    async def list(self, res: Resource, namespace: str | None = None, *,
                   field_selector: str | None = None, **_: Any) -> dict[str, Any]:
        name = (field_selector or "").partition("=")[2]
        obj = self.objects.get((res.plural, namespace or "", name))
        return {"items": [obj] if obj else [], "metadata": {"resourceVersion": str(self.rv)}}

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    field_selector: str | None = None,
                    **_: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        entry = (res.plural, namespace or "", (field_selector or "").partition("=")[2], queue)
        self.watchers.append(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            self.watchers.remove(entry)

    async def request(self, method: str, path: str, *, body: Any = None,
                      **_: Any) -> Any:
        self.posts.append((path, body))
        raise StatusError(404, "NotFound", "the server could not find the requested resource")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def configmap(name: str, data: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "demo"}, "data": data, **extra}


def secret(name: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "demo"}, "type": kind,
            "data": {k: b64(v) for k, v in data.items()}}


def make_pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None,
             uid: str = "uid-1", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "demo", "uid": uid,
                         "labels": {"zone": "us-east-coast", "rack": "rack-123"},
                         "annotations": {"annotation1": "345"}},
            "spec": {"volumes": volumes, "containers": [
                {"name": "c", "command": ["sh"], "volumeMounts": mounts or []}], **spec}}


class Hooks:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pods: list[dict[str, Any]] = []
        self.woken: list[str] = []
        self.evicted: list[tuple[str, str]] = []
        self.events: list[tuple[str, str, str]] = []

    def make(self) -> PodHooks:
        return PodHooks(pods=lambda: list(self.pods), pod_root=self.root,
                        wake=self.woken.append,
                        evict=lambda uid, message: self.evicted.append((uid, message)),
                        event=lambda pod, container, kind, reason, message:
                        self.events.append((kind, reason, message)),
                        allocatable={"memory": "1Gi", "cpu": "2"})


async def eventually(check: Callable[[], Awaitable[Any] | Any], timeout: float = 3.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[NodeVolumes, FakeApi, Hooks]]:
    api = FakeApi()
    service = NodeVolumes(api, use_tmpfs=False, refresh_period=3600)  # type: ignore[arg-type]
    hooks = Hooks(tmp_path / "pods")
    await service.start(hooks.make())
    yield service, api, hooks
    await service.stop()


def read(path: Path) -> str:
    return path.read_text()


# ---- references and pull secrets --------------------------------------------------------


def test_pod_references_cover_volumes_env_and_pull_secrets() -> None:
    pod = make_pod([{"name": "a", "configMap": {"name": "cm-a"}},
                    {"name": "b", "secret": {"secretName": "s-b"}},
                    {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm-c"}},
                                                            {"secret": {"name": "s-c"}}]}}],
                   imagePullSecrets=[{"name": "regcred"}, {"name": ""}])
    pod["spec"]["initContainers"] = [{"name": "i", "envFrom": [{"secretRef": {"name": "s-i"}}]}]
    pod["spec"]["containers"][0]["env"] = [
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-x", "key": "k"}}},
        {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "s-y", "key": "k"}}},
        {"name": "Z", "value": "plain"}]
    refs = pod_references(pod)
    assert refs == {ObjectRef(CONFIGMAP, "demo", n) for n in ("cm-a", "cm-c", "cm-x")} | \
        {ObjectRef(SECRET, "demo", n) for n in ("s-b", "s-c", "s-i", "s-y", "regcred")}


def test_docker_config_json_credentials() -> None:
    config = {"auths": {"reg.example.com": {"username": "u", "password": "p",
                                            "auth": b64("allen:mypassw0rd")}}}
    found = registry_credentials(secret("regcred", {".dockerconfigjson": orjson.dumps(
        config).decode()}, "kubernetes.io/dockerconfigjson"))
    assert [(c.registry, c.username, c.password) for c in found] == \
        [("reg.example.com", "allen", "mypassw0rd")]
    assert "mypassw0rd" not in repr(found)


def test_dockercfg_and_other_types() -> None:
    legacy = secret("old", {".dockercfg": '{"r.io": {"username": "a", "password": "b"}}'},
                    "kubernetes.io/dockercfg")
    assert [(c.registry, c.username) for c in registry_credentials(legacy)] == [("r.io", "a")]
    assert registry_credentials(secret("x", {"a": "b"})) == []
    with pytest.raises(PullSecretError):
        registry_credentials(secret("bad", {".dockerconfigjson": "{not json"},
                                    "kubernetes.io/dockerconfigjson"))


def test_failed_pull_secret_message_is_upstreams() -> None:
    assert failed_message(["a", "b"]) == ("Unable to retrieve some image pull secrets (a, b); "
                                          "attempting to pull the image may not succeed.")


async def test_missing_pull_secret_is_an_event_and_found_ones_resolve(node: Any) -> None:
    service, api, hooks = node
    config = orjson.dumps({"auths": {"r.io": {"auth": b64("u:p")}}}).decode()
    api.put("secrets", secret("regcred", {".dockerconfigjson": config},
                              "kubernetes.io/dockerconfigjson"))
    pod = make_pod([], imagePullSecrets=[{"name": "regcred"}, {"name": "gone"}])
    await service.setup(pod, hooks.root / "uid-1")
    assert hooks.events == [("Warning", "FailedToRetrieveImagePullSecret", failed_message(
        ["gone"]))]
    assert [c.registry for c in service.pull_credentials("uid-1")] == ["r.io"]


async def test_watched_objects_follow_adds_and_deletes() -> None:
    api = FakeApi()
    changed: list[ObjectRef] = []
    objects = WatchedObjects(api, on_change=changed.append)  # type: ignore[arg-type]
    ref = ObjectRef(CONFIGMAP, "demo", "cm")
    try:
        objects.sync({ref})
        await eventually(lambda: api.watchers)
        assert await objects.get(CONFIGMAP, "demo", "cm") is None
        api.put("configmaps", configmap("cm", {"k": "v"}))
        await eventually(lambda: changed)
        found = await objects.get(CONFIGMAP, "demo", "cm")
        assert found is not None and found["data"] == {"k": "v"}
        gets = api.gets
        api.remove("configmaps", "demo", "cm")
        await eventually(lambda: len(changed) == 2)
        assert await objects.get(CONFIGMAP, "demo", "cm") is None
        assert api.gets == gets  # answered from the watch
        objects.sync(set())
        await eventually(lambda: not api.watchers)
    finally:
        await objects.close()


# ---- setup and mounts --------------------------------------------------------------------


async def test_setup_projects_files_and_mounts_them(node: Any, tmp_path: Path) -> None:
    service, api, hooks = node
    api.put("configmaps", configmap("cm-demo-mix", {"game.properties": "lives=5\n",
                                                    "player_initial_lives": "3"}))
    api.put("secrets", secret("dev-db-secret", {"username": "devuser"}))
    host = tmp_path / "host" / "data"
    volumes = [
        {"name": "full-config", "configMap": {"name": "cm-demo-mix"}},
        {"name": "part-config", "configMap": {"name": "cm-demo-mix", "items": [
            {"key": "game.properties", "path": "properties"}]}},
        {"name": "creds", "secret": {"secretName": "dev-db-secret", "defaultMode": 0o400}},
        {"name": "podinfo", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}},
        {"name": "cache", "emptyDir": {}},
        {"name": "data", "hostPath": {"path": str(host), "type": "DirectoryOrCreate"}},
    ]
    mounts = [{"name": "full-config", "mountPath": "/config"},
              {"name": "part-config", "mountPath": "/etc/game/"},
              {"name": "cache", "mountPath": "/cache", "readOnly": True},
              {"name": "cache", "mountPath": "/sub", "subPath": "one/two"},
              {"name": "data", "mountPath": "/data"}]
    pod = make_pod(volumes, mounts)
    pod_dir = hooks.root / "uid-1"
    await service.setup(pod, pod_dir)
    config_dir = pod_dir / "volumes" / "kubernetes.io~configmap" / "full-config"
    assert os.readlink(config_dir / "game.properties") == "..data/game.properties"
    assert os.readlink(config_dir / "..data").startswith("..")
    assert read(config_dir / "player_initial_lives") == "3"
    part = pod_dir / "volumes" / "kubernetes.io~configmap" / "part-config"
    assert read(part / "properties") == "lives=5\n"
    creds = pod_dir / "volumes" / "kubernetes.io~secret" / "creds" / "username"
    assert read(creds) == "devuser" and os.stat(creds).st_mode & 0o777 == 0o400
    info = pod_dir / "volumes" / "kubernetes.io~downward-api" / "podinfo"
    assert read(info / "labels") == 'rack="rack-123"\nzone="us-east-coast"'
    annotations = read(info / "annotations").splitlines()
    assert annotations[0] == 'annotation1="345"'
    assert annotations[1].startswith('kubernetes.io/config.seen="')
    assert annotations[2] == 'kubernetes.io/config.source="api"'
    assert host.is_dir() and os.stat(host).st_mode & 0o777 == 0o755

    got = await service.mounts(pod, pod["spec"]["containers"][0], {}, pod_dir)
    by_path = {m.container_path: m for m in got}
    assert by_path["/config"].host_path == str(config_dir) and by_path["/config"].readonly
    assert by_path["/etc/game/"].readonly
    assert by_path["/cache"].readonly and not by_path["/sub"].readonly
    assert by_path["/sub"].host_path.endswith("empty-dir/cache/one/two")
    assert by_path["/data"].host_path == str(host) and not by_path["/data"].readonly


async def test_an_untyped_missing_host_path_becomes_a_directory(node: Any,
                                                                tmp_path: Path) -> None:
    service, _, hooks = node
    path = tmp_path / "untyped"
    await service.setup(make_pod([{"name": "h", "hostPath": {"path": str(path)}}]),
                        hooks.root / "uid-1")
    assert path.is_dir()


async def test_mount_of_an_unknown_volume_is_a_config_error(node: Any) -> None:
    service, _, hooks = node
    pod = make_pod([], [{"name": "nope", "mountPath": "/x"}])
    await service.setup(pod, hooks.root / "uid-1")
    with pytest.raises(ConfigError, match='cannot find volume "nope"'):
        await service.mounts(pod, pod["spec"]["containers"][0], {}, hooks.root / "uid-1")


async def test_failed_mount_backs_off_and_retries_when_the_object_appears(node: Any) -> None:
    service, api, hooks = node
    pod = make_pod([{"name": "full-config", "configMap": {"name": "later"}},
                    {"name": "cache", "emptyDir": {}}])
    hooks.pods.append(pod)
    with pytest.raises(VolumesNotReady) as first:
        await service.setup(pod, hooks.root / "uid-1")
    assert first.value.event_message == \
        'MountVolume.SetUp failed for volume "full-config" : configmap "later" not found'
    with pytest.raises(VolumesNotReady) as again:
        await service.setup(pod, hooks.root / "uid-1")
    assert again.value.event_message == ""  # still backing off: already reported
    api.put("configmaps", configmap("later", {"k": "v"}))
    await eventually(lambda: "uid-1" in hooks.woken)
    await service.setup(pod, hooks.root / "uid-1")


async def test_several_failures_each_get_an_event(node: Any, tmp_path: Path) -> None:
    service, _, hooks = node
    missing = tmp_path / "missing"
    pod = make_pod([{"name": "a", "hostPath": {"path": str(missing), "type": "Directory"}},
                    {"name": "b", "secret": {"secretName": "nope"}}])
    with pytest.raises(VolumesNotReady) as raised:
        await service.setup(pod, hooks.root / "uid-1")
    assert raised.value.event_message == (
        f'MountVolume.SetUp failed for volume "a" : hostPath type check failed: {missing} '
        "is not a directory")
    assert hooks.events == [("Warning", "FailedMount",
                             'MountVolume.SetUp failed for volume "b" : secret "nope" not found')]


def test_backoff_doubles_to_the_cap() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_delay(20) == 122.0


# ---- refresh -----------------------------------------------------------------------------


async def test_a_changed_configmap_swaps_the_data_directory(node: Any) -> None:
    service, api, hooks = node
    api.put("configmaps", configmap("cm", {"game.properties": "one"}))
    pod = make_pod([{"name": "v", "configMap": {"name": "cm"}},
                    {"name": "sub", "configMap": {"name": "cm"}}])
    hooks.pods.append(pod)
    pod_dir = hooks.root / "uid-1"
    await service.setup(pod, pod_dir)
    volume = pod_dir / "volumes" / "kubernetes.io~configmap" / "v"
    before = os.readlink(volume / "..data")
    api.put("configmaps", configmap("cm", {"game.properties": "two"}))
    await eventually(lambda: read(volume / "game.properties") == "two")
    assert os.readlink(volume / "..data") != before


async def test_periodic_refresh_carries_label_changes(node: Any) -> None:
    service, _, hooks = node
    pod = make_pod([{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}])
    hooks.pods.append(pod)
    pod_dir = hooks.root / "uid-1"
    await service.setup(pod, pod_dir)
    relabelled = {**pod, "metadata": {**pod["metadata"], "labels": {"zone": "eu"}}}
    hooks.pods[:] = [relabelled]
    await service.refresh()
    assert read(pod_dir / "volumes" / "kubernetes.io~downward-api" / "info" / "labels") == \
        'zone="eu"'


async def test_an_immutable_object_is_not_watched_once_seen(node: Any) -> None:
    service, api, hooks = node
    api.put("configmaps", configmap("frozen", {"k": "v"}, immutable=True))
    pod = make_pod([{"name": "v", "configMap": {"name": "frozen"}}])
    hooks.pods.append(pod)
    await service.setup(pod, hooks.root / "uid-1")
    await eventually(lambda: not api.watchers)
    gets = api.gets
    await service.setup(pod, hooks.root / "uid-1")
    assert api.gets == gets


# ---- tokens, eviction, teardown ------------------------------------------------------------


async def test_projected_token_without_token_requests_is_a_placeholder(node: Any) -> None:
    service, api, hooks = node
    api.put("serviceaccounts", {"metadata": {"name": "default", "namespace": "demo"}})
    api.put("configmaps", configmap("kube-root-ca.crt", {"ca.crt": "CERT"}))
    pod = make_pod([{"name": "api", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                               "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}])
    pod_dir = hooks.root / "uid-1"
    await service.setup(pod, pod_dir)
    volume = pod_dir / "volumes" / "kubernetes.io~projected" / "api"
    assert read(volume / "token").startswith("kubi-placeholder-token.not-a-credential")
    assert read(volume / "ca.crt") == "CERT" and read(volume / "namespace") == "demo"
    path, body = api.posts[0]
    assert path == "/api/v1/namespaces/demo/serviceaccounts/default/token"
    assert body["spec"]["expirationSeconds"] == 3607
    assert body["spec"]["boundObjectRef"] == {"apiVersion": "v1", "kind": "Pod", "name": "p",
                                              "uid": "uid-1"}


async def test_token_for_a_missing_service_account_fails_the_mount(node: Any) -> None:
    service, _, hooks = node
    pod = make_pod([{"name": "api", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}}]}}], serviceAccountName="ghost")
    with pytest.raises(VolumesNotReady) as raised:
        await service.setup(pod, hooks.root / "uid-1")
    assert raised.value.event_message == ('MountVolume.SetUp failed for volume "api" : '
                                          'failed to fetch token: serviceaccounts "ghost" '
                                          "not found")


def test_token_request_and_refresh_time() -> None:
    body = token_request({"metadata": {"name": "p", "uid": "u"}}, "vault", 600)
    assert body["spec"]["audiences"] == ["vault"]
    assert "audiences" not in token_request({"metadata": {}}, "", 600)["spec"]
    assert refresh_time(1000.0, 3600, None) == 1000.0 + 2880.0
    assert refresh_time(0.0, 10**9, None) == 24 * 3600.0


async def test_tokens_are_cached_until_due() -> None:
    api = FakeApi()
    api.put("serviceaccounts", {"metadata": {"name": "default", "namespace": "demo"}})
    now = [0.0]
    tokens = ServiceAccountTokens(api, clock=lambda: now[0])  # type: ignore[arg-type]
    pod = make_pod([])
    await tokens.token(pod, "", 3600)
    await tokens.token(pod, "", 3600)
    assert len(api.posts) == 1
    now[0] = 3000.0
    await tokens.token(pod, "", 3600)
    assert len(api.posts) == 2


async def test_an_emptydir_over_its_size_limit_evicts_the_pod(node: Any) -> None:
    service, _, hooks = node
    pod = make_pod([{"name": "scratch", "emptyDir": {"sizeLimit": "4Ki"}}])
    hooks.pods.append(pod)
    pod_dir = hooks.root / "uid-1"
    await service.setup(pod, pod_dir)
    await service.check_usage()
    assert hooks.evicted == []
    (pod_dir / "volumes" / "kubernetes.io~empty-dir" / "scratch" / "big").write_bytes(
        os.urandom(64 * 1024))
    await service.check_usage()
    await service.check_usage()
    message = 'Usage of EmptyDir volume "scratch" exceeds the limit "4Ki". '
    assert hooks.evicted == [("uid-1", message)]


async def test_teardown_removes_volumes_and_watches(node: Any) -> None:
    service, api, hooks = node
    api.put("configmaps", configmap("cm", {"k": "v"}))
    pod = make_pod([{"name": "v", "configMap": {"name": "cm"}}, {"name": "e", "emptyDir": {}}])
    pod_dir = hooks.root / "uid-1"
    await service.setup(pod, pod_dir)
    assert service.objects.watched
    await service.teardown(pod, pod_dir)
    assert not (pod_dir / "volumes").exists()
    assert not service.objects.watched


async def test_a_teardown_interrupted_and_repeated_is_one_teardown(node: Any) -> None:
    service, _, hooks = node
    pod = make_pod([{"name": "e", "emptyDir": {}}, {"name": "f", "emptyDir": {}}])
    pod_dir = hooks.root / "uid-1"
    await service.setup(pod, pod_dir)
    first = asyncio.ensure_future(service.teardown(pod, pod_dir))
    await asyncio.sleep(0)
    first.cancel()
    await service.teardown(pod, pod_dir)
    assert not (pod_dir / "volumes").exists()


def test_node_volumes_is_a_volume_service() -> None:
    assert isinstance(NodeVolumes(FakeApi(), use_tmpfs=False),  # type: ignore[arg-type]
                      VolumeService)


async def test_an_evicted_pod_is_stopped_and_reported_failed(tmp_path: Path) -> None:
    from kubi.node.agent.backoff import Backoff
    from kubi.node.agent.context import NodeContext
    from kubi.node.agent.probes import ProbeManager
    from kubi.node.agent.worker import PodWorker
    from tests.unit.test_agent_fakes import FakeRuntime
    from tests.unit.test_agent_worker import (
        Clock,
        FakeRecorder,
        FakeStatuses,
        cont,
        literal_env,
    )
    from tests.unit.test_agent_worker import make_pod as worker_pod

    clock = Clock()
    runtime = FakeRuntime(clock=clock)
    statuses, recorder = FakeStatuses(), FakeRecorder()
    probes = ProbeManager(lambda sid: runtime, record=lambda *a: None, on_change=lambda k: None)
    ctx = NodeContext(node_name="n1", host_ip="192.0.2.1", statuses=statuses,  # type: ignore[arg-type]
                      recorder=recorder, probes=probes, env=literal_env,  # type: ignore[arg-type]
                      log_root=tmp_path / "logs", pod_root=tmp_path / "pods",
                      backoff=Backoff(clock=clock), clock=clock)
    try:
        worker = PodWorker(ctx, runtime, worker_pod(cont("c", "run")))
        await worker.sync()
        assert statuses.latest["default/p"]["phase"] == "Running"
        message = 'Usage of EmptyDir volume "scratch" exceeds the limit "4Ki". '
        worker.evict(message)
        await worker.sync()
        status = statuses.latest["default/p"]
        assert (status["phase"], status["reason"], status["message"]) == \
            ("Failed", "Evicted", message)
        assert not [c for c in runtime.containers.values() if c.status.state == "CONTAINER_RUNNING"]
        evicted = [e for e in recorder.broadcaster.events if e["reason"] == "Evicted"]
        assert [(e["type"], e["message"]) for e in evicted] == [("Warning", message)]
        await worker.sync()  # finished for good: nothing starts again
        assert statuses.latest["default/p"]["phase"] == "Failed"
    finally:
        await probes.close()

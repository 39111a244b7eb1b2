"""emptyDir, configMap, secret, downwardAPI, projected and PVC volumes on a temp dir.

Memory-backed volumes really mount a tmpfs when run as root; every test unmounts
what it mounted (the fixture checks that nothing is left behind).
"""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubi.node import volumes
from kubi.node.volumes import MountError, VolumeContext, tmpfs
from kubi.node.volumes.memory import memory_volume_size, pod_memory_limit

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="tmpfs mounts need root")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Objects:
    def __init__(self) -> None:
        self.configmaps: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.pvcs: dict[str, dict[str, Any]] = {}
        self.pvs: dict[str, dict[str, Any]] = {}
        self.tokens: list[tuple[str, int]] = []

    def context(self, **kw: Any) -> VolumeContext:
        async def cm(ns: str, name: str) -> dict[str, Any] | None:
            return self.configmaps.get(name)

        async def secret(ns: str, name: str) -> dict[str, Any] | None:
            return self.secrets.get(name)

        async def pvc(ns: str, name: str) -> dict[str, Any] | None:
            return self.pvcs.get(name)

        async def pv(name: str) -> dict[str, Any] | None:
            return self.pvs.get(name)

        async def token(audience: str, seconds: int) -> str:
            self.tokens.append((audience, seconds))
            return f"token-{len(self.tokens)}"

        return VolumeContext(get_configmap=cm, get_secret=secret, get_pvc=pvc, get_pv=pv,
                             token=token, **kw)


def mount_points() -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]


@pytest.fixture
def pod_dir(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "pods" / "u-1")
    os.makedirs(path)
    yield path
    leftovers = [point for point in mount_points() if point.startswith(str(tmp_path))]
    for mount_point in reversed(leftovers):
        tmpfs.unmount(mount_point)
    assert leftovers == [], "a test left mounts behind"


def make_pod(volumes_: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "demo", "uid": "u-1",
                         "labels": {"zone": "us-east-coast", "rack": "rack-123"},
                         "annotations": {"annotation1": "345"}},
            "spec": {"containers": [{"name": "c"}], "volumes": volumes_, **spec}}


async def test_empty_dir_on_disk(pod_dir: str) -> None:
    pod = make_pod([{"name": "cache-volume", "emptyDir": {}}])
    path = await volumes.setup(pod, pod["spec"]["volumes"][0], pod_dir, VolumeContext())
    assert path == os.path.join(pod_dir, "volumes", "kubernetes.io~empty-dir", "cache-volume")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777
    Path(path, "shared").write_text("from container one")
    assert await volumes.setup(pod, pod["spec"]["volumes"][0], pod_dir, VolumeContext()) == path
    assert Path(path, "shared").read_text() == "from container one"
    await volumes.teardown(pod, pod["spec"]["volumes"][0], pod_dir)
    assert not os.path.exists(path)


@needs_root
async def test_empty_dir_memory_is_a_sized_tmpfs(pod_dir: str) -> None:
    volume = {"name": "demo-volume", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    pod = make_pod([volume])
    ctx = VolumeContext(node_allocatable={"memory": "1Gi"}, use_tmpfs=True)
    path = await volumes.setup(pod, volume, pod_dir, ctx)
    try:
        assert tmpfs.mount_type(path) == "tmpfs"
        assert os.statvfs(path).f_blocks * os.statvfs(path).f_frsize == 2**20
        await volumes.setup(pod, volume, pod_dir, ctx)
        assert mount_points().count(path) == 1
    finally:
        await volumes.teardown_pod_volumes(pod_dir)
    assert not os.path.exists(os.path.join(pod_dir, "volumes"))


def test_memory_volume_size() -> None:
    limited = {"resources": {"limits": {"memory": "256Mi"}}}
    two = {"spec": {"containers": [limited, limited]}}
    assert memory_volume_size(two, "1Gi", {"memory": "8Gi"}) == 512 * 2**20
    assert memory_volume_size(two, "100Mi", {"memory": "8Gi"}) == 100 * 2**20
    open_ended = {"spec": {"containers": [limited, {}]}}
    assert memory_volume_size(open_ended, "1Gi", {"memory": "8Gi"}) == 2**30
    assert memory_volume_size(open_ended, None, {"memory": "8Gi"}) == 8 * 2**30
    assert memory_volume_size(open_ended, None, {}) is None
    init = {"spec": {"initContainers": [{"resources": {"limits": {"memory": "1Gi"}}}],
                     "containers": [limited]}}
    assert pod_memory_limit(init) == 2**30


@pytest.mark.skipif(not ROOT, reason="chown needs root")
async def test_empty_dir_fs_group(pod_dir: str) -> None:
    volume = {"name": "shared", "emptyDir": {}}
    pod = make_pod([volume], securityContext={"fsGroup": 3000})
    path = await volumes.setup(pod, volume, pod_dir, VolumeContext())
    info = os.stat(path)
    assert info.st_gid == 3000 and info.st_mode & stat.S_ISGID


async def test_empty_dir_unknown_medium(pod_dir: str) -> None:
    volume = {"name": "v", "emptyDir": {"medium": "HugePages"}}
    with pytest.raises(MountError, match='unknown storage medium "HugePages"'):
        await volumes.setup(make_pod([volume]), volume, pod_dir, VolumeContext())


async def test_config_map_volume_all_keys_items_and_update(pod_dir: str) -> None:
    objects = Objects()
    objects.configmaps["cm-demo-mix"] = {"data": {
        "game.properties": "enemy.types=aliens,monsters\n", "player_initial_lives": "3"},
        "binaryData": {"blob": b64("\x00\x01")}}
    full = {"name": "full-config", "configMap": {"name": "cm-demo-mix"}}
    part = {"name": "part-config", "configMap": {"name": "cm-demo-mix", "defaultMode": 0o400,
                                                 "items": [{"key": "game.properties",
                                                            "path": "properties"},
                                                           {"key": "player_initial_lives",
                                                            "path": "sub/lives", "mode": 0o640}]}}
    pod = make_pod([full, part])
    ctx = objects.context(use_tmpfs=False)
    full_path = await volumes.setup(pod, full, pod_dir, ctx)
    part_path = await volumes.setup(pod, part, pod_dir, ctx)
    assert full_path.endswith("volumes/kubernetes.io~configmap/full-config")
    assert stat.S_IMODE(os.stat(full_path).st_mode) == 0o777
    assert sorted(n for n in os.listdir(full_path) if not n.startswith("..")) == [
        "blob", "game.properties", "player_initial_lives"]
    assert os.readlink(os.path.join(full_path, "game.properties")) == "..data/game.properties"
    assert Path(full_path, "blob").read_bytes() == b"\x00\x01"
    assert Path(part_path, "properties").read_text() == "enemy.types=aliens,monsters\n"
    assert stat.S_IMODE(os.stat(os.path.join(part_path, "properties")).st_mode) == 0o400
    assert stat.S_IMODE(os.stat(os.path.join(part_path, "sub", "lives")).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.join(full_path, "blob")).st_mode) == 0o644

    assert await volumes.refresh(pod, full, pod_dir, ctx) is False
    before = os.readlink(os.path.join(full_path, "..data"))
    objects.configmaps["cm-demo-mix"]["data"]["game.properties"] = "enemy.types=robots\n"
    assert await volumes.refresh(pod, full, pod_dir, ctx) is True
    after = os.readlink(os.path.join(full_path, "..data"))
    assert after != before and not os.path.exists(os.path.join(full_path, before))
    assert Path(full_path, "game.properties").read_text() == "enemy.types=robots\n"


async def test_missing_config_map_and_key(pod_dir: str) -> None:
    objects = Objects()
    volume = {"name": "cfg", "configMap": {"name": "x"}}
    pod = make_pod([volume])
    with pytest.raises(MountError) as info:
        await volumes.setup(pod, volume, pod_dir, objects.context(use_tmpfs=False))
    assert info.value.event_message == (
        'MountVolume.SetUp failed for volume "cfg" : configmap "x" not found')
    assert not os.path.exists(os.path.join(pod_dir, "volumes", "kubernetes.io~configmap", "cfg"))
    optional = {"name": "opt", "configMap": {"name": "x", "optional": True}}
    path = await volumes.setup(pod, optional, pod_dir, objects.context(use_tmpfs=False))
    assert [n for n in os.listdir(path) if not n.startswith("..")] == []
    objects.configmaps["x"] = {"data": {"late": "arrival"}}
    assert await volumes.refresh(pod, optional, pod_dir, objects.context(use_tmpfs=False))
    assert Path(path, "late").read_text() == "arrival"
    bad_item = {"name": "item", "configMap": {"name": "x", "items": [{"key": "nope",
                                                                     "path": "p"}]}}
    with pytest.raises(MountError, match="configmap references non-existent config key: nope"):
        await volumes.setup(pod, bad_item, pod_dir, objects.context(use_tmpfs=False))


@needs_root
async def test_secret_volume_on_tmpfs(pod_dir: str) -> None:
    objects = Objects()
    objects.secrets["dev-db-secret"] = {"data": {"username": b64("devuser"),
                                                 "password": b64("S!B\\*d$zDsb=")}}
    volume = {"name": "secret-volume", "secret": {"secretName": "dev-db-secret"}}
    pod = make_pod([volume], securityContext={"fsGroup": 2000})
    path = await volumes.setup(pod, volume, pod_dir, objects.context(use_tmpfs=True))
    try:
        assert path.endswith("kubernetes.io~secret/secret-volume")
        assert tmpfs.mount_type(path) == "tmpfs"
        assert Path(path, "username").read_text() == "devuser"
        assert Path(path, "password").read_text() == "S!B\\*d$zDsb="
        data = os.path.join(path, os.readlink(os.path.join(path, "..data")), "password")
        assert os.stat(data).st_gid == 2000
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o644
        with pytest.raises(MountError, match='secret "gone" not found'):
            await volumes.setup(pod, {"name": "g", "secret": {"secretName": "gone"}}, pod_dir,
                                objects.context(use_tmpfs=True))
        with pytest.raises(MountError, match="references non-existent secret key: k"):
            await volumes.setup(pod, {"name": "k", "secret": {
                "secretName": "dev-db-secret", "items": [{"key": "k", "path": "k"}]}},
                pod_dir, objects.context(use_tmpfs=True))
    finally:
        await volumes.teardown(pod, volume, pod_dir)
    assert not os.path.exists(path)


async def test_downward_api_volume_files_and_refresh(pod_dir: str) -> None:
    volume = {"name": "podinfo", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c",
                                                   "resource": "limits.cpu", "divisor": "1m"}},
    ]}}
    pod = make_pod([volume])
    ctx = VolumeContext(node_allocatable={"cpu": "2"}, use_tmpfs=False)
    path = await volumes.setup(pod, volume, pod_dir, ctx)
    assert Path(path, "labels").read_text() == 'rack="rack-123"\nzone="us-east-coast"'
    assert Path(path, "annotations").read_text() == 'annotation1="345"'
    assert Path(path, "cpu_limit").read_text() == "2000"
    pod["metadata"]["labels"]["zone"] = "eu-west"
    assert await volumes.refresh(pod, volume, pod_dir, ctx) is True
    assert Path(path, "labels").read_text() == 'rack="rack-123"\nzone="eu-west"'


async def test_projected_volume_merges_sources(pod_dir: str) -> None:
    objects = Objects()
    objects.configmaps["kube-root-ca.crt"] = {"data": {"ca.crt": "-----CERT-----\n"}}
    objects.secrets["s"] = {"data": {"user": b64("u")}}
    volume = {"name": "kube-api-access-x", "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                             "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1",
                                                 "fieldPath": "metadata.namespace"}}]}},
        {"secret": {"name": "s"}},
    ]}}
    pod = make_pod([volume])
    ctx = objects.context(use_tmpfs=False)
    path = await volumes.setup(pod, volume, pod_dir, ctx)
    assert path.endswith("kubernetes.io~projected/kube-api-access-x")
    assert sorted(n for n in os.listdir(path) if not n.startswith("..")) == [
        "ca.crt", "namespace", "token", "user"]
    assert Path(path, "token").read_text() == "token-1"
    assert objects.tokens == [("", 3607)]
    assert Path(path, "ca.crt").read_text() == "-----CERT-----\n"
    assert Path(path, "namespace").read_text() == "demo"
    assert await volumes.refresh(pod, volume, pod_dir, ctx) is True
    assert Path(path, "token").read_text() == "token-2"


async def test_projected_errors_are_aggregated_and_token_mode(pod_dir: str) -> None:
    objects = Objects()
    volume = {"name": "proj", "projected": {"sources": [
        {"configMap": {"name": "a"}}, {"secret": {"name": "b"}},
        {"configMap": {"name": "opt", "optional": True}}]}}
    pod = make_pod([volume])
    with pytest.raises(MountError) as info:
        await volumes.setup(pod, volume, pod_dir, objects.context(use_tmpfs=False))
    assert info.value.message == '[configmap "a" not found, secret "b" not found]'
    token_volume = {"name": "tok", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "audience": "vault"}}]}}
    user_pod = make_pod([token_volume], securityContext={"runAsUser": os.getuid()})
    path = await volumes.setup(user_pod, token_volume, pod_dir, objects.context(use_tmpfs=False))
    assert stat.S_IMODE(os.stat(os.path.join(path, "token")).st_mode) == 0o600
    assert objects.tokens == [("vault", 3600)]


def pvc_objects(tmp_path: Path, source: dict[str, Any], phase: str = "Bound") -> Objects:
    objects = Objects()
    objects.pvcs["data"] = {"metadata": {"name": "data", "uid": "claim-uid"},
                            "spec": {"volumeName": "pv-1"}, "status": {"phase": phase}}
    objects.pvs["pv-1"] = {"metadata": {"name": "pv-1"},
                           "spec": {**source, "claimRef": {"uid": "claim-uid"}}}
    return objects


async def test_pvc_bound_to_host_path_and_local(pod_dir: str, tmp_path: Path) -> None:
    volume = {"name": "vol", "persistentVolumeClaim": {"claimName": "data"}}
    pod = make_pod([volume])
    target = tmp_path / "pv-data"
    objects = pvc_objects(tmp_path, {"hostPath": {"path": str(target),
                                                  "type": "DirectoryOrCreate"}})
    assert await volumes.setup(pod, volume, pod_dir, objects.context()) == str(target)
    assert target.is_dir()
    objects = pvc_objects(tmp_path, {"local": {"path": str(target)}})
    assert await volumes.setup(pod, volume, pod_dir, objects.context()) == str(target)
    objects = pvc_objects(tmp_path, {"local": {"path": str(tmp_path / "nope")}})
    with pytest.raises(MountError, match=f'path "{tmp_path / "nope"}" does not exist'):
        await volumes.setup(pod, volume, pod_dir, objects.context())
    objects = pvc_objects(tmp_path, {"nfs": {"server": "x", "path": "/"}})
    with pytest.raises(MountError, match="uses a nfs source"):
        await volumes.setup(pod, volume, pod_dir, objects.context())
    assert volumes.is_readonly_source({"name": "v", "persistentVolumeClaim": {
        "claimName": "data", "readOnly": True}})


async def test_pvc_failures(pod_dir: str, tmp_path: Path) -> None:
    volume = {"name": "vol", "persistentVolumeClaim": {"claimName": "data"}}
    pod = make_pod([volume])

    async def message(objects: Objects) -> str:
        with pytest.raises(MountError) as info:
            await volumes.setup(pod, volume, pod_dir, objects.context())
        return info.value.message

    assert await message(Objects()) == ('failed to fetch PVC demo/data from API server. '
                                        'err=persistentvolumeclaims "data" not found')
    pending = pvc_objects(tmp_path, {"hostPath": {"path": "/"}}, phase="Pending")
    pending.pvcs["data"]["spec"] = {}
    assert await message(pending) == (
        'PVC demo/data has non-bound phase ("Pending") or empty pvc.Spec.VolumeName ("")')
    no_pv = pvc_objects(tmp_path, {"hostPath": {"path": "/"}})
    no_pv.pvs.clear()
    assert await message(no_pv) == (
        'failed to fetch PV "pv-1" from API server. err=persistentvolumes "pv-1" not found')
    wrong = pvc_objects(tmp_path, {"hostPath": {"path": "/"}})
    wrong.pvs["pv-1"]["spec"]["claimRef"] = {"uid": "other"}
    assert "does not point to claim.UID" in await message(wrong)
    ephemeral = {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}
    objects = pvc_objects(tmp_path, {"hostPath": {"path": str(tmp_path)}})
    objects.pvcs["p-scratch"] = objects.pvcs.pop("data")
    with pytest.raises(MountError, match="was not created for pod demo/p"):
        await volumes.setup(pod, ephemeral, pod_dir, objects.context())
    objects.pvcs["p-scratch"]["metadata"]["ownerReferences"] = [
        {"uid": "u-1", "controller": True}]
    assert await volumes.setup(pod, ephemeral, pod_dir, objects.context()) == str(tmp_path)


async def test_unsupported_volume_type(pod_dir: str) -> None:
    volume = {"name": "n", "nfs": {"server": "s", "path": "/"}}
    with pytest.raises(MountError, match="volume type nfs is not supported"):
        await volumes.setup(make_pod([volume]), volume, pod_dir, VolumeContext())


@needs_root
async def test_teardown_pod_volumes_from_disk_alone(pod_dir: str) -> None:
    objects = Objects()
    objects.secrets["s"] = {"data": {"k": b64("v")}}
    vols = [{"name": "mem", "emptyDir": {"medium": "Memory"}},
            {"name": "disk", "emptyDir": {}},
            {"name": "sec", "secret": {"secretName": "s"}}]
    pod = make_pod(vols)
    ctx = objects.context(use_tmpfs=True)
    try:
        for volume in vols:
            await volumes.setup(pod, volume, pod_dir, ctx)
    finally:
        await volumes.teardown_pod_volumes(pod_dir)
    assert os.listdir(pod_dir) == []


async def test_concurrent_refreshes_leave_one_data_dir(pod_dir: str) -> None:
    objects = Objects()
    objects.configmaps["c"] = {"data": {"k": "0"}}
    volume = {"name": "cfg", "configMap": {"name": "c"}}
    pod = make_pod([volume])
    ctx = objects.context(use_tmpfs=False)
    path = await volumes.setup(pod, volume, pod_dir, ctx)

    async def bump(n: int) -> bool:
        objects.configmaps["c"] = {"data": {"k": str(n)}}
        return await volumes.refresh(pod, volume, pod_dir, ctx)

    await asyncio.gather(*(bump(n) for n in range(1, 8)))
    hidden = sorted(n for n in os.listdir(path) if n.startswith(".."))
    assert hidden == sorted(["..data", os.readlink(os.path.join(path, "..data"))])
    assert Path(path, "k").read_text() == "7"

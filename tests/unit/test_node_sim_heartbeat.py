"""Node conditions, allocatable, registration and the heartbeat loop's decisions."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from kubi.api import schema
from kubi.api.errors import StatusError
from kubi.api.patch.strategic import apply_strategic_merge_patch
from kubi.client.client import Resource
from kubi.node import nodestatus as ns
from kubi.node.heartbeat import NodeHeartbeat, lease_object, register_node, registration_patch


class FakeClient:
    """Just enough of `Client` for registration and heartbeats."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.rv = 0

    def _key(self, res: Resource, name: str, namespace: str | None) -> tuple:
        return (res.plural, namespace if res.namespaced else None, name)

    def _store(self, key: tuple, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj["metadata"].setdefault("uid", f"uid-{key[2]}")
        self.objects[key] = obj
        return copy.deepcopy(obj)

    async def create(self, res: Resource, obj: dict, namespace: str | None = None) -> dict:
        md = obj["metadata"]
        key = self._key(res, md["name"], namespace or md.get("namespace"))
        self.calls.append(("create", res.plural, md["name"]))
        if key in self.objects:
            raise StatusError(409, "AlreadyExists", "exists")
        return self._store(key, obj)

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        self.calls.append(("get", res.plural, name))
        obj = self.objects.get(self._key(res, name, namespace))
        if obj is None:
            raise StatusError(404, "NotFound", "not found")
        return copy.deepcopy(obj)

    async def replace(self, res: Resource, obj: dict, **kw: Any) -> dict:
        md = obj["metadata"]
        self.calls.append(("replace", res.plural, md["name"]))
        key = self._key(res, md["name"], md.get("namespace"))
        if self.objects[key]["metadata"]["resourceVersion"] != md.get("resourceVersion"):
            raise StatusError(409, "Conflict", "changed")
        return self._store(key, obj)

    async def patch(self, res: Resource, name: str, patch: dict, namespace: str | None = None,
                    *, patch_type: str = "merge", subresource: str = "", **kw: Any) -> dict:
        self.calls.append(("patch" + (f"/{subresource}" if subresource else ""), res.plural,
                           name))
        key = self._key(res, name, namespace)
        merged = apply_strategic_merge_patch(self.objects[key], patch,
                                             schema.for_kind("", "v1", "Node"))
        return self._store(key, merged)


def node(name: str = "n1", **status: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"podCIDR": "10.42.100.0/24", "podCIDRs": ["10.42.100.0/24"]},
            "status": status}


def fresh_status() -> dict[str, Any]:
    return {"capacity": {"cpu": "4", "pods": "110"}, "conditions": ns.node_conditions()}


# ---- node status pieces


def test_conditions_in_kubelet_order_with_upstream_reasons() -> None:
    conds = ns.node_conditions()
    assert [(c["type"], c["status"], c["reason"]) for c in conds] == [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ]
    assert conds[3]["message"] == "kubelet is posting ready status"
    assert conds[0]["message"] == "kubelet has sufficient memory available"
    not_ready = ns.node_conditions(ready=False, not_ready_message="PLEG is not healthy")[3]
    assert not_ready["reason"] == "KubeletNotReady" and not_ready["status"] == "False"


def test_allocatable_leaves_out_the_eviction_thresholds() -> None:
    got = ns.allocatable({"cpu": "32", "memory": "256Gi", "ephemeral-storage": "100Gi",
                          "pods": "110"})
    assert got == {"cpu": "32", "memory": "262044Mi", "ephemeral-storage": "90Gi",
                   "pods": "110"}


def test_stamping_refreshes_heartbeats_and_keeps_transitions() -> None:
    old = ns.stamp_node_conditions(ns.node_conditions(), [], "t1")
    old.append({"type": "NetworkUnavailable", "status": "False"})
    again = ns.stamp_node_conditions(ns.node_conditions(), old, "t2")
    assert all(c["lastHeartbeatTime"] == "t2" and c["lastTransitionTime"] == "t1"
               for c in again[:4])
    assert again[4]["type"] == "NetworkUnavailable"
    flipped = ns.stamp_node_conditions(ns.node_conditions(ready=False), old, "t3")
    assert flipped[3]["lastTransitionTime"] == "t3"


def test_a_report_is_due_on_change_or_after_the_interval() -> None:
    stored = ns.merge_node_status({}, fresh_status(), "t1")
    same = ns.merge_node_status(stored, fresh_status(), "t2")
    assert not ns.report_due(stored, same, since_last_report=10, report_interval=60)
    assert ns.report_due(stored, same, since_last_report=60, report_interval=60)
    changed = ns.merge_node_status(stored, {**fresh_status(), "capacity": {"cpu": "8"}}, "t2")
    assert ns.report_due(stored, changed, since_last_report=10, report_interval=60)


# ---- registration


def test_registration_patch_adds_owned_metadata_and_unset_spec_only() -> None:
    existing = node()
    existing["metadata"]["labels"]["team"] = "a"
    existing["spec"] = {}
    desired = node()
    desired["metadata"]["labels"]["kubi.dev/sim"] = "true"
    assert registration_patch(existing, desired) == {
        "metadata": {"labels": {"kubi.dev/sim": "true"}},
        "spec": {"podCIDR": "10.42.100.0/24", "podCIDRs": ["10.42.100.0/24"]}}
    assert registration_patch(desired, desired) is None
    allocated = node()
    allocated["spec"] = {"podCIDR": "10.42.7.0/24", "podCIDRs": ["10.42.7.0/24"]}
    assert "spec" not in (registration_patch(allocated, desired) or {})


async def test_register_creates_then_adopts() -> None:
    client = FakeClient()
    first = await register_node(client, node())
    again = await register_node(client, node())
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert [c[0] for c in client.calls] == ["create", "create", "get"]


# ---- the heartbeat


async def test_lease_is_created_owned_by_the_node_then_renewed() -> None:
    client = FakeClient()
    registered = await register_node(client, node())
    hb = NodeHeartbeat(client, registered, status=fresh_status)
    await hb.renew_lease()
    lease = client.objects[("leases", "kube-node-lease", "n1")]
    assert lease["spec"]["holderIdentity"] == "n1"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": registered["metadata"]["uid"]}]
    first = lease["spec"]["renewTime"]
    await hb.renew_lease()
    assert client.objects[("leases", "kube-node-lease", "n1")]["spec"]["renewTime"] >= first
    assert client.calls[-1][0] == "replace"


async def test_lease_conflict_starts_again_from_the_server() -> None:
    client = FakeClient()
    hb = NodeHeartbeat(client, await register_node(client, node()), status=fresh_status)
    await hb.renew_lease()
    client.objects[("leases", "kube-node-lease", "n1")]["metadata"]["resourceVersion"] = "999"
    await hb.renew_lease()  # conflict: forget our copy
    await hb.renew_lease()  # fetch and renew
    assert [c[0] for c in client.calls[-3:]] == ["replace", "get", "replace"]


def test_lease_object_without_a_uid_has_no_owner() -> None:
    lease = lease_object(node(), duration=40, renew_time="t")
    assert "ownerReferences" not in lease["metadata"]


async def test_status_is_patched_only_when_due() -> None:
    client = FakeClient()
    clock = [1000.0]
    hb = NodeHeartbeat(client, await register_node(client, node()), status=fresh_status,
                       status_report_interval=60, clock=lambda: clock[0])
    assert await hb.sync_status()
    stored = client.objects[("nodes", None, "n1")]["status"]
    assert [c["type"] for c in stored["conditions"]] == [
        "MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    clock[0] += 10
    assert not await hb.sync_status()
    clock[0] += 60
    assert await hb.sync_status()
    beat = client.objects[("nodes", None, "n1")]["status"]["conditions"][3]
    assert beat["lastHeartbeatTime"] > beat["lastTransitionTime"]


async def test_status_written_by_others_is_corrected_at_once() -> None:
    client = FakeClient()
    clock = [1000.0]
    hb = NodeHeartbeat(client, await register_node(client, node()), status=fresh_status,
                       clock=lambda: clock[0])
    await hb.sync_status()
    ready = client.objects[("nodes", None, "n1")]["status"]["conditions"][3]
    ready.update(status="Unknown", reason="NodeStatusUnknown")
    clock[0] += 10
    assert await hb.sync_status()
    ready = client.objects[("nodes", None, "n1")]["status"]["conditions"][3]
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"


async def test_paused_heartbeat_does_nothing_until_resumed() -> None:
    client = FakeClient()
    hb = NodeHeartbeat(client, await register_node(client, node()), status=fresh_status,
                       renew_interval=0.01)
    hb.pause()
    hb.start()
    before = len(client.calls)
    await asyncio.sleep(0.05)
    assert len(client.calls) == before
    hb.resume()
    await asyncio.sleep(0.05)
    await hb.stop()
    assert ("create", "leases", "n1") in client.calls[before:]


@pytest.mark.parametrize("code", [500, 403])
async def test_a_failing_beat_is_logged_not_raised(code: int) -> None:
    client = FakeClient()
    hb = NodeHeartbeat(client, await register_node(client, node()), status=fresh_status)

    async def broken(*a: Any, **kw: Any) -> dict:
        raise StatusError(code, "InternalError", "boom")

    client.get = broken  # type: ignore[method-assign]
    await hb.beat()

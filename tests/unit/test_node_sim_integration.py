"""Simulated nodes against a real API server running in this process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.node.heartbeat import LEASES
from kubi.node.sim import SimNodes
from tests.unit.apiserver_fixtures import admin_client

PODS = Resource("", "v1", "pods", True, "Pod")
NODES = Resource("", "v1", "nodes", False, "Node")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with admin_client(tmp_path) as api:
        yield api


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def bound_pod(name: str, node: str, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": {"nodeName": node, "restartPolicy": "Never",
                     "containers": [{"name": "web", "image": "nginx:1.14.2"}]}}


def ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


async def test_nodes_register_heartbeat_and_run_pods(client: Client) -> None:
    sim = SimNodes(client, count=3, start_delay=0.1, heartbeat=0.2)
    await sim.start()
    try:
        nodes = (await client.list(NODES, label_selector="kubi.dev/sim=true"))["items"]
        assert sorted(n["metadata"]["name"] for n in nodes) == [
            "sim-node-0", "sim-node-1", "sim-node-2"]
        node = nodes[0]
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "sim://0.1"
        assert node["status"]["capacity"]["pods"] == "110"
        assert [c["type"] for c in node["status"]["conditions"]][-1] == "Ready"
        assert node["spec"]["podCIDR"].startswith("10.42.")
        lease = await client.get(LEASES, "sim-node-1", "kube-node-lease")
        assert lease["spec"]["holderIdentity"] == "sim-node-1"

        await client.create(PODS, bound_pod("web", "sim-node-1"))

        async def running() -> dict[str, Any] | None:
            pod = await client.get(PODS, "web", "default")
            return pod if ready(pod) else None

        pod = await eventually(running)
        status = pod["status"]
        assert status["phase"] == "Running"
        assert status["hostIP"] == "10.44.0.2"
        assert status["podIP"].startswith(node_prefix(sim, "sim-node-1"))
        assert status["containerStatuses"][0]["containerID"].startswith("sim://")

        # A failed node: the lease stops moving while it is stopped.
        sim.stop_node("sim-node-1")
        stale = (await client.get(LEASES, "sim-node-1", "kube-node-lease"))["spec"]["renewTime"]
        await asyncio.sleep(0.5)
        assert (await client.get(LEASES, "sim-node-1", "kube-node-lease"))["spec"][
            "renewTime"] == stale
        sim.start_node("sim-node-1")

        async def renewed() -> bool:
            lease = await client.get(LEASES, "sim-node-1", "kube-node-lease")
            return lease["spec"]["renewTime"] != stale

        await eventually(renewed)

        # Graceful deletion: the node stops the containers and removes the pod.
        await client.delete(PODS, "web", "default")

        async def gone() -> bool:
            try:
                await client.get(PODS, "web", "default")
            except StatusError as err:
                return err.code == 404
            return False

        await eventually(gone)
    finally:
        await sim.stop()


async def test_exit_annotations_complete_a_pod(client: Client) -> None:
    sim = SimNodes(client, count=1, start_delay=0)
    await sim.start()
    try:
        await client.create(PODS, bound_pod("job", "sim-node-0", **{
            "kubi.dev/sim-exit-after": "0.3", "kubi.dev/sim-exit-code": "3"}))

        async def failed() -> dict[str, Any] | None:
            pod = await client.get(PODS, "job", "default")
            return pod if pod["status"].get("phase") == "Failed" else None

        pod = await eventually(failed)
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 3 and term["reason"] == "Error"
    finally:
        await sim.stop()


async def test_a_restarted_simulation_adopts_its_pods(client: Client) -> None:
    first = SimNodes(client, count=1, start_delay=0)
    await first.start()
    try:
        await client.create(PODS, bound_pod("keep", "sim-node-0"))
        await client.create(PODS, bound_pod("drop", "sim-node-0"))

        async def both_ready() -> bool:
            pods = [await client.get(PODS, n, "default") for n in ("keep", "drop")]
            return all(ready(p) for p in pods)

        await eventually(both_ready)
        before = await client.get(PODS, "keep", "default")
    finally:
        await first.stop()
    # While no node agent runs, a graceful delete leaves the pod terminating.
    await client.delete(PODS, "drop", "default")
    second = SimNodes(client, count=1, start_delay=0)
    await second.start()
    try:
        async def dropped() -> bool:
            try:
                await client.get(PODS, "drop", "default")
            except StatusError as err:
                return err.code == 404
            return False

        await eventually(dropped)
        after = await client.get(PODS, "keep", "default")
        assert after["status"]["containerStatuses"] == before["status"]["containerStatuses"]
        assert after["status"]["podIP"] == before["status"]["podIP"]
        pool = second.lifecycle.ipam.pool(second.lifecycle.nodes["sim-node-0"].pod_cidr or "")
        assert pool.used == 1
    finally:
        await second.stop()


def node_prefix(sim: SimNodes, name: str) -> str:
    cidr = sim.lifecycle.nodes[name].pod_cidr or ""
    return cidr.rsplit(".", 2)[0] + "."

"""The agent against a real API server (`python -m kubi up --no-controllers`), with
the in-memory runtime: registration, pods reaching Running and Ready, completion,
graceful deletion, and adoption after a restart of the agent."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.node.agent import Agent
from kubi.node.agent.machine import MachineInfo
from tests.unit.test_agent_fakes import FakeRuntime

PODS = Resource("", "v1", "pods", True, "Pod")
NODES = Resource("", "v1", "nodes", False, "Node")
LEASES = Resource("coordination.k8s.io", "v1", "leases", True, "Lease")
EVENTS = Resource("", "v1", "events", True, "Event")
NODE = "agent-node"

MACHINE = MachineInfo(hostname=NODE, cpus=4, memory_kib=8 * 1024 * 1024, storage_kib=50_000_000,
                      internal_ip="192.0.2.21", machine_id="m" * 32,
                      system_uuid="00000000-0000-0000-0000-000000000021", boot_id="boot",
                      kernel_version="6.1.0", os_image="Test Linux", architecture="amd64")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    port = _free_port()
    data = tmp_path / "cluster"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kubi", "up", "--no-controllers",
        "--disable-admission-plugins=ServiceAccount", "--data-dir", str(data),
        "--port", str(port), "--bind-address", "127.0.0.1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    api: Client | None = None
    try:
        kubeconfig = data / "kubeconfig.yaml"

        async def up() -> bool:
            nonlocal api
            if proc.returncode is not None:
                raise AssertionError("kubi up exited")
            if not kubeconfig.exists():
                return False
            api = api or Client.from_kubeconfig(kubeconfig)
            try:
                await api.list(NODES)
            except (TimeoutError, OSError, StatusError, aiohttp.ClientError):
                return False
            return True

        await eventually(up, timeout=30)
        assert api is not None
        yield api
    finally:
        if api is not None:
            await api.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


def new_agent(client: Client, runtime: FakeRuntime, data_dir: Path) -> Agent:
    return Agent(client, node_name=NODE, runtime=runtime, data_dir=data_dir, port=0,
                 bind="127.0.0.1", machine=MACHINE, relist_period=0.1, heartbeat=0.5)


def pod(name: str, *argv: str, restart: str = "Always", **container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": NODE, "restartPolicy": restart,
                     "terminationGracePeriodSeconds": 5,
                     "containers": [{"name": "main", "image": "busybox:1.36",
                                     "command": list(argv or ("run",)), **container}]}}


def ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


async def get_pod(client: Client, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(PODS, name, "default")
    except StatusError as err:
        if err.code == 404:
            return None
        raise


async def set_pod_cidr(client: Client) -> None:
    await client.patch(NODES, NODE, {"spec": {"podCIDR": "10.42.0.0/24",
                                              "podCIDRs": ["10.42.0.0/24"]}})


async def test_node_registers_and_pods_run(client: Client, tmp_path: Path) -> None:
    runtime = FakeRuntime()
    agent = new_agent(client, runtime, tmp_path / "agent")
    await agent.start()
    try:
        node = await client.get(NODES, NODE)
        status = node["status"]
        assert status["capacity"]["pods"] == "110"
        assert status["capacity"]["memory"] == "8388608Ki"
        assert status["nodeInfo"]["kubeletVersion"] == "v1.33.0-kubi"
        assert status["nodeInfo"]["containerRuntimeVersion"] == "kubi-host://0.1"
        assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == agent.port
        assert {"type": "InternalIP", "address": "192.0.2.21"} in status["addresses"]
        assert await client.get(LEASES, NODE, "kube-node-lease")

        await client.create(PODS, pod("web", "run"))
        # Without a podCIDR the pod waits for the network.
        waiting = await eventually(lambda: get_pod(client, "web"))
        await asyncio.sleep(0.5)
        assert not runtime.sandboxes
        assert (waiting.get("status") or {}).get("phase") == "Pending"

        await set_pod_cidr(client)

        async def running() -> dict[str, Any] | None:
            obj = await get_pod(client, "web")
            return obj if obj and obj["status"].get("phase") == "Running" and ready(obj) else None

        obj = await eventually(running)
        entry = obj["status"]["containerStatuses"][0]
        assert entry["containerID"].startswith("kubi-host://")
        assert obj["status"]["podIP"].startswith("10.42.0.")
        assert obj["status"]["hostIP"] == "192.0.2.21"
        assert obj["status"]["qosClass"] == "BestEffort"

        async def node_ready() -> bool:
            node = await client.get(NODES, NODE)
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in node["status"]["conditions"])

        await eventually(node_ready)

        async def events() -> set[str]:
            items = (await client.list(EVENTS, "default"))["items"]
            reasons = {e["reason"] for e in items if e["involvedObject"].get("name") == "web"}
            return reasons if {"Pulled", "Created", "Started"} <= reasons else set()

        await eventually(events)

        # A pod that never restarts completes.
        await client.create(PODS, pod("job", "exit", "0", restart="Never"))

        async def succeeded() -> bool:
            obj = await get_pod(client, "job")
            return bool(obj and obj["status"].get("phase") == "Succeeded")

        await eventually(succeeded)

        # A pod of the sim runtime class is simulated on this same node.
        sim = pod("simulated", "run")
        sim["spec"]["runtimeClassName"] = "sim"
        await client.create(PODS, sim)

        async def simulated() -> bool:
            obj = await get_pod(client, "simulated")
            statuses = (obj or {}).get("status", {}).get("containerStatuses") or []
            return bool(statuses and statuses[0].get("containerID", "").startswith("sim://")
                        and obj["status"].get("podIP", "").startswith("10.42.0."))

        await eventually(simulated)

        # Graceful deletion: the agent stops the containers and removes the object.
        await client.delete(PODS, "web", "default")
        await eventually(lambda: _gone(client, "web"))
        assert not runtime.running("main") or all(
            c.sandbox_id not in {s for s in runtime.sandboxes} for c in runtime.running("main"))
        assert any(timeout == 5 for _, timeout in runtime.stops)
    finally:
        await agent.stop()


async def _gone(client: Client, name: str) -> bool:
    return await get_pod(client, name) is None


async def test_restart_adopts_running_pods_and_cleans_deleted_ones(client: Client,
                                                                   tmp_path: Path) -> None:
    runtime = FakeRuntime()
    agent = new_agent(client, runtime, tmp_path / "agent")
    await agent.start()
    await set_pod_cidr(client)
    await client.create(PODS, pod("keep", "run"))
    await client.create(PODS, pod("drop", "run"))

    async def both_running() -> bool:
        return len(runtime.running("main")) == 2

    await eventually(both_running)
    kept = {c.id for c in runtime.running("main")}
    await agent.stop()

    # While the agent is away, one pod is force-deleted.
    await client.delete(PODS, "drop", "default", grace_period_seconds=0)
    await eventually(lambda: _gone(client, "drop"))

    again = new_agent(client, runtime, tmp_path / "agent")
    await again.start()
    try:
        async def one_sandbox() -> bool:
            return len(runtime.sandboxes) == 1

        await eventually(one_sandbox)
        [survivor] = runtime.running("main")
        assert survivor.id in kept
        obj = await get_pod(client, "keep")
        assert obj is not None
        entry = obj["status"]["containerStatuses"][0]
        assert entry["containerID"] == f"kubi-host://{survivor.id}"
        assert entry["restartCount"] == 0
        assert len([c for c in runtime.containers.values() if c.status.name == "main"]) == 1
        assert again.worker_for("default", "keep") is not None
        # The adopted pod is looked after: deleting it stops its container.
        await client.delete(PODS, "keep", "default")
        await eventually(lambda: _gone(client, "keep"))
        assert not runtime.running("main")
    finally:
        await again.stop()

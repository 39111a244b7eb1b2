"""Cluster DNS against a real `kubi up --sim-nodes 2`, replaying the seed's StatefulSet section.

The seed's headless Service and StatefulSet go into namespace `demo`; a
ClusterDNS in this process watches the cluster and a DNSServer on loopback
answers for it. `web-demo-0.nginx-demo` must resolve to the pod's IP, the
Service name to both pods, and after the pod is deleted and recreated the
same name must follow it to its new IP. Queries go to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from dnslib import DNSRecord

from kubi.client.client import Client, Resource
from kubi.dns import ClusterDNS, DNSServer
from tests.e2e.harness import Cluster

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed"
NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")
SERVICES = Resource("", "v1", "services", True, "Service")
STATEFULSETS = Resource("apps", "v1", "statefulsets", True, "StatefulSet")
PODS = Resource("", "v1", "pods", True, "Pod")
POD_NAME = "web-demo-0.nginx-demo.demo.svc.cluster.local"
T = TypeVar("T")


@pytest.fixture
def kubi(tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(tmp_path, extra_args=("--sim-nodes", "2")) as cluster:
        yield cluster


@pytest.fixture
async def dns(kubi: Cluster) -> AsyncIterator[tuple[Client, DNSServer]]:
    client = Client.from_kubeconfig(kubi.kubeconfig)
    cluster_dns = ClusterDNS(client, round_robin=False)
    server = DNSServer(cluster_dns, "127.0.0.1", 0)
    await cluster_dns.start()
    await server.start()
    try:
        yield client, server
    finally:
        await server.stop()
        await cluster_dns.stop()
        await client.close()


async def eventually(check: Callable[[], Awaitable[T | None]], what: str,
                     timeout: float = 90.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def addresses(port: int, name: str, qtype: str = "A") -> list[str]:
    question = DNSRecord.question(name, qtype)
    data = await asyncio.to_thread(question.send, "127.0.0.1", port, timeout=5)
    return sorted(str(rr.rdata) for rr in DNSRecord.parse(data).rr)


def manifest(name: str) -> dict[str, Any]:
    return yaml.safe_load((SEED / name).read_text())


async def test_statefulset_pods_resolve_through_the_headless_service(
        dns: tuple[Client, DNSServer]) -> None:
    client, server = dns
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "demo"}})
    await client.create(SERVICES, manifest("nginx-svc.yaml"), "demo")
    await client.create(STATEFULSETS, manifest("web-sts.yaml"), "demo")

    async def pod_ips() -> dict[str, str] | None:
        pods = (await client.list(PODS, "demo", label_selector="app=nginx"))["items"]
        ips = {p["metadata"]["name"]: (p.get("status") or {}).get("podIP") for p in pods
               if not p["metadata"].get("deletionTimestamp")}
        return ips if len(ips) == 2 and all(ips.values()) else None

    ips = await eventually(pod_ips, "two web-demo pods with IPs")

    async def resolved() -> list[str] | None:
        found = await addresses(server.port, POD_NAME)
        return found if found == [ips["web-demo-0"]] else None

    await eventually(resolved, f"{POD_NAME} -> {ips['web-demo-0']}")
    assert await addresses(server.port, "web-demo-1.nginx-demo.demo.svc.cluster.local") == [
        ips["web-demo-1"]]

    async def both() -> list[str] | None:
        found = await addresses(server.port, "nginx-demo.demo.svc.cluster.local")
        return found if found == sorted(ips.values()) else None

    await eventually(both, "nginx-demo listing both pods")
    reverse = ".".join(reversed(ips["web-demo-0"].split("."))) + ".in-addr.arpa"
    assert await addresses(server.port, reverse, "PTR") == [POD_NAME + "."]

    # Deleted and recreated, the pod keeps its name; DNS follows it to the new address.
    old = ips["web-demo-0"]
    await client.delete(PODS, "web-demo-0", "demo")

    async def moved() -> list[str] | None:
        current = await pod_ips()
        if not current or current.get("web-demo-0") in (None, old):
            return None
        found = await addresses(server.port, POD_NAME)
        return found if found == [current["web-demo-0"]] else None

    await eventually(moved, f"{POD_NAME} to follow the recreated pod")

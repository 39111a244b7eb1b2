"""The pod network on a real node (root): bridge, routes, veths, teardown.

Each test uses its own bridge name (kubt<random>) and a /24 from
10.42.200-250.0, never the real kubi0, and removes everything it made.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubi.node.network import PodInterface, PodNetwork, host_veth_name
from kubi.node.network.netlink import Netlink, wire_pod
from kubi.node.runtime.host import linux

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="creating bridges, veths and netns needs root")


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False).stdout


def in_pod(netns: str, *args: str) -> str:
    return subprocess.run(["nsenter", f"--net={netns}", *args], capture_output=True,
                          text=True, check=False).stdout


def route_lookup(address: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "route", "get", address], capture_output=True, text=True,
                          check=False)


def links() -> str:
    return ip("-o", "link", "show")


class NetnsProcess:
    """A process in a fresh network namespace, standing in for a pod holder."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["unshare", "--net", "sh", "-c", "echo; exec sleep 600"],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()

    @property
    def netns(self) -> str:
        return f"/proc/{self.proc.pid}/ns/net"

    def wire(self, pod: PodInterface) -> None:
        """What the runtime's sandbox holder does once it made its namespace."""
        with Netlink() as node:
            bridge_index = socket.if_nametoindex(pod.bridge)
            linux.call_in_netns(self.netns, lambda: wire_pod(
                node, bridge_index=bridge_index, host_veth=pod.host_veth,
                interface=pod.interface, address=pod.ip, prefix_length=pod.prefix_length,
                gateway=pod.gateway))

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
async def network(tmp_path: Path) -> AsyncIterator[PodNetwork]:
    tag = secrets.token_hex(3)
    net = PodNetwork(f"10.42.{random.randint(200, 250)}.0/24", tmp_path / "net",
                     bridge=f"kubt{tag}")
    try:
        await net.start()
        yield net
    finally:
        await net.teardown_all()


async def test_bridge_gateway_and_blackhole_routes(network: PodNetwork) -> None:
    assert f"{network.gateway}/24" in ip("-o", "addr", "show", "dev", network.bridge)
    unreachable = ip("route", "show", "type", "unreachable")
    assert "10.42.0.0/16" in unreachable and "10.43.0.0/16" in unreachable
    # The node's /24 is more specific than the blackhole: local pods are reachable.
    route = ip("route", "get", network.gateway.rsplit(".", 1)[0] + ".77")
    assert network.bridge in route or "local" in route
    lookup = route_lookup("10.42.199.9")
    assert lookup.returncode != 0 and "no route to host" in lookup.stderr.lower()


async def test_pod_wiring_and_removal(network: PodNetwork) -> None:
    forward_before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    holder = NetnsProcess()
    sandbox_id = secrets.token_hex(32)
    try:
        pod = network.prepare_pod(sandbox_id)
        assert pod.ip.startswith(network.cidr.rsplit(".", 1)[0])
        assert network.ipam.allocations() == {sandbox_id: pod.ip}
        holder.wire(pod)
        inside = in_pod(holder.netns, "ip", "-o", "addr")
        assert f"{pod.ip}/24" in inside
        routes = in_pod(holder.netns, "ip", "route")
        assert f"default via {network.gateway}" in routes
        assert f"master {network.bridge}" in ip("-o", "link", "show", pod.host_veth)
        # Node to pod: a listener inside the namespace answers on the pod IP.
        server = linux.call_in_netns(holder.netns, lambda: socket.socket())
        server.bind((pod.ip, 0))
        server.listen()
        port = server.getsockname()[1]
        _, writer = await asyncio.wait_for(asyncio.open_connection(pod.ip, port), 5)
        writer.close()
        server.close()
        await network.remove_pod(sandbox_id)
        assert host_veth_name(sandbox_id) not in links()
        assert network.ipam.allocations() == {}
        # Removing twice is harmless.
        await network.remove_pod(sandbox_id)
    finally:
        holder.stop()
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward_before


async def test_state_survives_a_restart_and_retain_forgets_pods_gone(
        network: PodNetwork) -> None:
    kept, gone = network.prepare_pod("kept-sandbox"), network.prepare_pod("gone-sandbox")
    assert linux.is_mount_point(str(network.state_dir))
    again = PodNetwork(network.cidr, network.state_dir, bridge=network.bridge)
    await again.start()
    assert again.ipam.allocations() == {"kept-sandbox": kept.ip, "gone-sandbox": gone.ip}
    await again.retain(["kept-sandbox"])
    assert again.ipam.allocations() == {"kept-sandbox": kept.ip}


async def test_teardown_removes_everything(tmp_path: Path) -> None:
    tag = secrets.token_hex(3)
    net = PodNetwork(f"10.42.{random.randint(200, 250)}.0/24", tmp_path / "n2",
                     bridge=f"kubt{tag}")
    routes_before = ip("route", "show", "type", "unreachable")
    holder = NetnsProcess()
    try:
        await net.start()
        pod = net.prepare_pod(secrets.token_hex(32))
        holder.wire(pod)
        await net.teardown_all()
        assert f"kubt{tag}" not in links() and pod.host_veth not in links()
        assert not linux.mounts_under(str(tmp_path))
        assert ip("route", "show", "type", "unreachable") == routes_before
    finally:
        holder.stop()
        await net.teardown_all()


async def test_two_networks_keep_each_others_routes(network: PodNetwork, tmp_path: Path) -> None:
    other = PodNetwork(f"10.42.{random.randint(200, 250)}.0/24", tmp_path / "other",
                       bridge=f"kubt{secrets.token_hex(3)}")
    await other.start()
    await other.teardown_all()
    unreachable = ip("route", "show", "type", "unreachable")
    assert "10.42.0.0/16" in unreachable and "10.43.0.0/16" in unreachable

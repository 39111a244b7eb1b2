"""The node's pod network: one bridge, a veth pair per pod, blackhole routes.

The bridge (`kubi0`) holds the first address of the node's podCIDR, which
is every pod's default gateway. A pod gets a veth pair: `eth0` with its
address inside its network namespace, the other end plugged into the
bridge. Node-to-pod and pod-to-pod traffic on one node is bridged or
delivered locally, so IP forwarding stays as the machine had it and no NAT
is added: nothing here routes traffic off the machine. On the contrary,
unreachable routes for the whole pod and service ranges (10.42.0.0/16,
10.43.0.0/16) make sure that no packet addressed there ever leaves; the
bridge's own /24 is more specific and wins for local pods.

`prepare_pod` hands out a pod's address and names its veth; the wiring
itself is done by whoever makes the pod's network namespace, right after
making it (the host runtime's sandbox holder calls netlink.wire_pod), so
the namespace needs no pinning and the node's side no work per pod beyond
the address. The pod's network namespace lives as long as its holder, and
its veth pair goes with it. `retain` frees the addresses of pods the
runtime no longer knows (it calls it after a restart).

The network's state (ipam.py's addresses, and what this network created on
the node: bridge, routes, so teardown removes exactly that and nothing it
found already there) is kept on a tmpfs of its own: it describes kernel
objects a reboot removes anyway, and survives a restart of the agent. The
blackhole routes carry a metric of this network's own for the same reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import socket
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubi.node.network.ipam import Ipam, gateway_address
from kubi.node.network.iproute import NetworkError, in_worker, ip_batch, ip_output
from kubi.node.network.netlink import Netlink
from kubi.node.runtime.host import linux
from kubi.node.runtime.host.state import read_json, write_json

DEFAULT_BLACKHOLES = ("10.42.0.0/16", "10.43.0.0/16")
POD_INTERFACE = "eth0"


# The tmpfs holding the network's state: a few small files.
STATE_TMPFS = "mode=0700,size=4m"


@dataclass
class PodInterface:
    """What a pod's network namespace gets: netlink.wire_pod's arguments."""

    ip: str
    host_veth: str
    gateway: str
    prefix_length: int
    bridge: str
    interface: str = POD_INTERFACE

    def to_json(self) -> dict[str, Any]:
        return {"ip": self.ip, "host_veth": self.host_veth, "gateway": self.gateway,
                "prefix_length": self.prefix_length, "bridge": self.bridge,
                "interface": self.interface}


def host_veth_name(sandbox_id: str) -> str:
    """The node-side end of a pod's veth pair (at most 15 characters)."""
    return f"kv{sandbox_id[:12]}"


def blackhole_metric(bridge: str) -> int:
    """The metric of this network's blackhole routes.

    Routes for one prefix may coexist with different metrics. Each network
    adds and later deletes its own, so two networks on one machine (kubi0 and
    a test's bridge) never remove each other's protection.
    """
    return 100 + zlib.crc32(bridge.encode()) % 9000


def bridge_mac(bridge: str) -> str:
    """A fixed, locally administered MAC, so the bridge's address does not change
    as ports come and go (it otherwise takes the lowest port's)."""
    digest = hashlib.sha256(bridge.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def link_exists(name: str) -> bool:
    """Whether this network namespace has a link `name`. Asked of the kernel
    rather than read from /sys/class/net, which shows the namespace that
    mounted sysfs: inside `unshare --net` without a fresh sysfs, another one."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


async def bridge_ports(bridge: str) -> list[str]:
    """The names of the links enslaved to `bridge` in this network namespace."""
    ports = []
    for line in (await ip_output(["-o", "link", "show", "master", bridge])).splitlines():
        # "7: veth1234@if2: <...> ..." — the name ends at '@' or ':'.
        fields = line.split(":", 2)
        if len(fields) == 3:
            ports.append(fields[1].strip().split("@", 1)[0])
    return ports


class PodNetwork:
    def __init__(self, node_cidr: str, state_dir: str | Path, bridge: str = "kubi0", *,
                 blackholes: tuple[str, ...] = DEFAULT_BLACKHOLES) -> None:
        net = ipaddress.ip_network(node_cidr, strict=False)
        self.cidr = str(net)
        self.prefix_length = net.prefixlen
        self.gateway = gateway_address(self.cidr)
        self.bridge = bridge
        self.blackholes = blackholes
        self.state_dir = Path(state_dir)
        self.ipam = Ipam(self.state_dir / "ipam.json", self.cidr)
        self._record_path = self.state_dir / "network.json"

    # ---- node setup ------------------------------------------------------------

    async def start(self) -> None:
        """Create the bridge and routes if missing."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        linux.ensure_tmpfs(str(self.state_dir), STATE_TMPFS)
        record = read_json(self._record_path) or {}
        created: list[str] = list(record.get("created", []))
        if not link_exists(self.bridge):
            await ip_batch([f"link add {self.bridge} type bridge",
                            f"link set {self.bridge} address {bridge_mac(self.bridge)}"])
            if "bridge" not in created:
                created.append("bridge")
        await ip_batch([f"addr replace {self.gateway}/{self.prefix_length} dev {self.bridge}",
                        f"link set {self.bridge} up"])
        metric = blackhole_metric(self.bridge)
        for prefix in self.blackholes:
            errors = await ip_batch([f"route add unreachable {prefix} metric {metric}"],
                                    force=True)
            if not errors.strip() and f"route:{prefix}" not in created:
                created.append(f"route:{prefix}")
        write_json(self._record_path, {"bridge": self.bridge, "cidr": self.cidr,
                                       "created": created})

    async def retain(self, sandbox_ids: Iterable[str]) -> None:
        """Remove every pod but these: what a crash left of pods that are gone."""
        keep = set(sandbox_ids)
        for owner in self.ipam.allocations():
            if owner not in keep:
                await self.remove_pod(owner)

    # ---- pods ----------------------------------------------------------------

    def prepare_pod(self, sandbox_id: str) -> PodInterface:
        """The interface of pod `sandbox_id`; its address is the pod's from now
        until `remove_pod`."""
        return PodInterface(ip=self.ipam.allocate(sandbox_id),
                            host_veth=host_veth_name(sandbox_id), gateway=self.gateway,
                            prefix_length=self.prefix_length, bridge=self.bridge)

    @staticmethod
    def _unwire(veth: str) -> None:
        with Netlink() as nl:
            nl.delete_link(veth)

    async def remove_pod(self, sandbox_id: str) -> None:
        """Delete the pod's veth (if its namespace still holds it) and free its
        address; a pod that is already (partly) gone is fine."""
        veth = host_veth_name(sandbox_id)
        if link_exists(veth):
            await in_worker(self._unwire, veth)
        self.ipam.release(sandbox_id)

    # ---- teardown ------------------------------------------------------------

    async def teardown_all(self) -> None:
        """Remove every pod's wiring, then the bridge and routes this network
        created and its state."""
        await self.retain(())
        record = read_json(self._record_path) or {}
        created = record.get("created", [])
        commands = []
        if link_exists(self.bridge):
            # Ports left on our bridge can only be ours.
            commands += [f"link del {port}" for port in await bridge_ports(self.bridge)]
            if "bridge" in created:
                commands.append(f"link del {self.bridge}")
            else:
                commands.append(f"addr del {self.gateway}/{self.prefix_length} dev {self.bridge}")
        metric = blackhole_metric(self.bridge)
        commands += [f"route del unreachable {c.split(':', 1)[1]} metric {metric}"
                     for c in created if c.startswith("route:")]
        if commands:
            await ip_batch(commands, force=True)
        self.ipam.remove()
        with contextlib.suppress(FileNotFoundError):
            self._record_path.unlink()
        linux.unmount_tree(str(self.state_dir))


__all__ = ["NetworkError", "PodInterface", "PodNetwork", "host_veth_name"]

"""Addresses for simulated nodes and their pods.

Pod IPs come from the node's podCIDR, one `IPPool` per CIDR, handed out in
turn from the last one given (as CNI's host-local plugin does, so a freed
address is not reused at once) and released when the pod goes. Pools are
keyed by CIDR, not by node, so nodes that share a CIDR never share an IP.

Node InternalIPs come from 10.44.0.0/16, kubi's range for simulated nodes,
beside the pod (10.42.0.0/16) and service (10.43.0.0/16) ranges. They are only
recorded: nothing ever connects to a simulated node (it publishes no agent
port), and the range is kubi's own so it never names a machine of the
network kubi runs on (documentation ranges such as 192.0.2.0/24 can be a
real network, as on some test machines).
"""

from __future__ import annotations

import ipaddress

# The control plane will allocate podCIDRs from 10.42.0.0/16 in order from the
# start of the range. Until it does, simulated nodes take /24s from the top
# (10.42.100.0/24 upwards), away from where the allocator begins; beyond 156
# nodes they share /24s, which the per-CIDR pools keep collision-free.
PROVISIONAL_FIRST_SUBNET = 100
PROVISIONAL_SUBNETS = 256 - PROVISIONAL_FIRST_SUBNET

SIM_NODE_RANGE = ipaddress.ip_network("10.44.0.0/16")
_NODE_RANGES = (SIM_NODE_RANGE,)


def provisional_pod_cidr(index: int) -> str:
    """The podCIDR node `index` takes until a CIDR allocator assigns one."""
    subnet = PROVISIONAL_FIRST_SUBNET + index % PROVISIONAL_SUBNETS
    return f"10.42.{subnet}.0/24"


def node_address(index: int) -> str:
    """The InternalIP of simulated node `index`: never-routed addresses only."""
    for net in _NODE_RANGES:
        usable = net.num_addresses - 2
        if index < usable:
            return str(net.network_address + 1 + index)
        index -= usable
    raise ValueError("no simulated node addresses left")


class IPPool:
    """The pod addresses of one CIDR: the network, the gateway (first host) and
    the broadcast address are never handed out."""

    def __init__(self, cidr: str) -> None:
        net = ipaddress.ip_network(cidr, strict=False)
        self.cidr = str(net)
        self._first = int(net.network_address) + 2
        self._last = int(net.broadcast_address) - 1
        self._next = self._first
        self._by_owner: dict[str, int] = {}
        self._owners: dict[int, str] = {}

    @property
    def size(self) -> int:
        return max(0, self._last - self._first + 1)

    @property
    def used(self) -> int:
        return len(self._owners)

    def allocate(self, owner: str) -> str | None:
        """An address for `owner` (the same one if it has one), or None when full."""
        if owner in self._by_owner:
            return str(ipaddress.ip_address(self._by_owner[owner]))
        for step in range(self.size):
            candidate = self._first + (self._next - self._first + step) % self.size
            if candidate not in self._owners:
                self._take(candidate, owner)
                self._next = candidate + 1 if candidate < self._last else self._first
                return str(ipaddress.ip_address(candidate))
        return None

    def reserve(self, ip: str, owner: str) -> bool:
        """Record that `owner` already holds `ip` (a pod adopted after a restart)."""
        try:
            value = int(ipaddress.ip_address(ip))
        except ValueError:
            return False
        if not self._first <= value <= self._last:
            return False
        holder = self._owners.get(value)
        if holder is not None:
            return holder == owner
        self.release(owner)
        self._take(value, owner)
        return True

    def release(self, owner: str) -> None:
        value = self._by_owner.pop(owner, None)
        if value is not None:
            self._owners.pop(value, None)

    def _take(self, value: int, owner: str) -> None:
        self._owners[value] = owner
        self._by_owner[owner] = value


class IPAM:
    """One pool per CIDR, created on first use."""

    def __init__(self) -> None:
        self._pools: dict[str, IPPool] = {}

    def pool(self, cidr: str) -> IPPool:
        pool = self._pools.get(cidr)
        if pool is None:
            # Spellings of one network share its pool.
            key = str(ipaddress.ip_network(cidr, strict=False))
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = IPPool(key)
            self._pools[cidr] = pool
        return pool

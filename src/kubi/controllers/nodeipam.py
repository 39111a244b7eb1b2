"""Node IPAM, upstream's range allocator: a pod CIDR for every node.

`CIDRSet` divides the cluster CIDR (10.42.0.0/16) into node-sized subnets
(/24) and hands them out in turn, continuing after the last one given, so a
CIDR just released is not reused at once. At start every podCIDR already on
a node is marked used; afterwards a node without `spec.podCIDR` gets the
next free subnet in `spec.podCIDR` and `spec.podCIDRs` (one strategic merge
patch), and a deleted node's subnet returns to the set. A node that gained a
podCIDR by other means keeps it (ours goes back), and a full range is
reported on the node as `CIDRNotAvailable`.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubi.api.errors import StatusError
from kubi.controllers.base import QueueController
from kubi.controllers.events import NORMAL
from kubi.controllers.manager import ControllerContext
from kubi.controllers.nodelifecycle import NODES

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CLUSTER_CIDR = "10.42.0.0/16"
NODE_CIDR_MASK_SIZE = 24


class CIDRRangeFull(Exception):
    def __init__(self) -> None:
        super().__init__("CIDR allocation failed; there are no remaining CIDRs left to allocate "
                         "in the accepted range")


class CIDRSet:
    """Which node subnets of the cluster CIDR are taken."""

    def __init__(self, cluster_cidr: str = CLUSTER_CIDR,
                 mask_size: int = NODE_CIDR_MASK_SIZE) -> None:
        self.network = ipaddress.ip_network(cluster_cidr)
        if mask_size < self.network.prefixlen:
            raise ValueError(f"node mask /{mask_size} is larger than the cluster CIDR "
                             f"{cluster_cidr}")
        self.mask_size = mask_size
        self.size = 2 ** (mask_size - self.network.prefixlen)
        self._step = 2 ** (self.network.max_prefixlen - mask_size)
        self._used: set[int] = set()
        self._next = 0

    def __len__(self) -> int:
        return len(self._used)

    def _cidr(self, index: int) -> str:
        base = int(self.network.network_address) + index * self._step
        return f"{ipaddress.ip_address(base)}/{self.mask_size}"

    def _index(self, cidr: str) -> int | None:
        """The subnet index of `cidr`, or None when it is not one of our subnets."""
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.version != self.network.version or net.prefixlen != self.mask_size \
                or not net.subnet_of(self.network):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - int(self.network.network_address)) // self._step

    def allocate_next(self) -> str:
        for offset in range(self.size):
            index = (self._next + offset) % self.size
            if index not in self._used:
                self._used.add(index)
                self._next = (index + 1) % self.size
                return self._cidr(index)
        raise CIDRRangeFull()

    def occupy(self, cidr: str) -> bool:
        """Mark a CIDR found on a node as used; False when it is outside the range."""
        index = self._index(cidr)
        if index is None:
            return False
        self._used.add(index)
        return True

    def release(self, cidr: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self._used.discard(index)


def node_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = list(spec.get("podCIDRs") or [])
    if not cidrs and spec.get("podCIDR"):
        cidrs = [spec["podCIDR"]]
    return cidrs


class NodeIPAMController(QueueController):
    name = "nodeipam"
    workers = 1

    def __init__(self, ctx: ControllerContext, *, cluster_cidr: str = CLUSTER_CIDR,
                 node_mask_size: int = NODE_CIDR_MASK_SIZE) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder("cidrAllocator")
        self.cidrs = CIDRSet(cluster_cidr, node_mask_size)
        # What each node holds, as far as we know: released when the node goes.
        self.allocated: dict[str, list[str]] = {}
        self.nodes = ctx.informers.get(NODES)
        self.nodes.on_add(self._node_seen)
        self.nodes.on_update(self._node_updated)
        self.nodes.on_delete(self._node_deleted)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("uid") != new["metadata"].get("uid"):
            self._node_deleted(old)  # deleted and re-created between two observations
        self._node_seen(new)

    def _node_seen(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        cidrs = node_cidrs(node)
        if cidrs:
            for cidr in cidrs:
                if cidr not in self.allocated.get(name, []) and not self.cidrs.occupy(cidr):
                    log.info("node %s: podCIDR %s is outside the cluster CIDR %s", name, cidr,
                             self.cidrs.network)
            self.allocated[name] = cidrs
        else:
            self.queue.add(name)

    def _node_deleted(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        for cidr in self.allocated.pop(name, None) or node_cidrs(node):
            self.cidrs.release(cidr)

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None or node_cidrs(node) or key in self.allocated:
            return
        try:
            cidr = self.cidrs.allocate_next()
        except CIDRRangeFull:
            self._event(node, "CIDRNotAvailable")
            raise
        try:
            held = await self._assign(key, cidr)
        except Exception:
            self.cidrs.release(cidr)
            raise
        if held is None:
            return
        if held != [cidr]:
            # The node got its podCIDRs elsewhere meanwhile: keep theirs, free ours.
            log.info("node %s already has podCIDRs %s; releasing %s", key, held, cidr)
            self.cidrs.release(cidr)
            for other in held:
                self.cidrs.occupy(other)
        else:
            log.info("node %s: allocated podCIDR %s", key, cidr)
        self.allocated[key] = held

    async def _assign(self, name: str, cidr: str) -> list[str] | None:
        """Patch the node; returns the CIDRs it holds afterwards (None: it is gone)."""
        try:
            fresh = await self.client.get(NODES, name)
        except StatusError as err:
            if err.code == 404:
                return None
            raise
        existing = node_cidrs(fresh)
        if existing:
            return existing
        patch = {"metadata": {"uid": fresh["metadata"]["uid"]},
                 "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}
        try:
            await self.client.patch(NODES, name, patch, patch_type="strategic")
        except StatusError:
            self._event(fresh, "CIDRAssignmentFailed")
            raise
        return [cidr]

    def _event(self, node: Obj, status: str) -> None:
        """A node status change event, worded as upstream's allocator words it."""
        name = node["metadata"]["name"]
        ref = {"metadata": {"name": name, "uid": node["metadata"].get("uid", "")}}
        self.recorder.event(ref, NORMAL, status, f"Node {name} status is now: {status}",
                            kind="Node", api_version="v1")


def nodeipam_controller(ctx: ControllerContext, *, cluster_cidr: str = CLUSTER_CIDR,
                        node_mask_size: int = NODE_CIDR_MASK_SIZE) -> NodeIPAMController:
    return NodeIPAMController(ctx, cluster_cidr=cluster_cidr, node_mask_size=node_mask_size)

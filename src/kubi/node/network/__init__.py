"""The pod network of a node: bridge, veth pairs, addresses, blackhole routes.

`PodNetwork` (podnetwork.py) prepares each pod's interface and keeps the
node's bridge and routes; `Ipam` (ipam.py) hands out addresses from the
node's podCIDR; netlink.py wires a pod's namespace (in the host runtime's
sandbox holder); iproute.py runs iproute2 on the node. netlink.py is
imported by the runtime's process side, which must not import asyncio, so
the names below are loaded lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubi.node.network.ipam import AddressesExhausted, Ipam
    from kubi.node.network.iproute import NetworkError
    from kubi.node.network.podnetwork import PodInterface, PodNetwork, host_veth_name

_EXPORTS = {
    "AddressesExhausted": "ipam", "Ipam": "ipam", "NetworkError": "iproute",
    "PodInterface": "podnetwork", "PodNetwork": "podnetwork", "host_veth_name": "podnetwork",
}

__all__ = ["AddressesExhausted", "Ipam", "NetworkError", "PodInterface", "PodNetwork",
           "host_veth_name"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"kubi.node.network.{module}"), name)

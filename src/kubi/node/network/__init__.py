"""The pod network of a node: bridge, veth pairs, addresses, blackhole routes.

`PodNetwork` (podnetwork.py) wires pod network namespaces to the node's
bridge; `Ipam` (ipam.py) hands out addresses from the node's podCIDR;
iproute.py runs iproute2 on the node or inside a pod's namespace.
"""

from kubi.node.network.ipam import AddressesExhausted, Ipam
from kubi.node.network.iproute import NetworkError
from kubi.node.network.podnetwork import PodInterface, PodNetwork, host_veth_name

__all__ = ["AddressesExhausted", "Ipam", "NetworkError", "PodInterface", "PodNetwork",
           "host_veth_name"]

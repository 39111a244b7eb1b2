"""The rtnetlink messages a pod's wiring sends, checked byte by byte (no root)."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from kubi.node.network import netlink


@pytest.mark.parametrize(("address", "prefix_length"),
                         [("10.42.0.5", 24), ("10.42.3.7", 16), ("192.168.1.1", 30),
                          ("10.0.0.1", 32)])
def test_broadcast_address(address: str, prefix_length: int) -> None:
    network = ipaddress.ip_interface(f"{address}/{prefix_length}").network
    assert netlink.broadcast_address(address, prefix_length) == \
        network.broadcast_address.packed


def attributes(payload: bytes) -> dict[int, bytes]:
    found, offset = {}, 0
    while offset < len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        found[kind] = payload[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def test_address_request_carries_local_address_and_broadcast() -> None:
    body = netlink.address_request(7, "10.42.0.9", 24)
    family, prefix, _flags, _scope, index = struct.unpack_from("=BBBBI", body)
    assert (family, prefix, index) == (socket.AF_INET, 24, 7)
    attrs = attributes(body[8:])
    assert attrs[netlink.IFA_LOCAL] == attrs[netlink.IFA_ADDRESS] == bytes([10, 42, 0, 9])
    assert attrs[netlink.IFA_BROADCAST] == bytes([10, 42, 0, 255])


def test_default_route_request_goes_via_the_gateway() -> None:
    body = netlink.default_route_request(3, "10.42.0.1")
    attrs = attributes(body[12:])
    assert attrs[netlink.RTA_GATEWAY] == bytes([10, 42, 0, 1])
    assert struct.unpack("=I", attrs[netlink.RTA_OIF]) == (3,)

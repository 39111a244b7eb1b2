"""Just enough rtnetlink to wire a pod: veth pairs, addresses, default routes.

Starting `ip` twice per pod costs more CPU than the kernel work it asks for,
so the per-pod changes are sent as rtnetlink messages from this process: a
request is a netlink header, a fixed struct (ifinfomsg, ifaddrmsg, rtmsg)
and type-length-value attributes, and the kernel acknowledges each with an
error code (0 for success). A netlink socket acts in the network namespace
it was created in, so a socket for a pod is created by a thread that has
briefly entered the pod's namespace. Node-wide, rarely changed things
(bridge, blackhole routes) stay with `ip` (iproute.py).

The calls block (the kernel may wait for its rtnl lock, which a slow netns
teardown elsewhere can hold), so callers run them in a worker thread.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from typing import Self

from kubi.node.runtime.host import linux

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
NLMSG_ERROR = 2

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

IFLA_IFNAME = 3
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
RTA_GATEWAY = 5
RTA_OIF = 4

IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

_HEADER = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")


class NetlinkError(OSError):
    pass


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def nested(kind: int, *children: bytes) -> bytes:
    return attr(kind, b"".join(children))


def name_attr(kind: int, name: str) -> bytes:
    return attr(kind, name.encode() + b"\0")


def u32_attr(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


def veth_request(host_name: str, peer_name: str, peer_netns_fd: int, master_index: int) -> bytes:
    """RTM_NEWLINK body: a veth pair, the host end up on `master`, the peer
    created directly in the namespace given by fd."""
    peer = ifinfo() + name_attr(IFLA_IFNAME, peer_name) + u32_attr(IFLA_NET_NS_FD, peer_netns_fd)
    info = nested(IFLA_LINKINFO, name_attr(IFLA_INFO_KIND, "veth"),
                  nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer)))
    return (ifinfo(flags=IFF_UP, change=IFF_UP) + name_attr(IFLA_IFNAME, host_name)
            + u32_attr(IFLA_MASTER, master_index) + info)


def address_request(index: int, address: str, prefix_length: int) -> bytes:
    net = ipaddress.ip_interface(f"{address}/{prefix_length}").network
    packed = ipaddress.ip_address(address).packed
    return (_IFADDR.pack(socket.AF_INET, prefix_length, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
            + attr(IFA_BROADCAST, net.broadcast_address.packed))


def default_route_request(index: int, gateway: str) -> bytes:
    return (_RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                        RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
            + attr(RTA_GATEWAY, ipaddress.ip_address(gateway).packed) + u32_attr(RTA_OIF, index))


class Netlink:
    """One rtnetlink socket, in the namespace it was created in."""

    def __init__(self, netns: str | None = None) -> None:
        def make() -> socket.socket:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                 socket.NETLINK_ROUTE)
        self.sock = linux.call_in_netns(netns, make) if netns else make()
        self.sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, messages: Iterable[tuple[int, int, bytes]]) -> None:
        """Send (type, flags, body) requests at once, then check every ack in turn."""
        batch = b""
        pending: list[int] = []
        for kind, flags, body in messages:
            self._seq += 1
            batch += _HEADER.pack(_HEADER.size + len(body), kind,
                                  flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, 0) + body
            pending.append(self._seq)
        self.sock.sendall(batch)
        first_error: NetlinkError | None = None
        while pending:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, kind, _flags, seq, _pid = _HEADER.unpack_from(data, offset)
                if kind == NLMSG_ERROR and seq in pending:
                    pending.remove(seq)
                    code = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                    if code and first_error is None:
                        first_error = NetlinkError(code, os.strerror(code))
                offset += (length + 3) & ~3 if length else len(data)
        if first_error is not None:
            raise first_error

    def add_veth(self, host_name: str, peer_name: str, peer_netns: str, master: str) -> None:
        fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            master_index = socket.if_nametoindex(master)
            self.request([(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                           veth_request(host_name, peer_name, fd, master_index))])
        finally:
            os.close(fd)

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False when there was none."""
        try:
            self.request([(RTM_DELLINK, 0, ifinfo() + name_attr(IFLA_IFNAME, name))])
        except NetlinkError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True


def configure_pod_interface(netns: str, name: str, address: str, prefix_length: int,
                            gateway: str) -> None:
    """Inside the pod: address on `name`, the link up, default route via `gateway`."""
    index = linux.call_in_netns(netns, lambda: socket.if_nametoindex(name))
    with Netlink(netns) as nl:
        nl.request([
            (RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, address_request(index, address,
                                                                     prefix_length)),
            (RTM_NEWLINK, 0, ifinfo(index, IFF_UP, IFF_UP)),
            (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, default_route_request(index, gateway)),
        ])

"""Just enough rtnetlink to wire a pod: veth pairs, addresses, default routes.

Starting `ip` twice per pod costs more CPU than the kernel work it asks for,
so the per-pod changes are sent as rtnetlink messages: a request is a
netlink header, a fixed struct (ifinfomsg, ifaddrmsg, rtmsg) and
type-length-value attributes, and the kernel acknowledges each with an
error code (0 for success). A netlink socket acts in the network namespace
it was created in. `wire_pod` runs in the pod's sandbox holder right after
it made the pod's namespace: with one socket opened in the node's namespace
before and one in the pod's, it needs no namespace switching at all.
Node-wide, rarely changed things (bridge, blackhole routes) stay with `ip`
(iproute.py).

Everything here is synchronous and imports no asyncio (the launcher's forks
use it); the node's side runs its calls in a worker thread, since the
kernel may make them wait for its rtnl lock.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterable
from typing import Self

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


def broadcast_address(address: str, prefix_length: int) -> bytes:
    """The IPv4 broadcast address of `address`/`prefix_length`, packed."""
    host_bits = (1 << (32 - prefix_length)) - 1
    return struct.pack("!I", struct.unpack("!I", socket.inet_aton(address))[0] | host_bits)


def address_request(index: int, address: str, prefix_length: int) -> bytes:
    # Plain inet_aton rather than the ipaddress module: this runs in a fresh
    # fork for every pod, where each Python object touched is a page copied.
    packed = socket.inet_aton(address)
    return (_IFADDR.pack(socket.AF_INET, prefix_length, 0, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
            + attr(IFA_BROADCAST, broadcast_address(address, prefix_length)))


def default_route_request(index: int, gateway: str) -> bytes:
    return (_RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT,
                        RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
            + attr(RTA_GATEWAY, socket.inet_aton(gateway)) + u32_attr(RTA_OIF, index))


class Netlink:
    """One rtnetlink socket, in the namespace it was created in."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  socket.NETLINK_ROUTE)
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

    def add_veth(self, host_name: str, peer_name: str, peer_netns_fd: int,
                 master_index: int) -> None:
        """A veth pair: `host_name` here, up on the bridge with index
        `master_index`, and `peer_name` in the namespace of `peer_netns_fd`."""
        self.request([(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                       veth_request(host_name, peer_name, peer_netns_fd, master_index))])

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False when there was none."""
        try:
            self.request([(RTM_DELLINK, 0, ifinfo() + name_attr(IFLA_IFNAME, name))])
        except NetlinkError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True


# The loopback device of a new network namespace is always its first.
LOOPBACK_INDEX = 1


def wire_pod(node: Netlink, *, bridge_index: int, host_veth: str, interface: str,
             address: str, prefix_length: int, gateway: str) -> None:
    """Wire the network namespace the calling thread is in, a fresh one: a veth
    pair with `interface` here and `host_veth` on the node's bridge (through
    `node`, a socket of the node's namespace), the address on `interface`,
    both ends up, the default route via `gateway`, and the loopback up."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        node.add_veth(host_veth, interface, own, bridge_index)
    finally:
        os.close(own)
    index = socket.if_nametoindex(interface)
    with Netlink() as pod:
        pod.request([
            (RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, address_request(index, address,
                                                                     prefix_length)),
            (RTM_NEWLINK, 0, ifinfo(index, IFF_UP, IFF_UP)),
            (RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, default_route_request(index, gateway)),
            (RTM_NEWLINK, 0, ifinfo(LOOPBACK_INDEX, IFF_UP, IFF_UP)),
        ])

"""The sandbox holder: the process that owns a pod's namespaces (its "pause").

The launcher forks the holder straight into a new PID namespace (it
unshares CLONE_NEWPID for that one fork, see launcher.py), so the holder is
the pod's PID 1 from the start. It binds its socket (in the node's network
namespace, where the runtime can reach it), mounts the pod's /dev/shm (a
tmpfs in the sandbox's directory, which containers bind), then unshares
new network, UTS and IPC namespaces for itself (a hostNetwork pod keeps the
node's network and UTS, as upstream), sets the hostname and, given the
pod's network (podnetwork.py), wires it: a veth pair to the node's bridge,
the address, the default route and the loopback (netlink.wire_pod; without
a network of its own only the loopback is brought up). All of this happens
here, in parallel for pods started together, rather than in the agent's
one event loop. Only then does it answer the runtime, with its pid as the
node numbers it, and stay as the pod's shim (podshim.py): it starts and
serves the pod's containers and reaps whatever is re-parented to it.
Killing the holder ends the PID namespace and with it every process
inside; its network namespace, and the veth pair in it, go too.

There is no mount namespace here: each container builds its own from the
node's (see container.py), so mounts made on the node after the pod started
(volumes) are still visible to later containers.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from typing import Any, NoReturn

from kubi.node.network.netlink import Netlink, wire_pod
from kubi.node.runtime.host import linux
from kubi.node.runtime.host.podshim import PodShim
from kubi.node.runtime.host.protocol import encode, pod_address

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def namespace_flags(host_network: bool, isolated: bool) -> int:
    """Every namespace the pod gets, its PID namespace included."""
    if not isolated:
        return 0
    flags = linux.CLONE_NEWPID | linux.CLONE_NEWIPC
    if not host_network:
        flags |= linux.CLONE_NEWNET | linux.CLONE_NEWUTS
    return flags


def wants_pid_namespace(request: dict[str, Any]) -> bool:
    """Whether the launcher must fork this holder into a new PID namespace."""
    flags = namespace_flags(bool(request.get("host_network")), bool(request.get("isolated")))
    return bool(flags & linux.CLONE_NEWPID)


def run_holder(conn: socket.socket, request: dict[str, Any]) -> NoReturn:
    """Runs in a child of the launcher; answers {"pid": N, "start_time": T} or
    {"error": text}, then serves the pod until killed."""
    try:
        linux.set_process_name("kubi-pause")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        listener.bind(pod_address(request["sandbox_id"]))
        listener.listen(64)
        if request.get("shm"):
            _mount_shm(request["shm"]["path"], request["shm"]["size"])
        _make_namespaces(request)
        shim = PodShim(listener)
        conn.sendall(encode({"pid": shim.shim_status["shim_pid"],
                             "start_time": shim.shim_status["shim_start_time"]}))
    except BaseException as exc:  # noqa: BLE001 - the runtime must hear about any failure
        conn.sendall(encode({"error": f"creating the pod's namespaces: {exc}"}))
        os._exit(1)
    conn.close()
    _quiet_stdio()
    shim.serve()


def _mount_shm(path: str, size: int) -> None:
    os.mkdir(path, 0o1777)
    linux.mount("shm", path, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
                f"mode=1777,size={size}")


def _make_namespaces(request: dict[str, Any]) -> None:
    flags = namespace_flags(bool(request.get("host_network")),
                            bool(request.get("isolated"))) & ~linux.CLONE_NEWPID
    network = request.get("network") if flags & linux.CLONE_NEWNET else None
    node: Netlink | None = None
    bridge_index = 0
    if network:
        # Opened before leaving the node's network namespace: it stays there.
        node = Netlink()
        bridge_index = socket.if_nametoindex(network["bridge"])
    try:
        if flags:
            linux.unshare(flags)
        if flags & linux.CLONE_NEWUTS and request.get("hostname"):
            socket.sethostname(request["hostname"])
        if node is not None and network:
            wire_pod(node, bridge_index=bridge_index, host_veth=network["host_veth"],
                     interface=network["interface"], address=network["ip"],
                     prefix_length=network["prefix_length"], gateway=network["gateway"])
        elif flags & linux.CLONE_NEWNET:
            loopback_up()
    finally:
        if node is not None:
            node.close()


def _quiet_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)

"""The sandbox holder: the process that owns a pod's namespaces (its "pause").

Forked by the launcher, it unshares new network, UTS, IPC and PID namespaces
(a hostNetwork pod keeps the node's network and UTS, as upstream), then
forks the pod's PID 1: that process sets the hostname, brings up the
loopback interface and stays, reaping whatever is re-parented to it (with
shareProcessNamespace, the orphans of every container). The intermediate
reports PID 1's pid, as the node numbers it, and exits; the launcher, a
child subreaper, inherits the holder. Killing the holder ends the PID
namespace and with it every process inside.

There is no mount namespace here: each container builds its own from the
node's (see container.py), so mounts made on the node after the pod started
(volumes) are still visible to later containers.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import struct
from typing import Any, NoReturn

from kubi.node.runtime.host import linux
from kubi.node.runtime.host.protocol import encode

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def namespace_flags(host_network: bool, isolated: bool) -> int:
    if not isolated:
        return 0
    flags = linux.CLONE_NEWPID | linux.CLONE_NEWIPC
    if not host_network:
        flags |= linux.CLONE_NEWNET | linux.CLONE_NEWUTS
    return flags


def run_holder(conn: socket.socket, request: dict[str, Any]) -> NoReturn:
    """Runs in a child of the launcher; answers {"pid": N} or {"error": text}."""
    try:
        flags = namespace_flags(bool(request.get("host_network")),
                                bool(request.get("isolated", True)))
        if flags:
            linux.unshare(flags)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            conn.close()
            _pod_init(request, flags, ready_w)
        os.close(ready_w)
        status = b""
        while chunk := os.read(ready_r, 4096):
            status += chunk
        if status == b"ok":
            conn.sendall(encode({"pid": pid, "start_time": linux.process_start_time(pid)}))
        else:
            conn.sendall(encode({"error": status.decode(errors="replace") or "holder died"}))
    except BaseException as exc:  # noqa: BLE001 - the runtime must hear about any failure
        conn.sendall(encode({"error": f"creating the pod's namespaces: {exc}"}))
    os._exit(0)


def _pod_init(request: dict[str, Any], flags: int, ready_w: int) -> NoReturn:
    try:
        linux.set_process_name("kubi-pause")
        if flags & linux.CLONE_NEWUTS and request.get("hostname"):
            socket.sethostname(request["hostname"])
        if flags & linux.CLONE_NEWNET:
            loopback_up()
    except BaseException as exc:  # noqa: BLE001
        os.write(ready_w, str(exc).encode())
        os._exit(1)
    os.write(ready_w, b"ok")
    _quiet_stdio()
    _reap_forever()


def _quiet_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.closerange(3, 1 << 16)


def _reap_forever() -> NoReturn:
    # As PID 1 of its namespace only signals with a handler reach us from inside;
    # the runtime ends the pod with SIGKILL from the node.
    watched = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        info = signal.sigwaitinfo(watched)
        if info.si_signo in (signal.SIGTERM, signal.SIGINT):
            os._exit(0)

"""The pod's shim: the sandbox holder, serving every container of its pod.

Once the holder (holder.py) has made the pod's namespaces it stays as the
pod's shim, as containerd's runc shim serves all of a pod's containers: one
process per pod, not one per container, and one fork per container start
instead of two. It runs a selector loop over

- its socket (abstract, bound in the node's network namespace before the
  pod's was made), where the runtime sends one JSON line per connection:
  `start` a container (the answer is the shim's start reply; the
  connection then stays open until the container's exit is recorded, so
  the runtime learns of the exit by the hang-up), `watch` a container (the
  same hang-up, for a restarted runtime), or `attach` to one (frames follow,
  see protocol.py);
- the containers' output, stdin and attach clients (shim.py);
- SIGCHLD: as its pod's PID 1 the shim reaps every child, its containers
  and the orphans a shared PID namespace hands it.

Containers are forked from here, so they start in the pod's network, UTS
and IPC namespaces without joining anything; a container with a PID
namespace of its own is forked after unsharing CLONE_NEWPID, and the shim
returns to its own right after. SIGTERM or SIGINT from inside the pod ends
it, as they end a pause container; the runtime ends it with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import signal
import socket
import time
from collections.abc import Callable
from typing import Any, NoReturn

from kubi.node.runtime.host import linux, protocol
from kubi.node.runtime.host.cgroups import Cgroups
from kubi.node.runtime.host.shim import ContainerShim, StartFailed

# A request line longer than this is refused (a start carries the container's env).
MAX_REQUEST = 1 << 20


def _events(ready: int) -> int:
    """selectors' reading of an epoll result: a hang-up or an error makes a
    descriptor both readable and writable, so whoever waits finds out."""
    events = 0
    if ready & ~select.EPOLLIN:
        events |= selectors.EVENT_WRITE
    if ready & ~select.EPOLLOUT:
        events |= selectors.EVENT_READ
    return events


def _ignore(signum: int, frame: Any) -> None:
    """SIGCHLD only has to wake the loop (through the wakeup fd)."""


class _Pending:
    """A connection whose request line has not fully arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""


class PodShim:
    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        # epoll itself rather than `selectors`: the shim runs in a fork, where
        # each Python layer it goes through costs copied pages.
        self._epoll = select.epoll()
        # fd -> (events, handler) of every descriptor the loop watches.
        self._watched: dict[int, tuple[int, Callable[[int], None]]] = {}
        self.containers: dict[str, ContainerShim] = {}
        self.by_pid: dict[int, ContainerShim] = {}
        self.pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        own = int(os.readlink("/proc/self"))
        self.shim_status = {"shim_pid": own, "shim_start_time": linux.process_start_time(own)}
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.stopping = False
        self._cgroups: dict[str, Cgroups] = {}

    # ---- the loop -----------------------------------------------------------------

    def set_events(self, fd: int, events: int, handler: Callable[[int], None]) -> None:
        """`events` are selectors.EVENT_READ and EVENT_WRITE, which have
        EPOLLIN's and EPOLLOUT's values."""
        watched = self._watched.get(fd)
        if events:
            if watched is None:
                self._epoll.register(fd, events)
            elif watched[0] != events:
                self._epoll.modify(fd, events)
            self._watched[fd] = (events, handler)
        elif watched is not None:
            del self._watched[fd]
            self._epoll.unregister(fd)

    def cgroups(self, root: str) -> Cgroups:
        found = self._cgroups.get(root)
        if found is None:
            found = self._cgroups[root] = Cgroups(root)
        return found

    def serve(self) -> NoReturn:
        signal.set_wakeup_fd(self.wakeup_w)
        linux.set_signal(signal.SIGCHLD, _ignore)
        for sig in (signal.SIGTERM, signal.SIGINT):
            linux.set_signal(sig, self._on_stop)
        self.listener.setblocking(False)
        self.set_events(self.listener.fileno(), selectors.EVENT_READ, self._on_accept)
        self.set_events(self.wakeup_r, selectors.EVENT_READ, self._on_signal)
        while not self.stopping:
            for fd, ready in self._epoll.poll(self._timeout()):
                watched = self._watched.get(fd)
                if watched is not None:
                    watched[1](_events(ready))
            for container in [c for c in self.containers.values() if c.drained()]:
                self._finish(container)
        os._exit(0)

    def _timeout(self) -> float | None:
        deadlines = [c.drain_deadline for c in self.containers.values()
                     if c.exit_code is not None]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _on_signal(self, mask: int) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.wakeup_r, 4096)
        self._reap()

    def _reap(self) -> None:
        for pid, status in linux.reaped():
            container = self.by_pid.pop(pid, None)
            if container is not None:
                container.exited(status)

    def _finish(self, container: ContainerShim) -> None:
        container.finish()
        # From now on status.json says everything: a later `watch` is answered
        # by hanging up at once, as for any container this shim does not know.
        del self.containers[container.id]

    # ---- requests ---------------------------------------------------------------

    def _on_accept(self, mask: int) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if not protocol.peer_allowed(sock):
            sock.close()
            return
        sock.setblocking(False)
        pending = _Pending(sock)
        self.set_events(sock.fileno(), selectors.EVENT_READ,
                        lambda mask: self._on_request_data(pending))

    def _on_request_data(self, pending: _Pending) -> None:
        try:
            chunk = pending.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        pending.data += chunk
        line, newline, rest = pending.data.partition(b"\n")
        if not newline and chunk and len(pending.data) <= MAX_REQUEST:
            return
        self.set_events(pending.sock.fileno(), 0, self._on_accept)
        try:
            request = json.loads(line) if newline else None
        except ValueError:
            request = None
        if not isinstance(request, dict):
            pending.sock.close()
            return
        self._dispatch(pending.sock, request, rest)

    def _dispatch(self, sock: socket.socket, request: dict[str, Any], rest: bytes) -> None:
        op = request.get("op")
        container = self.containers.get(request.get("container_id") or "")
        if op == "start":
            self._start(sock, request)
        elif op in ("watch", "attach") and container is None:
            # Unknown here: never started, or finished (see _finish).
            sock.close()
        elif op == "watch":
            assert container is not None
            container.watch(sock)
        elif op == "attach":
            assert container is not None
            container.attach(sock, rest)
        else:
            self._reply(sock, {"error": f"unknown request {op!r}"})
            sock.close()

    def _start(self, sock: socket.socket, request: dict[str, Any]) -> None:
        container = ContainerShim(self, request, self.shim_status)
        try:
            container.start(self._fork)
        except BaseException as exc:  # noqa: BLE001 - a failed start is recorded, not raised
            message = str(exc) if isinstance(exc, StartFailed) else f"starting the shim: {exc}"
            with contextlib.suppress(Exception):
                container.record_start_failure(message)
            self._reply(sock, {"error": message})
            sock.close()
            return
        self.containers[container.id] = container
        self.by_pid[container.local_pid] = container
        self._reply(sock, {"pid": container.pid, **container.status})
        container.watch(sock)

    def _fork(self, own_pid_namespace: bool) -> int:
        """Fork a container, in a new PID namespace if asked; 0 in the child.

        The child keeps the shim's signal handlers until its exec, which
        resets them; nothing signals a container before its start is answered,
        and that waits for the exec."""
        if own_pid_namespace:
            linux.unshare(linux.CLONE_NEWPID)
        try:
            pid = os.fork()
        except OSError:
            if own_pid_namespace:
                linux.setns(self.pid_namespace, linux.CLONE_NEWPID)
            raise
        if pid != 0 and own_pid_namespace:
            linux.setns(self.pid_namespace, linux.CLONE_NEWPID)
        return pid

    @staticmethod
    def _reply(sock: socket.socket, message: dict[str, Any]) -> None:
        sock.setblocking(True)
        sock.settimeout(5.0)
        with contextlib.suppress(OSError):
            sock.sendall(protocol.encode(message))
        sock.setblocking(False)

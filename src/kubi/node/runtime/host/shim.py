"""One container as its pod's shim serves it: start, output, attach, exit.

The pod's shim (podshim.py, the sandbox holder) makes a `ContainerShim`
for each container it starts and runs them all on its one selector loop.
A container shim makes the container's cgroup with its limits, forks the
container (see container.py), then serves it until it exits: output goes
to the CRI log file and to every attached client, clients' input goes to
the container's stdin (a pipe, or the pty when `tty`), resize requests go
to the pty. When the container exits (the pod's shim reaps it and calls
`exited`) it finishes reading its output, tells OOMKilled from other
deaths by the cgroup's `oom_kill` counter, removes the cgroup, records the
exit in status.json and hangs up on the runtime's watch connections, which
is how the runtime learns of the exit. If the pod's shim is killed, the
container dies with it (parent-death signal), so no process is ever left
without a record.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import selectors
import socket
import struct
import termios
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubi.node.runtime.host import linux, protocol
from kubi.node.runtime.host.cgroups import Cgroups
from kubi.node.runtime.host.container import ProcessSpec, read_report, setup_and_exec
from kubi.node.runtime.host.logfile import CriLogWriter
from kubi.node.runtime.host.state import write_json

# Once the container has exited, how long to wait for its output to end (a
# background process of a shared PID namespace may hold the pipe open).
DRAIN_SECONDS = 1.0
# A client that reads this far behind is dropped rather than slow us down.
MAX_CLIENT_BACKLOG = 4 << 20
START_ERROR_EXIT_CODE = 128


def exit_reason(exit_code: int, oom_killed: bool) -> str:
    """The terminated reason containerd reports."""
    if oom_killed and exit_code != 0:
        return "OOMKilled"
    return "Completed" if exit_code == 0 else "Error"


def set_window_size(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class Loop(Protocol):
    """What a container shim needs of the pod shim: its selector loop, and the
    node's cgroups (one `Cgroups` per root serves every container)."""

    def set_events(self, fd: int, events: int, handler: Callable[[int], None]) -> None:
        """Call `handler(mask)` when `fd` is ready for `events`; 0 stops watching."""

    def cgroups(self, root: str) -> Cgroups: ...


class StartFailed(Exception):
    """The container did not start; the message is what users see."""


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.stdin = False


class ContainerShim:
    def __init__(self, loop: Loop, request: dict[str, Any], shim_status: dict[str, Any]
                 ) -> None:
        self.loop = loop
        self.request = request
        self.id: str = request["container_id"]
        self.spec = ProcessSpec.from_json(request["process"])
        self.status_path: str = request["status_path"]
        self.cgroups = loop.cgroups(request.get("cgroup_root") or "kubi")
        self.cgroup: str | None = request.get("cgroup")
        self.status: dict[str, Any] = dict(shim_status)
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.clients: dict[int, _Client] = {}
        self.watchers: list[socket.socket] = []
        self.outputs: dict[int, str] = {}
        self.stdin_fd: int | None = None
        self.stdin_pending = bytearray()
        self.stdin_closed = False
        self.master: int | None = None
        # The container's pid as the node numbers it, and as the shim does (it
        # may be the PID 1 of the pod's namespace).
        self.pid = 0
        self.local_pid = 0
        self.exit_code: int | None = None
        self.drain_deadline = 0.0
        self.log: CriLogWriter | None = None

    # ---- start ----------------------------------------------------------------------

    def start(self, fork: Callable[[bool], int]) -> None:
        """Start the container; `fork(own_pid_namespace)` forks it. Blocks until
        it has exec'd (or failed to), which takes milliseconds."""
        req = self.request
        if self.cgroup:
            try:
                self.cgroups.create(self.cgroup, memory_limit=req.get("memory_limit"),
                                    cpu_millis=req.get("cpu_millis"))
            except OSError as exc:
                raise StartFailed(f"setting resource limits: {exc}") from exc
        if req.get("log_path"):
            self.log = CriLogWriter(req["log_path"], max_bytes=req["log_max_bytes"],
                                    max_files=req["log_max_files"])
        stdio, child_only = self._open_stdio()
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        self.local_pid = fork(bool(req.get("own_pid_ns")))
        if self.local_pid == 0:
            os.close(report_r)
            setup_and_exec(self.spec, {}, stdio, report_w)
        os.close(report_w)
        for fd in child_only:
            os.close(fd)
        # Until the child has exec'd, every page either of us writes is copied:
        # wait for the exec before doing anything else.
        report = read_report(report_r)
        os.close(report_r)
        self.status["created"] = report.get("created", [])
        if "error" in report or "pid" not in report:
            raise StartFailed(report.get("error") or "the container died before it started")
        self.pid = report["pid"]
        # Not reaped before this returns, so even a container that has already
        # exited still has its start time.
        start_time = linux.process_start_time(self.pid, zombie=True)
        self.status.update(pid=self.pid, start_time=start_time, started_at=time.time())
        write_json(self.status_path, self.status)
        for fd in self.outputs:
            os.set_blocking(fd, False)
            self._watch(fd, functools.partial(self._read_output, fd))
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)

    def _open_stdio(self) -> tuple[tuple[int, int, int], list[int]]:
        """The container's (stdin, stdout, stderr) and the fds only it keeps."""
        if self.spec.tty:
            master, slave = os.openpty()
            os.set_inheritable(master, False)
            self.master = master
            self.outputs[master] = "stdout"
            if self.request.get("stdin"):
                self.stdin_fd = master
            return (slave, slave, slave), [slave]
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self.outputs[out_r] = "stdout"
        self.outputs[err_r] = "stderr"
        if self.request.get("stdin"):
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            self.stdin_fd = in_w
        else:
            in_r = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        return (in_r, out_w, err_w), [in_r, out_w, err_w]

    def record_start_failure(self, message: str) -> None:
        """Record the failed start and let go of everything it made."""
        now = time.time()
        self.status.update(exit_code=START_ERROR_EXIT_CODE, reason="StartError",
                           message=message, started_at=now, finished_at=now)
        write_json(self.status_path, self.status)
        for fd in list(self.outputs):
            self._close_output(fd)
        if self.stdin_fd is not None and self.stdin_fd != self.master:
            os.close(self.stdin_fd)
        self.stdin_fd = None
        if self.log is not None:
            self.log.close()
        if self.cgroup:
            self.cgroups.remove(self.cgroup)

    # ---- the loop's side ----------------------------------------------------------

    def _watch(self, fd: int, handler: Callable[[int], None]) -> None:
        self.handlers[fd] = handler
        self._update(fd)

    def _interest(self, fd: int) -> int:
        events = 0
        if fd in self.outputs or fd in self.clients or \
                any(w.fileno() == fd for w in self.watchers):
            events |= selectors.EVENT_READ
        if fd == self.stdin_fd and self.stdin_pending:
            events |= selectors.EVENT_WRITE
        client = self.clients.get(fd)
        if client is not None and client.outbox:
            events |= selectors.EVENT_WRITE
        return events

    def _update(self, fd: int) -> None:
        handler = self.handlers.get(fd)
        if handler is not None:
            self.loop.set_events(fd, self._interest(fd), handler)

    def _forget(self, fd: int) -> None:
        handler = self.handlers.pop(fd, None)
        if handler is not None:
            self.loop.set_events(fd, 0, handler)

    # ---- the container's output -----------------------------------------------

    def _read_output(self, fd: int, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush_stdin()
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as exc:
            # A pty master reads EIO once the last slave fd is closed.
            if exc.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self._close_output(fd)
            return
        stream = self.outputs[fd]
        if self.log is not None:
            self.log.write(stream, data)
        kind = protocol.STDOUT if stream == "stdout" else protocol.STDERR
        packet = protocol.frame(kind, data)
        for client in list(self.clients.values()):
            self._send(client, packet)

    def _close_output(self, fd: int) -> None:
        del self.outputs[fd]
        if fd == self.stdin_fd:
            self.stdin_fd = None
        self._forget(fd)
        os.close(fd)

    # ---- stdin ----------------------------------------------------------------

    def _queue_stdin(self, data: bytes) -> None:
        if self.stdin_fd is None or self.stdin_closed:
            return
        self.stdin_pending += data
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        fd = self.stdin_fd
        if fd is None:
            return
        while self.stdin_pending:
            try:
                n = os.write(fd, self.stdin_pending)
            except BlockingIOError:
                break
            except OSError:
                self.stdin_pending.clear()
                break
            del self.stdin_pending[:n]
        if fd in self.handlers:
            self._update(fd)
        elif self.stdin_pending:
            self._watch(fd, lambda mask: self._flush_stdin())
        if not self.stdin_pending and self.stdin_closed:
            self._really_close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_fd is None or self.stdin_closed:
            return
        self.stdin_closed = True
        if not self.stdin_pending:
            self._really_close_stdin()

    def _really_close_stdin(self) -> None:
        fd = self.stdin_fd
        if fd is None:
            return
        if fd == self.master:
            # A terminal has no half-close: end-of-file is ^D at the start of a line.
            with contextlib.suppress(OSError):
                os.write(fd, b"\x04")
            self.stdin_fd = None
            return
        self.stdin_fd = None
        self._forget(fd)
        os.close(fd)

    # ---- attach clients -----------------------------------------------------

    def attach(self, sock: socket.socket, received: bytes) -> None:
        """Serve an attach client on `sock`, which already sent `received`."""
        client = _Client(sock)
        self.clients[sock.fileno()] = client
        self._watch(sock.fileno(), functools.partial(self._on_client, client))
        if received:
            self._take_frames(client, received)

    def _on_client(self, client: _Client, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._send(client, b"")
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        self._take_frames(client, data)

    def _take_frames(self, client: _Client, data: bytes) -> None:
        client.inbox += data
        for kind, payload in protocol.parse_frames(client.inbox):
            if kind == protocol.HELLO:
                client.stdin = bool(json.loads(payload or b"{}").get("stdin"))
            elif kind == protocol.STDIN:
                self._queue_stdin(payload)
            elif kind == protocol.STDIN_CLOSE:
                self._client_done_with_stdin(client)
            elif kind == protocol.RESIZE and self.master is not None:
                width, height = protocol.RESIZE_PAYLOAD.unpack(payload)
                with contextlib.suppress(OSError):
                    set_window_size(self.master, width, height)

    def _client_done_with_stdin(self, client: _Client) -> None:
        if client.stdin and self.request.get("stdin_once"):
            self._close_stdin()
        client.stdin = False

    def _send(self, client: _Client, data: bytes) -> None:
        client.outbox += data
        try:
            while client.outbox:
                n = client.sock.send(client.outbox)
                del client.outbox[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._drop(client)
            return
        if len(client.outbox) > MAX_CLIENT_BACKLOG:
            self._drop(client)
            return
        self._update(client.sock.fileno())

    def _drop(self, client: _Client) -> None:
        fd = client.sock.fileno()
        if self.clients.pop(fd, None) is None:
            return
        self._client_done_with_stdin(client)
        self._forget(fd)
        client.sock.close()

    # ---- watchers and exit ---------------------------------------------------

    def watch(self, sock: socket.socket) -> None:
        """Hang up on `sock` once the exit is recorded."""
        self.watchers.append(sock)
        sock.setblocking(False)
        self._watch(sock.fileno(), functools.partial(self._on_watcher, sock))

    def _on_watcher(self, sock: socket.socket, mask: int) -> None:
        # A watcher says nothing; readable means it hung up (the runtime stopped).
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return
        self._forget(sock.fileno())
        self.watchers.remove(sock)
        sock.close()

    def exited(self, status: int) -> None:
        """The pod's shim reaped the container: drain its output, then finish."""
        code = os.waitstatus_to_exitcode(status)
        self.exit_code = code if code >= 0 else 128 - code
        self.status["finished_at"] = time.time()
        self.drain_deadline = time.monotonic() + DRAIN_SECONDS

    def drained(self) -> bool:
        """Exited, and its output has ended or had its time."""
        return self.exit_code is not None and (
            not self.outputs or time.monotonic() >= self.drain_deadline)

    def finish(self) -> None:
        assert self.exit_code is not None
        for fd in list(self.outputs):
            self._close_output(fd)
        if self.stdin_fd is not None:
            self._really_close_stdin()
        if self.log is not None:
            self.log.close()
        oom = bool(self.cgroup) and self.cgroups.oom_kills(self.cgroup or "") > 0
        if self.cgroup:
            self.cgroups.remove(self.cgroup)
        self.status.update(exit_code=self.exit_code, reason=exit_reason(self.exit_code, oom))
        write_json(self.status_path, self.status)
        goodbye = protocol.frame(protocol.EXIT, protocol.EXIT_PAYLOAD.pack(self.exit_code))
        for client in list(self.clients.values()):
            self._forget(client.sock.fileno())
            client.sock.setblocking(True)
            client.sock.settimeout(1.0)
            with contextlib.suppress(OSError):
                client.sock.sendall(bytes(client.outbox) + goodbye)
            client.sock.close()
        self.clients.clear()
        for sock in self.watchers:
            self._forget(sock.fileno())
            sock.close()
        self.watchers.clear()

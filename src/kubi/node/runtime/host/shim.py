"""The shim: the parent that one container's process lives and dies under.

Forked by the launcher for each container start, the shim outlives the agent
(a restarted agent finds it, and the container, through status.json). It
starts the container (see container.py), then serves it until it exits:
output goes to the CRI log file and to every attached client, clients'
input goes to the container's stdin (a pipe, or the pty when `tty`), resize
requests go to the pty. When the container exits the shim finishes reading
its output, tells OOMKilled from other deaths by the cgroup's `oom_kill`
counter, removes the cgroup, records the exit and leaves. If the shim is
killed, the container dies with it (parent-death signal), so no process is
ever left without a record.
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
from typing import Any, NoReturn

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


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.stdin = False


class Shim:
    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request
        self.spec = ProcessSpec.from_json(request["process"])
        self.status_path: str = request["status_path"]
        self.cgroups = Cgroups(request.get("cgroup_root") or "kubi")
        self.cgroup: str | None = request.get("cgroup")
        self.status: dict[str, Any] = {
            "shim_pid": os.getpid(),
            "shim_start_time": linux.process_start_time(os.getpid()),
        }
        self.selector = selectors.DefaultSelector()
        self.handlers: dict[int, Callable[[int], None]] = {}
        self.clients: dict[int, _Client] = {}
        self.outputs: dict[int, str] = {}
        self.stdin_fd: int | None = None
        self.stdin_pending = bytearray()
        self.stdin_closed = False
        self.master: int | None = None
        self.pid = 0
        self.pidfd = -1
        self.exit_code: int | None = None
        self.drain_deadline = 0.0
        self.log: CriLogWriter | None = None
        self.listener: socket.socket | None = None

    # ---- start ----------------------------------------------------------------------

    def start(self) -> None:
        req = self.request
        holder = req.get("holder")
        names = list(self.spec.join) + (["pid"] if req.get("share_pid") else [])
        ns_fds = (linux.open_namespaces(holder["pid"], holder["start_time"], names)
                  if holder and names else {})
        if req.get("log_path"):
            self.log = CriLogWriter(req["log_path"], max_bytes=req["log_max_bytes"],
                                    max_files=req["log_max_files"])
        stdio, child_only = self._open_stdio()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.listener.bind(protocol.attach_address(req["container_id"]))
        self.listener.listen(16)
        if req.get("share_pid"):
            linux.setns(ns_fds["pid"], linux.CLONE_NEWPID)
        elif req.get("own_pid_ns"):
            linux.unshare(linux.CLONE_NEWPID)
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(report_r)
            setup_and_exec(self.spec, ns_fds, stdio, report_w)
        self.pid = pid
        # Read now: a container that exits at once would be a zombie without one.
        start_time = linux.process_start_time(pid)
        os.close(report_w)
        for fd in [*child_only, *ns_fds.values()]:
            os.close(fd)
        report = read_report(report_r)
        os.close(report_r)
        self.status["created"] = report.get("created", [])
        if "error" in report:
            os.waitpid(pid, 0)
            raise _StartFailed(report["error"])
        self.status.update(pid=pid, start_time=start_time, started_at=time.time())
        write_json(self.status_path, self.status)

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
        now = time.time()
        self.status.update(exit_code=START_ERROR_EXIT_CODE, reason="StartError",
                           message=message, started_at=now, finished_at=now)
        write_json(self.status_path, self.status)
        if self.cgroup:
            self.cgroups.remove(self.cgroup)

    # ---- serve ---------------------------------------------------------------------

    def serve(self) -> None:
        assert self.listener is not None
        self.listener.setblocking(False)
        self._watch(self.listener.fileno(), self._on_accept)
        for fd in self.outputs:
            os.set_blocking(fd, False)
            self._watch(fd, functools.partial(self._read_output, fd))
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)
        self.pidfd = os.pidfd_open(self.pid)
        self._watch(self.pidfd, self._on_exit)
        while True:
            if self.exit_code is not None:
                remaining = self.drain_deadline - time.monotonic()
                if not self.outputs or remaining <= 0:
                    break
                events = self.selector.select(remaining)
            else:
                events = self.selector.select()
            for key, mask in events:
                handler = self.handlers.get(key.fd)
                if handler is not None:
                    handler(mask)
        self._finish()

    def _watch(self, fd: int, handler: Callable[[int], None]) -> None:
        self.handlers[fd] = handler
        self._update(fd)

    def _interest(self, fd: int) -> int:
        events = 0
        if fd in self.outputs or fd in self.clients or fd in (self.pidfd, self._listen_fd()):
            events |= selectors.EVENT_READ
        if fd == self.stdin_fd and self.stdin_pending:
            events |= selectors.EVENT_WRITE
        client = self.clients.get(fd)
        if client is not None and client.outbox:
            events |= selectors.EVENT_WRITE
        return events

    def _listen_fd(self) -> int:
        return self.listener.fileno() if self.listener is not None else -1

    def _update(self, fd: int) -> None:
        events = self._interest(fd)
        registered = fd in self.selector.get_map()
        if events and registered:
            self.selector.modify(fd, events)
        elif events:
            self.selector.register(fd, events)
        elif registered:
            self.selector.unregister(fd)

    def _forget(self, fd: int) -> None:
        self.handlers.pop(fd, None)
        if fd in self.selector.get_map():
            self.selector.unregister(fd)

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

    def _on_accept(self, mask: int) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
        if not protocol.peer_allowed(sock):
            sock.close()
            return
        sock.setblocking(False)
        client = _Client(sock)
        self.clients[sock.fileno()] = client
        self._watch(sock.fileno(), functools.partial(self._on_client, client))

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

    # ---- exit -----------------------------------------------------------------

    def _on_exit(self, mask: int) -> None:
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.exit_code = code if code >= 0 else 128 - code
        self.status["finished_at"] = time.time()
        self.drain_deadline = time.monotonic() + DRAIN_SECONDS
        self._forget(self.pidfd)
        os.close(self.pidfd)
        self.pidfd = -1

    def _finish(self) -> None:
        assert self.exit_code is not None
        for fd in list(self.outputs):
            self._close_output(fd)
        if self.log is not None:
            self.log.close()
        oom = bool(self.cgroup) and self.cgroups.oom_kills(self.cgroup or "") > 0
        if self.cgroup:
            self.cgroups.remove(self.cgroup)
        self.status.update(exit_code=self.exit_code, reason=exit_reason(self.exit_code, oom))
        write_json(self.status_path, self.status)
        goodbye = protocol.frame(protocol.EXIT, protocol.EXIT_PAYLOAD.pack(self.exit_code))
        for client in list(self.clients.values()):
            client.sock.setblocking(True)
            client.sock.settimeout(1.0)
            with contextlib.suppress(OSError):
                client.sock.sendall(bytes(client.outbox) + goodbye)
            client.sock.close()


class _StartFailed(Exception):
    pass


def run_shim(conn: socket.socket, request: dict[str, Any]) -> NoReturn:
    """Runs in a child of the launcher; answers {"pid": N, ...} or {"error": text}."""
    linux.set_process_name("kubi-shim")
    shim = Shim(request)
    try:
        shim.start()
    except BaseException as exc:  # noqa: BLE001 - a failed start is recorded, not raised
        message = str(exc) if isinstance(exc, _StartFailed) else f"starting the shim: {exc}"
        with contextlib.suppress(BaseException):
            shim.record_start_failure(message)
        with contextlib.suppress(OSError):
            conn.sendall(protocol.encode({"error": message}))
        os._exit(0)
    conn.sendall(protocol.encode({"pid": shim.pid, **shim.status}))
    conn.close()
    _quiet_stdio()
    shim.serve()
    os._exit(0)


def _quiet_stdio() -> None:
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)

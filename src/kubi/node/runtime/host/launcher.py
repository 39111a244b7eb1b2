"""The launcher: a small fork server that starts holders, shims and execs.

Starting a Python process costs ~15 ms of CPU; forking this one, which has
already imported everything, costs under 1 ms, and pods start many at once.
The launcher is single-threaded (so forking it is safe, unlike forking the
agent's threaded event loop), runs in its own session, and is a child
subreaper: holders' pod PID 1s and orphaned shims are re-parented to it and
reaped here, which matters where the machine's init does not reap. It
outlives the agent on purpose; a restarted runtime reconnects to it by its
socket name. Requests: one JSON line per connection (see protocol.py), the
forked child answering on the same connection.

Run as `python -m kubi.node.runtime.host.launcher <state dir>`.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any, NoReturn

from kubi.node.runtime.host import linux, protocol
from kubi.node.runtime.host.execproc import run_exec
from kubi.node.runtime.host.holder import run_holder
from kubi.node.runtime.host.shim import run_shim
from kubi.node.runtime.host.state import write_json


class Launcher:
    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(protocol.launcher_address(state_dir))
        self.listener.listen(512)
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.running = True

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wakeup_w)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        selector.register(self.wakeup_r, selectors.EVENT_READ)
        while self.running:
            for key, _ in selector.select():
                if key.fd == self.wakeup_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup_r, 4096)
                    self._reap()
                else:
                    self._accept()
        self._kill_children()
        self._reap()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.running = False

    def _reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def _kill_children(self) -> None:
        """On shutdown nothing we started may stay: holders and shims are killed
        (the runtime has normally stopped them already)."""
        own = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2:].split()[1]) == own:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry), signal.SIGKILL)

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        fds: list[int] = []
        try:
            if not protocol.peer_allowed(conn):
                return
            conn.settimeout(5.0)
            line, fds = protocol.read_line(conn)
            request = json.loads(line)
            op = request.get("op")
            if op == "ping":
                conn.sendall(protocol.encode({"pid": os.getpid()}))
            elif op == "shutdown":
                self.running = False
                conn.sendall(protocol.encode({"ok": True}))
            elif op in ("holder", "shim", "exec"):
                conn.settimeout(None)
                self._fork(conn, request, fds)
            else:
                conn.sendall(protocol.encode({"error": f"unknown request {op!r}"}))
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                conn.sendall(protocol.encode({"error": f"bad request: {exc}"}))
        finally:
            conn.close()
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _fork(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        pid = os.fork()
        if pid != 0:
            return
        try:
            self._become_worker()
            if request["op"] == "holder":
                run_holder(conn, request)
            elif request["op"] == "shim":
                run_shim(conn, request)
            else:
                run_exec(conn, request, fds)
        finally:
            os._exit(1)

    def _become_worker(self) -> None:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        self.listener.close()
        os.close(self.wakeup_r)
        os.close(self.wakeup_w)


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    state_dir = args[0]
    linux.set_process_name("kubi-launcher")
    linux.become_subreaper()
    launcher = Launcher(state_dir)
    write_json(os.path.join(state_dir, "launcher.json"),
               {"pid": os.getpid(), "start_time": linux.process_start_time(os.getpid())})
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    launcher.serve()
    os._exit(0)


if __name__ == "__main__":
    main()

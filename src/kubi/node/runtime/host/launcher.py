"""The launcher: a small fork server that starts sandbox holders and execs.

Starting a Python process costs ~15 ms of CPU; forking this one, which has
already imported everything, costs under 1 ms, and pods start many at once.
The launcher is single-threaded (so forking it is safe, unlike forking the
agent's threaded event loop), runs in its own session, and is a child
subreaper: orphans are re-parented to it and reaped here, which matters
where the machine's init does not reap. It outlives the agent on
purpose; a restarted runtime reconnects to it by its socket name. Requests:
one JSON line per connection (see protocol.py), the forked child answering
on the same connection. Holders ask on a socket of their own (the
runtime uses it when pods get namespaces): each is forked straight into a
new PID namespace, the launcher unsharing CLONE_NEWPID for that one fork
and returning to its own namespace right after, which saves the
intermediate process a holder would otherwise need to become its pod's
PID 1. The launcher itself only accepts and forks; the child reads the
request and answers (a ping with the launcher's pid; a shutdown by
signalling it).

Its objects are frozen out of the garbage collector once everything is
imported: a collection in a fork would otherwise write to (and so copy)
every page of the heap it shares with the launcher.

Run as `python -m kubi.node.runtime.host.launcher <state dir> @<address>
@<holder address>` (abstract socket names, see protocol.launcher_address).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any, NoReturn

from kubi.node.runtime.host import cgroups, linux, protocol
from kubi.node.runtime.host.execproc import run_exec
from kubi.node.runtime.host.holder import run_holder, wants_pid_namespace
from kubi.node.runtime.host.state import write_json


class Launcher:
    def __init__(self, state_dir: str, address: str, holder_address: str) -> None:
        self.state_dir = state_dir
        self.listener = _listen(address)
        # Holders connect here: each is forked into a new PID namespace.
        self.holders = _listen(holder_address)
        self.wakeup_r, self.wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.selector = selectors.DefaultSelector()
        self.running = True

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wakeup_w)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        selector = self.selector
        selector.register(self.listener, selectors.EVENT_READ)
        selector.register(self.holders, selectors.EVENT_READ)
        selector.register(self.wakeup_r, selectors.EVENT_READ)
        while self.running:
            for key, _ in selector.select():
                if key.fd == self.wakeup_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wakeup_r, 4096)
                    self._reap()
                else:
                    self._accept(key.fileobj is self.holders)
        self._kill_children()
        self._reap()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.running = False

    def _reap(self) -> None:
        for _ in linux.reaped():
            pass

    def _kill_children(self) -> None:
        """On shutdown nothing we started may stay: holders, and with them
        their pods, are killed (the runtime has normally stopped them already)."""
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

    def _accept(self, holder: bool) -> None:
        """Accept one connection and fork its worker; nothing more happens here.

        Every page this process writes after a fork is copied, so reading and
        parsing the request is left to the child, which pays that anyway."""
        listener = self.holders if holder else self.listener
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        if holder:
            linux.unshare(linux.CLONE_NEWPID)
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid != 0:
            if holder:
                linux.setns(self.pid_namespace, linux.CLONE_NEWPID)
            conn.close()
            return
        try:
            self._become_worker()
            self._work(conn, holder)
        finally:
            os._exit(1)

    def _work(self, conn: socket.socket, holder: bool) -> None:
        """In the forked child: read the request and act on it."""
        if not protocol.peer_allowed(conn):
            return
        fds: list[int] = []
        try:
            conn.settimeout(5.0)
            # Holders are sent no descriptors.
            line, fds = protocol.read_line(conn, with_fds=not holder)
            request = json.loads(line)
            op = request.get("op")
            conn.settimeout(None)
            if (op == "holder" and wants_pid_namespace(request)) != holder:
                raise ValueError(f"{op!r} is not for this socket")
            if op == "ping":
                conn.sendall(protocol.encode({"pid": os.getppid()}))
            elif op == "shutdown":
                os.kill(os.getppid(), signal.SIGTERM)
                conn.sendall(protocol.encode({"ok": True}))
            elif op == "holder":
                run_holder(conn, request)
            elif op == "exec":
                run_exec(conn, request, fds)
            else:
                conn.sendall(protocol.encode({"error": f"unknown request {op!r}"}))
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                conn.sendall(protocol.encode({"error": f"bad request: {exc}"}))

    def _become_worker(self) -> None:
        """Drop what only the launcher uses. Descriptors are closed by number:
        closing the objects would free and rewrite their memory, which in a
        fork is memory to copy first."""
        signal.set_wakeup_fd(-1)
        linux.default_signals(signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        for fd in (self.selector.fileno(), self.listener.detach(), self.holders.detach(),
                   self.wakeup_r, self.wakeup_w, self.pid_namespace):
            os.close(fd)


def _abstract(name: str) -> str:
    """An abstract socket address from its name as written on the command line,
    where the leading NUL it starts with cannot appear."""
    return "\0" + name.removeprefix("@")


def _listen(address: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(address)
    listener.listen(512)
    return listener


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    # The socket names are the runtime's to choose (protocol.launcher_address).
    state_dir, address, holder_address = args[0], _abstract(args[1]), _abstract(args[2])
    linux.set_process_name("kubi-launcher")
    linux.become_subreaper()
    # Every holder and container inherits the mask; containers must start without one.
    linux.unblock_signals()
    launcher = Launcher(state_dir, address, holder_address)
    cgroups.hierarchies()
    gc.freeze()
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

"""Running a command inside a running container (the launcher's side of exec).

A child of the launcher opens the namespaces of the container's process
(mount included, so the command sees the container's volumes), enters its
PID namespace for its children, and forks the command, which joins the
container's cgroups and execs with the stdio fds the runtime sent. The
child answers on the runtime's connection: first {"started": ...} or
{"error": ...}, later {"exit_code": N}. If the runtime hangs up first, the
command is killed: an exec never outlives its session.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
from typing import Any, NoReturn

from kubi.node.runtime.host import linux
from kubi.node.runtime.host.container import ProcessSpec, read_report, setup_and_exec
from kubi.node.runtime.host.protocol import encode


def run_exec(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> NoReturn:
    linux.set_process_name("kubi-exec")
    try:
        pid = _start(request, fds)
    except BaseException as exc:  # noqa: BLE001 - reported to the runtime, which raises
        with contextlib.suppress(OSError):
            conn.sendall(encode({"error": str(exc)}))
        os._exit(0)
    conn.sendall(encode({"started": True}))
    code = _wait(conn, pid)
    with contextlib.suppress(OSError):
        conn.sendall(encode({"exit_code": code}))
    os._exit(0)


class _ExecFailed(Exception):
    pass


def _start(request: dict[str, Any], fds: list[int]) -> int:
    spec = ProcessSpec.from_json(request["process"])
    target = request["target"]
    names = list(spec.join) + (["pid"] if request.get("pid_ns") else [])
    ns_fds = linux.open_namespaces(target["pid"], target["start_time"], names) if names else {}
    if "pid" in ns_fds:
        linux.setns(ns_fds["pid"], linux.CLONE_NEWPID)
    stdio = (fds[0], fds[1], fds[2]) if len(fds) >= 3 else (fds[0], fds[0], fds[0])
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        setup_and_exec(spec, ns_fds, stdio, report_w)
    os.close(report_w)
    for fd in [*fds, *ns_fds.values()]:
        os.close(fd)
    report = read_report(report_r)
    os.close(report_r)
    if "error" in report:
        os.waitpid(pid, 0)
        raise _ExecFailed(report["error"])
    return pid


def _wait(conn: socket.socket, pid: int) -> int:
    pidfd = os.pidfd_open(pid)
    selector = selectors.DefaultSelector()
    selector.register(pidfd, selectors.EVENT_READ)
    selector.register(conn, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fd == pidfd:
                _, status = os.waitpid(pid, 0)
                code = os.waitstatus_to_exitcode(status)
                return code if code >= 0 else 128 - code
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if not data:
                # The session is gone: so is the command.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                selector.unregister(conn)

"""The runtime's side of the launcher and of the pods' shims.

`ensure_running` finds a launcher already serving this state directory (one
left running by a previous agent) or starts one and waits for its "ready".
Each request is a fresh connection to the abstract socket (holders that
need a PID namespace of their own go to the launcher's second one); file
descriptors ride along with the request line when given. A pod's shim (its
sandbox holder) takes container starts and exit watches on a socket of its
own: `shim_start` and `shim_watch` return the connection, which the shim
closes once the container's exit is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

import kubi
from kubi.node.runtime.base import RuntimeError_
from kubi.node.runtime.host import linux
from kubi.node.runtime.host.holder import wants_pid_namespace
from kubi.node.runtime.host.protocol import holder_address, launcher_address, pod_address
from kubi.node.runtime.host.state import read_json

START_TIMEOUT = 15.0


def _encode(request: dict[str, Any]) -> bytes:
    """A request line as protocol.encode writes it, with orjson: this side is
    the agent's process (the launcher's, whose forks pay for each module it
    loads, keeps to the standard library)."""
    return orjson.dumps(request) + b"\n"


class LauncherClient:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.address = launcher_address(str(state_dir))
        self.holder_address = holder_address(str(state_dir))
        self._process: subprocess.Popen[bytes] | None = None

    async def ensure_running(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            self._process = None
        if await self._ping():
            return
        await self._spawn()

    async def _ping(self) -> bool:
        try:
            await self.call({"op": "ping"})
        except (OSError, RuntimeError_):
            return False
        return True

    def _start_process(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        source_root = str(Path(kubi.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (source_root, env.get("PYTHONPATH", "")) if p)
        with open(self.state_dir / "launcher.log", "ab") as log:
            # -S: no site-packages (it needs none), a smaller process to fork.
            return subprocess.Popen(
                [sys.executable, "-S", "-m", "kubi.node.runtime.host.launcher",
                 str(self.state_dir), "@" + self.address[1:], "@" + self.holder_address[1:]],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True, env=env, close_fds=True, cwd="/")

    async def _spawn(self) -> None:
        process = self._process = self._start_process()
        assert process.stdout is not None
        loop = asyncio.get_running_loop()
        try:
            line = await asyncio.wait_for(loop.run_in_executor(None, process.stdout.readline),
                                          START_TIMEOUT)
        except TimeoutError:
            line = b""
        process.stdout.close()
        if line.strip() != b"ready":
            process.kill()
            await asyncio.to_thread(process.wait)
            self._process = None
            raise RuntimeError_(f"the host runtime's launcher did not start; see "
                                f"{self.state_dir / 'launcher.log'}")

    async def connect(self, request: dict[str, Any], fds: list[int] | None = None
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await self._send(request, fds)
        return await asyncio.open_unix_connection(sock=sock, limit=1 << 20)

    async def _send(self, request: dict[str, Any], fds: list[int] | None) -> socket.socket:
        """A connection to the launcher that has taken `request`."""
        try:
            return await self._connect(request, fds)
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            # Nothing was taken in: safe to send again, to a new launcher.
            if request.get("op") in ("ping", "shutdown"):
                raise
        # The launcher is gone (killed, or the machine restarted): start another.
        await self.ensure_running()
        return await self._connect(request, fds)

    async def _connect(self, request: dict[str, Any], fds: list[int] | None) -> socket.socket:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        in_pid_namespace = request.get("op") == "holder" and wants_pid_namespace(request)
        try:
            await loop.sock_connect(
                sock, self.holder_address if in_pid_namespace else self.address)
            data = _encode(request)
            if fds:
                # A fresh connection's buffer takes a request line at once.
                socket.send_fds(sock, [data], fds)
            else:
                await loop.sock_sendall(sock, data)
        except BaseException:
            sock.close()
            raise
        return sock

    async def call(self, request: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        """Send one request and read its one-line answer (straight from the
        socket: pods start many at once, and streams cost more per call)."""
        sock = await self._send(request, fds)
        try:
            line = await _read_line(sock)
        finally:
            sock.close()
        if not line:
            raise RuntimeError_(f"the host runtime's launcher gave no answer to {request['op']}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the launcher (its holders and shims must be gone already)."""
        record = read_json(self.state_dir / "launcher.json") or {}
        with contextlib.suppress(OSError, RuntimeError_):
            await self.call({"op": "shutdown"})
        deadline = time.monotonic() + timeout
        pid, start = record.get("pid"), record.get("start_time")
        while linux.process_alive(pid, start) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self._process.wait,
                                        max(0.0, deadline - time.monotonic()))
            self._process = None
        elif pid:
            # Started by an earlier runtime in this process: reap it if it is our child.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 - WNOHANG returns at once
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "launcher.json").unlink()


async def _shim_connection(sandbox_id: str, request: dict[str, Any]) -> socket.socket:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, pod_address(sandbox_id))
        await loop.sock_sendall(sock, _encode(request))
    except BaseException:
        sock.close()
        raise
    return sock


async def _read_line(sock: socket.socket) -> bytes:
    """Read until a newline or the end of the stream; the answers read this
    way are single lines, nothing follows them."""
    loop = asyncio.get_running_loop()
    data = b""
    while not data.endswith(b"\n"):
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            break
        data += chunk
    return data


async def shim_start(sandbox_id: str, request: dict[str, Any]
                     ) -> tuple[socket.socket, dict[str, Any]]:
    """Ask the pod's shim to start a container: its answer, and the connection
    it hangs up once the container's exit is recorded."""
    sock = await _shim_connection(sandbox_id, request)
    try:
        data = await _read_line(sock)
    except BaseException:
        sock.close()
        raise
    reply: dict[str, Any] = (json.loads(data) if data
                             else {"error": "the pod's shim gave no answer"})
    return sock, reply


async def shim_watch(sandbox_id: str, container_id: str) -> socket.socket:
    """A connection the pod's shim hangs up once the container's exit is
    recorded (at once when it is already, or when the shim does not know it)."""
    return await _shim_connection(sandbox_id, {"op": "watch", "container_id": container_id})

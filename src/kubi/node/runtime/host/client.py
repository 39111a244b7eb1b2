"""The runtime's side of the launcher: start it once, then send it requests.

`ensure_running` finds a launcher already serving this state directory (one
left running by a previous agent) or starts one and waits for its "ready".
Each request is a fresh connection to the abstract socket; file descriptors
ride along with the request line when given.
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

import kubi
from kubi.node.runtime.base import RuntimeError_
from kubi.node.runtime.host import linux
from kubi.node.runtime.host.protocol import encode, launcher_address
from kubi.node.runtime.host.state import read_json

START_TIMEOUT = 15.0


class LauncherClient:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.address = launcher_address(str(state_dir))
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
            return subprocess.Popen(
                [sys.executable, "-m", "kubi.node.runtime.host.launcher", str(self.state_dir)],
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
        try:
            return await self._connect(request, fds)
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            # Nothing was taken in: safe to send again, to a new launcher.
            if request.get("op") in ("ping", "shutdown"):
                raise
        # The launcher is gone (killed, or the machine restarted): start another.
        await self.ensure_running()
        return await self._connect(request, fds)

    async def _connect(self, request: dict[str, Any], fds: list[int] | None
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, self.address)
            data = encode(request)
            if fds:
                # A fresh connection's buffer takes a request line at once.
                socket.send_fds(sock, [data], fds)
            else:
                await loop.sock_sendall(sock, data)
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_unix_connection(sock=sock, limit=1 << 20)

    async def call(self, request: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        reader, writer = await self.connect(request, fds)
        try:
            line = await reader.readline()
        finally:
            writer.close()
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

"""An in-memory `Runtime` for the node agent's tests, and a check of its own behaviour.

`FakeRuntime` keeps sandboxes and containers in dicts and runs no process.
A container's argv is a tiny script: `["run"]` (or anything unknown) runs
until stopped, `["exit", "N"]` exits with N at once, `["exit-after", "S",
"N"]` exits with N after S seconds. Starting writes one CRI log line to the
container's log path. exec answers `true`, `false`, `echo ...`, `exit N` and
`cat` (which echoes stdin back); `exec_handler` can replace that.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubi.node.runtime.base import (
    CREATED,
    EXITED,
    RUNNING,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    ContainerConfig,
    ContainerStatus,
    RuntimeError_,
    SandboxConfig,
    SandboxStatus,
)


def cri_line(text: str, stream: str = "stdout", when: float | None = None) -> str:
    stamp = dt.datetime.fromtimestamp(when or time.time(), dt.UTC)
    return f"{stamp.strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z {stream} F {text}\n"


def append(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(text)


class FakeSession:
    def __init__(self, code: int, output: bytes, *, echo_stdin: bool = False) -> None:
        self.code = code
        self.out: asyncio.Queue[bytes] = asyncio.Queue()
        self.echo = echo_stdin
        self.closed = False
        self.resized: list[tuple[int, int]] = []
        self.stdin: list[bytes] = []
        self._done = asyncio.Event()
        if output:
            self.out.put_nowait(output)
        if not echo_stdin:
            self.out.put_nowait(b"")
            self._done.set()

    async def write_stdin(self, data: bytes) -> None:
        self.stdin.append(data)
        if self.echo:
            self.out.put_nowait(data)

    async def close_stdin(self) -> None:
        if self.echo:
            self.out.put_nowait(b"")
            self._done.set()

    async def read_stdout(self) -> bytes:
        return await self.out.get()

    async def read_stderr(self) -> bytes:
        return b""

    async def resize(self, width: int, height: int) -> None:
        self.resized.append((width, height))

    async def wait(self) -> int:
        await self._done.wait()
        return self.code

    async def close(self) -> None:
        self.closed = True
        self._done.set()
        self.out.put_nowait(b"")


@dataclass
class _Container:
    status: ContainerStatus
    config: ContainerConfig
    timer: asyncio.TimerHandle | None = None


@dataclass
class _Sandbox:
    status: SandboxStatus
    config: SandboxConfig
    containers: list[str] = field(default_factory=list)


def default_exec(argv: list[str]) -> tuple[int, bytes]:
    if not argv:
        return 1, b""
    if argv[0] == "true":
        return 0, b""
    if argv[0] == "false":
        return 1, b"false says no\n"
    if argv[0] == "echo":
        return 0, (" ".join(argv[1:]) + "\n").encode()
    if argv[0] == "exit":
        return int(argv[1]), b""
    return 0, b""


class FakeRuntime:
    handler = "host"

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 stop_exit_code: int = 143) -> None:
        self.clock = clock
        self.stop_exit_code = stop_exit_code
        self.sandboxes: dict[str, _Sandbox] = {}
        self.containers: dict[str, _Container] = {}
        self.exec_handler: Callable[[list[str]], tuple[int, bytes]] = default_exec
        self.fail_create: dict[str, str] = {}
        self.stops: list[tuple[str, float]] = []
        # Containers whose process ignores SIGTERM: a stop waits out its timeout,
        # scaled by `time_scale` so tests stay fast.
        self.ignore_term: set[str] = set()
        self.time_scale = 0.05
        self.started = False
        self.closed = False
        self.sessions: list[FakeSession] = []
        self._ids = itertools.count(1)
        self._ips = itertools.count(2)
        self.sandbox_runs = 0

    # ---- lifecycle

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True
        for c in self.containers.values():
            if c.timer is not None:
                c.timer.cancel()

    # ---- sandboxes

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        self.sandbox_runs += 1
        sid = f"sb{next(self._ids):04d}"
        ip = "" if config.host_network else f"10.42.0.{next(self._ips)}"
        self.sandboxes[sid] = _Sandbox(SandboxStatus(
            id=sid, name=config.name, namespace=config.namespace, uid=config.uid,
            state=SANDBOX_READY, ip=ip or "192.0.2.10", created_at=self.clock(),
            labels=dict(config.labels)), config)
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self.sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        for cid in sandbox.containers:
            if self.containers[cid].status.state == RUNNING:
                self._exit(cid, 137, "Error")
        sandbox.status.state = SANDBOX_NOTREADY

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sandbox = self.sandboxes.pop(sandbox_id, None)
        if sandbox is not None:
            for cid in sandbox.containers:
                self.containers.pop(cid, None)

    async def pod_sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self.sandboxes[sandbox_id].status

    async def list_pod_sandboxes(self) -> list[SandboxStatus]:
        return [s.status for s in self.sandboxes.values()]

    # ---- containers

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        if config.name in self.fail_create:
            raise RuntimeError_(self.fail_create[config.name], "CreateContainerError")
        if sandbox_id not in self.sandboxes:
            raise RuntimeError_(f"sandbox {sandbox_id} not found")
        cid = f"c{next(self._ids):06d}"
        self.containers[cid] = _Container(ContainerStatus(
            id=cid, sandbox_id=sandbox_id, name=config.name, state=CREATED,
            attempt=config.attempt, image=config.image, created_at=self.clock(),
            log_path=config.log_path, labels=dict(config.labels)), config)
        self.sandboxes[sandbox_id].containers.append(cid)
        return cid

    async def start_container(self, container_id: str) -> None:
        c = self.containers[container_id]
        c.status.state = RUNNING
        c.status.started_at = self.clock()
        c.status.pid = 1000 + len(self.containers)
        if c.config.log_path:
            append(c.config.log_path, cri_line(f"{c.config.name} attempt {c.config.attempt} "
                                               "started"))
        argv = c.config.argv
        loop = asyncio.get_running_loop()
        if argv[:1] == ["exit"]:
            code = int(argv[1]) if len(argv) > 1 else 0
            c.timer = loop.call_soon(self._exit, container_id, code)
        elif argv[:1] == ["exit-after"]:
            code = int(argv[2]) if len(argv) > 2 else 0
            c.timer = loop.call_later(float(argv[1]), self._exit, container_id, code)

    def _exit(self, container_id: str, code: int, reason: str | None = None) -> None:
        c = self.containers.get(container_id)
        if c is None or c.status.state != RUNNING:
            return
        c.status.state = EXITED
        c.status.exit_code = code
        c.status.finished_at = self.clock()
        c.status.reason = reason or ("Completed" if code == 0 else "Error")
        c.status.pid = None

    def crash(self, container_id: str, code: int = 1) -> None:
        """Make a running container exit now, as if its process died."""
        self._exit(container_id, code)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        self.stops.append((container_id, timeout))
        c = self.containers.get(container_id)
        if c is None:
            return
        if c.status.name in self.ignore_term and c.status.state == RUNNING:
            await asyncio.sleep(timeout * self.time_scale)
        if c.timer is not None:
            c.timer.cancel()
        if c.status.state == RUNNING:
            self._exit(container_id, self.stop_exit_code)
        elif c.status.state == CREATED:
            c.status.state = EXITED
            c.status.exit_code = 0
            c.status.finished_at = self.clock()

    async def remove_container(self, container_id: str) -> None:
        c = self.containers.pop(container_id, None)
        if c is not None:
            sandbox = self.sandboxes.get(c.status.sandbox_id)
            if sandbox is not None and container_id in sandbox.containers:
                sandbox.containers.remove(container_id)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self.containers[container_id].status

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c.status for c in self.containers.values()
                if sandbox_id is None or c.status.sandbox_id == sandbox_id]

    # ---- streams

    async def exec(self, container_id: str, argv: list[str], *, tty: bool,
                   stdin: bool) -> FakeSession:
        if self.containers[container_id].status.state != RUNNING:
            raise RuntimeError_("container is not running")
        if argv[:1] == ["cat"]:
            session = FakeSession(0, b"", echo_stdin=True)
        else:
            code, output = self.exec_handler(argv)
            session = FakeSession(code, output)
        self.sessions.append(session)
        return session

    async def attach(self, container_id: str, *, tty: bool, stdin: bool) -> FakeSession:
        session = FakeSession(0, b"attached\n")
        self.sessions.append(session)
        return session

    async def port_forward(self, sandbox_id: str, port: int) -> Any:
        raise NotImplementedError

    # ---- helpers for tests

    def running(self, name: str | None = None) -> list[ContainerStatus]:
        return [c.status for c in self.containers.values()
                if c.status.state == RUNNING and (name is None or c.status.name == name)]

    def by_name(self, name: str) -> list[ContainerStatus]:
        return sorted((c.status for c in self.containers.values() if c.status.name == name),
                      key=lambda s: s.attempt)


async def test_fake_runtime_runs_and_exits(tmp_path: Any) -> None:
    rt = FakeRuntime()
    sid = await rt.run_pod_sandbox(SandboxConfig("p", "default", "u1", "p", "", ""))
    cid = await rt.create_container(sid, ContainerConfig(
        "c", "busybox", ["exit", "3"], log_path=str(tmp_path / "c" / "0.log")))
    await rt.start_container(cid)
    await asyncio.sleep(0.01)
    status = await rt.container_status(cid)
    assert (status.state, status.exit_code, status.reason) == (EXITED, 3, "Error")
    assert "attempt 0 started" in (tmp_path / "c" / "0.log").read_text()

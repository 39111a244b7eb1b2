"""The load-generating client: worker processes driven over pipes.

Each worker process holds one aiohttp session (one TCPConnector limited to its
share of the concurrency, TLS with the kubeconfig's client certificate) and
runs phases on command: a phase is up to `count` requests of one kind, shared
by the worker's client tasks, starting at an agreed monotonic instant and
stopping early at a time cap. CLOCK_MONOTONIC is system-wide on Linux, so
several workers' results add up to one measurement, and watch events received
in a worker can be timed against creates sent by the parent. Workers return
raw latencies and their own CPU time; aggregation happens in the parent.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import orjson

CREATE, GET, LIST = "create", "get", "list"
PAYLOAD = "x" * 1024
LIST_LIMIT = 500


@dataclass(frozen=True)
class Phase:
    op: str
    namespace: str
    count: int
    seconds: float
    prefix: str = "cm"


@dataclass
class WorkerResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    finished: float = 0.0
    cpu: float = 0.0


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"payload": PAYLOAD}}


def collection_path(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps"


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def new_session(ssl_context: Any, limit: int, *, read_timeout: float | None = 60) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Accept": "application/json", "User-Agent": "kubi-bench"},
        connector=aiohttp.TCPConnector(ssl=ssl_context, limit=limit, keepalive_timeout=300),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout),
    )


async def warm_up(session: aiohttp.ClientSession, base: str, connections: int) -> None:
    """Open the pool's connections, so TLS handshakes stay out of the measurement."""

    async def touch() -> None:
        async with session.get(base + "/readyz") as resp:
            await resp.read()

    await asyncio.gather(*(touch() for _ in range(connections)))


async def run_phase(session: aiohttp.ClientSession, base: str, phase: Phase, *,
                    concurrency: int, start_at: float, indices: range,
                    created: list[str]) -> WorkerResult:
    """Run this worker's share of a phase; names it creates are appended to `created`."""
    result = WorkerResult()
    collection = base + collection_path(phase.namespace)
    json_headers = {"Content-Type": "application/json"}
    pending = iter(indices)
    existing = list(created)
    deadline = start_at + phase.seconds

    async def one(i: int) -> None:
        if phase.op == CREATE:
            name = f"{phase.prefix}-{i}"
            body = orjson.dumps(configmap(name))
            sent = time.monotonic()
            async with session.post(collection, data=body, headers=json_headers) as resp:
                await resp.read()
                status, expect = resp.status, 201
            if status == expect:
                created.append(name)
        elif phase.op == GET:
            name = existing[i % len(existing)] if existing else "missing"
            sent = time.monotonic()
            async with session.get(f"{collection}/{name}") as resp:
                await resp.read()
                status, expect = resp.status, 200
        else:
            sent = time.monotonic()
            async with session.get(collection, params={"limit": str(LIST_LIMIT)}) as resp:
                await resp.read()
                status, expect = resp.status, 200
        if status == expect:
            result.latencies.append(time.monotonic() - sent)
        else:
            result.errors += 1
            result.first_error = result.first_error or f"HTTP {status} on {phase.op}"

    async def client() -> None:
        for i in pending:
            if time.monotonic() > deadline:
                return
            try:
                await one(i)
            except (TimeoutError, aiohttp.ClientError) as exc:
                result.errors += 1
                result.first_error = result.first_error or f"{type(exc).__name__}: {exc}"

    if phase.op == CREATE:
        created.clear()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    cpu = process_cpu()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.finished = time.monotonic()
    result.cpu = process_cpu() - cpu
    return result


async def watch_events(session: aiohttp.ClientSession, url: str, *, watchers: int,
                       expected: int, deadline: float,
                       on_ready: Callable[[], None]) -> list[list[tuple[str, float]]]:
    """Open `watchers` watches, call `on_ready`, then record (name, arrival) per event."""
    # A server that held back response headers until the first event would
    # otherwise leave the parent waiting for "ready" forever.
    responses = await asyncio.wait_for(
        asyncio.gather(*(session.get(url) for _ in range(watchers))), timeout=15)
    for resp in responses:
        if resp.status != 200:
            raise RuntimeError(f"watch answered HTTP {resp.status}: {(await resp.text())[:300]}")
    received: list[list[tuple[str, float]]] = [[] for _ in responses]
    on_ready()

    async def follow(resp: aiohttp.ClientResponse, into: list[tuple[str, float]]) -> None:
        while len(into) < expected:
            line = await resp.content.readline()
            if not line:
                return
            arrived = time.monotonic()
            event = orjson.loads(line)
            into.append((event["object"]["metadata"]["name"], arrived))

    try:
        await asyncio.wait_for(
            asyncio.gather(*(follow(r, into) for r, into in zip(responses, received))),
            timeout=max(0.1, deadline - time.monotonic()))
    except TimeoutError:
        pass
    finally:
        for resp in responses:
            resp.close()
    return received


# ------------------------------------------------------------------ worker process

class WorkerError(RuntimeError):
    """A client worker could not carry out a command."""


@dataclass(frozen=True)
class WorkerFailure:
    """Sent instead of a reply when a command raised in the worker."""

    error: str


def _worker_main(conn: Connection, kubeconfig: str) -> None:
    from apibench.servers import run_loop

    run_loop(_serve_commands(conn, Path(kubeconfig)))


async def _serve_commands(conn: Connection, kubeconfig: Path) -> None:
    from kubi.client.client import KubeConfig

    ssl_context = KubeConfig.load(kubeconfig).ssl_context()
    loop = asyncio.get_running_loop()
    session: aiohttp.ClientSession | None = None
    base = ""
    created: list[str] = []
    try:
        while True:
            command, args = await loop.run_in_executor(None, conn.recv)
            if command == "stop":
                return
            try:
                session, base = await _execute(conn, command, args, ssl_context, session,
                                               base, created)
            except Exception as exc:  # noqa: BLE001 - the parent must hear of it, not wait forever
                conn.send(WorkerFailure(f"{command}: {type(exc).__name__}: {exc}"))
    finally:
        if session is not None:
            await session.close()


async def _execute(conn: Connection, command: str, args: Any, ssl_context: Any,
                   session: aiohttp.ClientSession | None, base: str,
                   created: list[str]) -> tuple[aiohttp.ClientSession | None, str]:
    if command == "open":
        if session is not None:
            await session.close()
        base, limit = args
        session = new_session(ssl_context, limit)
        await warm_up(session, base, limit)
        conn.send(None)
    elif command == "run":
        phase, concurrency, start_at, indices = args
        assert session is not None, "run before open"
        conn.send(await run_phase(session, base, phase, concurrency=concurrency,
                                  start_at=start_at, indices=indices, created=created))
    elif command == "watch":
        url, watchers, expected, seconds = args
        cpu = process_cpu()
        async with new_session(ssl_context, watchers, read_timeout=None) as watching:
            received = await watch_events(
                watching, url, watchers=watchers, expected=expected,
                deadline=time.monotonic() + seconds, on_ready=lambda: conn.send("ready"))
        conn.send((received, process_cpu() - cpu))
    return session, base


class WorkerPool:
    """Client worker processes, started once and reused by every phase."""

    def __init__(self, size: int, kubeconfig: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs = []
        for n in range(size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child, str(kubeconfig)),
                               name=f"bench-client-{n}", daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)

    @property
    def size(self) -> int:
        return len(self._procs)

    def _recv(self, n: int) -> Any:
        reply = self._conns[n].recv()
        if isinstance(reply, WorkerFailure):
            raise WorkerError(f"client worker {n} failed: {reply.error}")
        return reply

    def _ask(self, procs: int, command: str, args_for: Callable[[int], Any]) -> list[Any]:
        for n in range(procs):
            self._conns[n].send((command, args_for(n)))
        return [self._recv(n) for n in range(procs)]

    def open(self, base: str, concurrency: int, procs: int) -> None:
        """Give the first `procs` workers a fresh, warm pool of concurrency/procs connections."""
        self._ask(procs, "open", lambda n: (base, concurrency // procs))

    def run(self, phase: Phase, concurrency: int, procs: int) -> tuple[float, list[WorkerResult]]:
        """Run a phase split over `procs` workers; return its start instant and the results."""
        start_at = time.monotonic() + 0.1
        share = concurrency // procs
        return start_at, self._ask(procs, "run", lambda n: (
            phase, share, start_at, range(n, phase.count, procs)))

    def watch(self, url: str, *, watchers: int, expected: int, seconds: float,
              while_watching: Callable[[], None]) -> tuple[list[list[tuple[str, float]]], float]:
        """Spread `watchers` (on the absolute `url`) over the workers; run `while_watching`
        once all are open; return each watcher's (name, arrival) list and the CPU
        seconds the workers spent."""
        procs = self.size
        for n in range(procs):
            share = watchers // procs + (1 if n < watchers % procs else 0)
            self._conns[n].send(("watch", (url, share, expected, seconds)))
        for n in range(procs):
            self._recv(n)
        while_watching()
        received: list[list[tuple[str, float]]] = []
        cpu = 0.0
        for n in range(procs):
            events, spent = self._recv(n)
            received.extend(events)
            cpu += spent
        return received, cpu

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(("stop", None))
            except OSError:
                pass
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()

"""The processes under test: `kubi up` and the bare aiohttp TLS floor server.

`KubiProcess` starts `python -m kubi up` on a private data dir and port, times
start to the first 200 on /readyz (polled over TLS every few milliseconds),
reads its RSS and CPU time from /proc, and stops it by SIGTERM of the PID it
started, escalating to SIGKILL after a deadline. The floor server answers a
fixed 201 to POST and 200 to anything else with the same certificate, client
certificate verification and event loop kubi uses, so the difference between
the two is what kubi does per request, not TLS or HTTP parsing.
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

READY_POLL_INTERVAL = 0.004
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerError(RuntimeError):
    """A server under test could not be started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ServerError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces and parentheses: count fields after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time all cores have spent not idle since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user).
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


def readyz_ok(port: int, context: ssl.SSLContext) -> bool:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=1.0)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _unverified_context() -> ssl.SSLContext:
    # The CA does not exist until kubi has started, and /readyz is public.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class KubiProcess:
    """One `kubi up` subprocess, owned by the benchmark from start to stop."""

    def __init__(self, data_dir: Path, port: int, *, command: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.kubeconfig = data_dir / "kubeconfig.yaml"
        self.log_path = data_dir.parent / f"kubi-{port}.log"
        self._command = command or [sys.executable, "-m", "kubi"]
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ServerError("kubi is not running")
        return self._proc.pid

    def start(self, timeout: float = 30.0) -> float:
        """Start kubi; return the seconds from spawn to the first 200 on /readyz."""
        argv = [*self._command, "up", "--data-dir", str(self.data_dir),
                "--port", str(self.port), "--bind-address", "127.0.0.1"]
        context = _unverified_context()
        with open(self.log_path, "ab") as log:
            started = time.monotonic()
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          env=self._env, start_new_session=True)
        deadline = started + timeout
        while not readyz_ok(self.port, context):
            if self._proc.poll() is not None:
                raise ServerError(f"kubi up exited with {self._proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"kubi was not ready within {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(READY_POLL_INTERVAL)
        ready = time.monotonic() - started
        # The admin kubeconfig is written just after the listener opens.
        while not self.kubeconfig.exists():
            if time.monotonic() > deadline:
                raise ServerError(f"kubi wrote no {self.kubeconfig}")
            time.sleep(READY_POLL_INTERVAL)
        return ready

    def stop(self, timeout: float = 10.0) -> float:
        """SIGTERM, then SIGKILL after `timeout`; return how long the exit took."""
        if self._proc is None or self._proc.poll() is not None:
            return 0.0
        started = time.monotonic()
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        return time.monotonic() - started

    def signal(self, signum: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# ------------------------------------------------------------------ floor server

def floor_tls_context(pki_dir: Path) -> ssl.SSLContext:
    """The serving TLS setup of kubi, with kubi's own serving certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki_dir / "apiserver.crt", pki_dir / "apiserver.key")
    ctx.load_verify_locations(pki_dir / "ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def floor_app() -> web.Application:
    """Fixed answers, reading the request body as any server must."""
    created = b'{"kind":"Status","apiVersion":"v1","status":"Success","code":201}'
    ok = b'{"kind":"Status","apiVersion":"v1","status":"Success","code":200}'

    async def answer(request: web.Request) -> web.Response:
        if request.method == "POST":
            await request.read()
            return web.Response(body=created, status=201, content_type="application/json")
        return web.Response(body=ok, status=200, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def _serve_floor(pki_dir: str, port: int) -> None:
    async def main() -> None:
        runner = web.AppRunner(floor_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=floor_tls_context(Path(pki_dir)),
                           backlog=1024, reuse_address=True)
        await site.start()
        await asyncio.Event().wait()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_loop(main())


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run, on uvloop when installed, as `kubi up` does."""
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


class FloorProcess:
    """The bare aiohttp TLS server in its own process."""

    def __init__(self, pki_dir: Path, port: int) -> None:
        self.port = port
        self._proc = multiprocessing.get_context("spawn").Process(
            target=_serve_floor, args=(str(pki_dir), port), name="floor-server", daemon=True)

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    def start(self, timeout: float = 15.0) -> None:
        self._proc.start()
        context = _unverified_context()
        deadline = time.monotonic() + timeout
        while not readyz_ok(self.port, context):
            if not self._proc.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerError("the floor server did not start")
            time.sleep(READY_POLL_INTERVAL)

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()

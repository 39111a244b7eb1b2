"""The probe result state machine and the probe actions."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from kubi.node.agent.handlers import Target, resolve_port, run_hook, run_probe
from kubi.node.agent.probes import LIVENESS, READINESS, STARTUP, ProbeTracker
from tests.unit.test_agent_fakes import FakeRuntime


def test_readiness_starts_failed_and_needs_success_threshold() -> None:
    tracker = ProbeTracker.for_probe(READINESS, {"successThreshold": 2, "failureThreshold": 3})
    assert tracker.result == "Failure"
    assert not tracker.observe(True)
    assert tracker.observe(True) and tracker.result == "Success"
    assert not tracker.observe(False) and not tracker.observe(False)
    assert tracker.observe(False) and tracker.result == "Failure"
    assert not tracker.on_hold


def test_liveness_starts_healthy_and_holds_after_failing() -> None:
    tracker = ProbeTracker.for_probe(LIVENESS, {"failureThreshold": 2})
    assert tracker.result == "Success"
    assert not tracker.observe(False)
    assert not tracker.observe(True)  # a success breaks the run
    assert not tracker.observe(False)
    assert tracker.observe(False) and tracker.result == "Failure" and tracker.on_hold


def test_startup_is_unknown_until_it_passes() -> None:
    tracker = ProbeTracker.for_probe(STARTUP, {})
    assert tracker.result is None
    assert tracker.observe(True) and tracker.result == "Success"


def test_named_ports() -> None:
    container = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port("http", container) == 8080
    assert resolve_port(80, container) == 80
    assert resolve_port("81", container) == 81


async def serve(status: int) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, text="x")

    app = web.Application()
    app.router.add_get("/healthz", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


async def test_http_and_tcp_probes() -> None:
    runtime = FakeRuntime()
    async with aiohttp.ClientSession() as session:
        failed = (False, "HTTP probe failed with statuscode: 503")
        for code, expect in ((200, (True, "")), (503, failed)):
            runner, port = await serve(code)
            target = Target(runtime, "c1", {"name": "c"}, "127.0.0.1")  # type: ignore[arg-type]
            try:
                probe = {"httpGet": {"path": "/healthz", "port": port}, "timeoutSeconds": 1}
                assert await run_probe(probe, target, session) == expect
                assert await run_probe({"tcpSocket": {"port": port}}, target, session) == \
                    (True, "")
            finally:
                await runner.cleanup()
        passed, message = await run_probe({"tcpSocket": {"port": port}}, target, session)
        assert not passed
        assert message == f"dial tcp 127.0.0.1:{port}: connect: connection refused"
        passed, message = await run_probe({"httpGet": {"path": "/", "port": port}}, target,
                                          session)
        assert message == (f'Get "http://127.0.0.1:{port}/": dial tcp 127.0.0.1:{port}: '
                           "connect: connection refused")


async def test_exec_probe_timeout_and_hooks() -> None:
    runtime = FakeRuntime()

    async def slow(*args: Any, **kw: Any) -> Any:
        class Hanging:
            async def read_stdout(self) -> bytes:
                await asyncio.sleep(10)
                return b""

            read_stderr = read_stdout

            async def wait(self) -> int:
                return 0

            async def close(self) -> None:
                pass
        return Hanging()

    runtime.exec = slow  # type: ignore[method-assign]
    target = Target(runtime, "c1", {"name": "c"}, "127.0.0.1")  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as session:
        probe = {"exec": {"command": ["sleep", "5"]}, "timeoutSeconds": 1}
        result = await asyncio.wait_for(run_probe(probe, target, session), 3)
        assert result == (False, 'command "sleep 5" timed out')
        assert await run_hook({"sleep": {"seconds": 0}}, target, pod_name="p_ns(u)",
                              session=session) is None

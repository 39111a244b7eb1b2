"""The channel.k8s.io WebSocket protocol: frames, options, statuses and the bridge."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from multidict import MultiDict

from kubi.node.agent import streams
from tests.unit.test_agent_fakes import FakeSession


def test_frames() -> None:
    assert streams.frame(streams.STDOUT, b"hi") == b"\x01hi"
    assert streams.parse_frame(b"\x00abc") == (0, b"abc")
    with pytest.raises(ValueError):
        streams.parse_frame(b"")
    assert streams.parse_resize(b'{"Width":80,"Height":24}\n') == (80, 24)


def test_exit_status_shapes() -> None:
    assert streams.exit_status(["ls"], 0) == {"metadata": {}, "status": "Success"}
    failure = streams.exit_status(["sh", "-c", "exit 3"], 3)
    assert failure == {
        "metadata": {}, "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
                   "[sh -c exit 3], exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


def test_stream_options() -> None:
    query = MultiDict([("command", "sh"), ("command", "-c"), ("command", "echo hi"),
                       ("stdin", "true"), ("stdout", "true"), ("stderr", "true"),
                       ("tty", "true")])
    opts = streams.stream_options(query)
    assert opts.command == ["sh", "-c", "echo hi"]
    assert (opts.stdin, opts.stdout, opts.stderr, opts.tty) == (True, True, False, True)
    with pytest.raises(ValueError):
        streams.stream_options(MultiDict([("command", "ls")]))


async def start_app(session_for: Any, argv: list[str]) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        opts = streams.stream_options(request.query)
        ws = web.WebSocketResponse(protocols=streams.PROTOCOLS)
        await ws.prepare(request)
        await streams.bridge(ws, session_for(), opts,
                             finish=lambda code: streams.exit_status(argv, code))
        return ws

    app = web.Application()
    app.router.add_get("/exec", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/exec"


async def run_client(url: str, *, send: list[bytes], protocol: str = streams.V5) -> list[bytes]:
    received: list[bytes] = []
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(url, protocols=(protocol,)) as ws:
        assert ws.protocol == protocol
        for message in send:
            await ws.send_bytes(message)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                received.append(message.data)
    return received


async def test_bridge_sends_output_then_status() -> None:
    runner, url = await start_app(lambda: FakeSession(3, b"out\n"), ["sh", "-c", "exit 3"])
    try:
        frames = await run_client(url + "?stdout=true&stderr=true", send=[])
    finally:
        await runner.cleanup()
    assert frames[0] == b"\x01out\n"
    channel, payload = streams.parse_frame(frames[-1])
    assert channel == streams.ERROR
    status = orjson.loads(payload)
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_bridge_stdin_resize_and_v5_close() -> None:
    sessions: list[FakeSession] = []

    def make() -> FakeSession:
        sessions.append(FakeSession(0, b"", echo_stdin=True))
        return sessions[-1]

    runner, url = await start_app(make, ["cat"])
    try:
        frames = await asyncio.wait_for(run_client(
            url + "?stdin=true&stdout=true",
            send=[b'\x04{"Width":80,"Height":24}', b"\x00hi\n", b"\xff\x00"]), 5)
    finally:
        await runner.cleanup()
    assert frames[0] == b"\x01hi\n"
    assert orjson.loads(frames[-1][1:]) == {"metadata": {}, "status": "Success"}
    assert sessions[0].resized == [(80, 24)]
    assert sessions[0].closed


async def test_client_leaving_closes_the_session() -> None:
    sessions: list[FakeSession] = []

    def make() -> FakeSession:
        sessions.append(FakeSession(0, b"", echo_stdin=True))
        return sessions[-1]

    runner, url = await start_app(make, ["cat"])
    try:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url + "?stdin=true&stdout=true",
                                   protocols=(streams.V4,)) as ws:
            await ws.send_bytes(b"\x00x")
            message = await ws.receive()
            assert message.data == b"\x01x"
        for _ in range(50):
            if sessions and sessions[0].closed:
                break
            await asyncio.sleep(0.01)
    finally:
        await runner.cleanup()
    assert sessions[0].closed

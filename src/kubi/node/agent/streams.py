"""exec and attach over WebSocket: the `channel.k8s.io` framing, and the pumps.

Every binary message is one channel byte followed by the payload: 0 stdin
(in), 1 stdout and 2 stderr (out), 3 the final status (out, one JSON Status),
4 a terminal resize (in, `{"Width":w,"Height":h}`). v5 adds a close signal:
the message `[255, channel]` half-closes that channel (kubectl sends `[255,
0]` when piped stdin ends). The API server relays kubectl's frames to us one
for one, so this is the protocol kubectl itself speaks.

`bridge` connects a runtime `StreamSession` to the socket: output flows out
as it comes, input flows in, and when the process ends (both outputs at EOF)
the exit code becomes the status on channel 3 and the socket closes. If the
client goes away first, the session is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from kubi.node.runtime.base import StreamSession

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255
V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)


def frame(channel: int, payload: bytes = b"") -> bytes:
    return bytes([channel]) + payload


def parse_frame(message: bytes) -> tuple[int, bytes]:
    if not message:
        raise ValueError("empty frame")
    return message[0], message[1:]


def parse_resize(payload: bytes) -> tuple[int, int]:
    size = orjson.loads(payload)
    return int(size.get("Width") or 0), int(size.get("Height") or 0)


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(argv: list[str], code: int) -> dict[str, Any]:
    """The status an exec ends with: Success, or NonZeroExitCode carrying the code."""
    if code == 0:
        return success_status()
    return {
        "metadata": {},
        "status": "Failure",
        "message": ("command terminated with non-zero exit code: error executing command "
                    f"[{' '.join(argv)}], exit code {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError", "code": 500}


@dataclass
class StreamOptions:
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False
    command: list[str] = field(default_factory=list)


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "")


def stream_options(query: Any) -> StreamOptions:
    """The exec/attach options of a request's query (repeated `command` kept in order)."""
    get: Callable[[str], str | None] = query.get
    opts = StreamOptions(stdin=_flag(get("stdin")), stdout=_flag(get("stdout")),
                         stderr=_flag(get("stderr")), tty=_flag(get("tty")),
                         command=list(query.getall("command", [])))
    if opts.tty:
        # With a terminal there is one output stream.
        opts.stderr = False
    if not (opts.stdin or opts.stdout or opts.stderr):
        raise ValueError("you must specify at least 1 of stdin, stdout, stderr")
    return opts


async def _send(ws: web.WebSocketResponse, data: bytes) -> bool:
    if ws.closed:
        return False
    try:
        await ws.send_bytes(data)
    except (ConnectionError, RuntimeError):
        return False
    return True


async def _pump(ws: web.WebSocketResponse, read: Callable[[], Any], channel: int,
                forward: bool) -> None:
    while True:
        data = await read()
        if not data:
            return
        if forward:
            await _send(ws, frame(channel, data))


async def _inbound(ws: web.WebSocketResponse, session: StreamSession, opts: StreamOptions,
                   protocol: str) -> None:
    """Feed the client's frames to the session until it closes the socket."""
    async for message in ws:
        if message.type != aiohttp.WSMsgType.BINARY:
            continue
        try:
            channel, payload = parse_frame(message.data)
        except ValueError:
            continue
        if channel == STDIN and opts.stdin:
            await session.write_stdin(payload)
        elif channel == RESIZE:
            try:
                width, height = parse_resize(payload)
            except (ValueError, orjson.JSONDecodeError):
                continue
            await session.resize(width, height)
        elif channel == CLOSE and protocol == V5 and payload[:1] == bytes([STDIN]):
            await session.close_stdin()


async def bridge(ws: web.WebSocketResponse, session: StreamSession, opts: StreamOptions, *,
                 finish: Callable[[int], Mapping[str, Any]]) -> int | None:
    """Run the session over the socket; its exit code, or None if the client left first."""
    protocol = ws.ws_protocol or V4
    outputs: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(
        _pump(ws, session.read_stdout, STDOUT, opts.stdout),
        _pump(ws, session.read_stderr, STDERR, opts.stderr)))
    inbound = asyncio.ensure_future(_inbound(ws, session, opts, protocol))
    code: int | None = None
    try:
        await asyncio.wait({outputs, inbound}, return_when=asyncio.FIRST_COMPLETED)
        if outputs.done() and outputs.exception() is None:
            code = await session.wait()
            await _send(ws, frame(ERROR, orjson.dumps(dict(finish(code)))))
    except Exception as exc:
        log.exception("stream session failed")
        await _send(ws, frame(ERROR, orjson.dumps(error_status(str(exc)))))
    finally:
        for task in (outputs, inbound):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await session.close()
        await ws.close()
    return code

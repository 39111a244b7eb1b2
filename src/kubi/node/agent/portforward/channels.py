"""Port forwarding over WebSocket channels (`v4.channel.k8s.io`), as the Python client does it.

The ports come in the query (`port=8080`, repeated or comma-separated). Port
number i owns two channels: 2i carries data both ways, 2i+1 carries error text
to the client. Each binary message is one channel byte and its payload; with
`v4.base64.channel.k8s.io` messages are text, the channel an ASCII digit and
the payload base64. The agent opens by writing each port (16 bits,
little-endian) on both of its channels, then connects to every port at once;
the socket closes when all of those connections have ended, or the client
leaves first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp import web

from kubi.node.agent.portforward.pairs import Connect, forward_error
from kubi.node.runtime.base import RuntimeError_

V4_BINARY = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
PROTOCOLS = (V4_BINARY, V4_BASE64)
_READ_SIZE = 1 << 16


def parse_ports(values: Iterable[str]) -> list[int]:
    """The `port` query values as numbers; ValueError with the kubelet's words."""
    given = list(values)
    if not given:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in given:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for part in value.split(","):
            try:
                port = int(part, 10)
            except ValueError:
                raise ValueError(f'unable to parse "{value}" as a port: invalid syntax') from None
            if not 0 <= port <= 65535:
                raise ValueError(f'unable to parse "{value}" as a port: value out of range')
            if port < 1:
                raise ValueError(f'port "{value}" must be > 0')
            ports.append(port)
    return ports


class _Channels:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.base64 = ws.ws_protocol == V4_BASE64

    async def send(self, channel: int, payload: bytes) -> None:
        if self.base64:
            await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(payload).decode())
        else:
            await self.ws.send_bytes(bytes([channel]) + payload)

    def decode(self, message: aiohttp.WSMessage) -> tuple[int, bytes] | None:
        try:
            if message.type == aiohttp.WSMsgType.BINARY and message.data:
                return message.data[0], bytes(message.data[1:])
            if message.type == aiohttp.WSMsgType.TEXT and message.data and self.base64:
                return ord(message.data[0]) - ord("0"), base64.b64decode(message.data[1:])
        except ValueError:
            pass
        return None


async def serve_channels(ws: web.WebSocketResponse, ports: list[int], connect: Connect, *,
                         pod: str, uid: str = "") -> None:
    channels = _Channels(ws)
    for index, port in enumerate(ports):
        number = struct.pack("<H", port)
        await channels.send(2 * index, number)
        await channels.send(2 * index + 1, number)
    loop = asyncio.get_running_loop()
    writers: list[asyncio.Future[asyncio.StreamWriter | None]] = [
        loop.create_future() for _ in ports]
    forwards = [asyncio.ensure_future(_forward(channels, index, port, connect, writers[index],
                                               pod=pod, uid=uid))
                for index, port in enumerate(ports)]
    everything: asyncio.Future[Any] = asyncio.gather(*forwards)
    inbound: asyncio.Future[Any] = asyncio.ensure_future(_inbound(channels, writers))
    try:
        await asyncio.wait([everything, inbound], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (*forwards, inbound):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await everything
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await inbound
        for future in writers:
            writer = future.result() if future.done() and not future.cancelled() else None
            if writer is not None:
                writer.close()


async def _forward(channels: _Channels, index: int, port: int, connect: Connect,
                   ready: asyncio.Future[asyncio.StreamWriter | None], *, pod: str,
                   uid: str) -> None:
    try:
        reader, writer = await connect(port)
    except (OSError, RuntimeError_) as exc:
        ready.set_result(None)
        await channels.send(2 * index + 1, forward_error(port, pod, uid, exc).encode())
        return
    ready.set_result(writer)
    try:
        while chunk := await reader.read(_READ_SIZE):
            await channels.send(2 * index, chunk)
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _inbound(channels: _Channels,
                   writers: list[asyncio.Future[asyncio.StreamWriter | None]]) -> None:
    async for message in channels.ws:
        decoded = channels.decode(message)
        if decoded is None:
            continue
        channel, payload = decoded
        if channel % 2 or not 0 <= channel // 2 < len(writers) or not payload:
            continue
        writer = await writers[channel // 2]
        if writer is None or writer.is_closing():
            continue
        try:
            writer.write(payload)
            await writer.drain()
        except ConnectionError:
            continue

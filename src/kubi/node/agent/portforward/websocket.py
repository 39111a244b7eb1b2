"""The agent's port-forward endpoint: which protocol a WebSocket upgrade asks for.

kubectl asks for `SPDY/3.1+portforward.k8s.io`: SPDY tunnelled through
WebSocket, each binary message carrying the next piece of the SPDY byte
stream, served by `pairs`. Other clients (the Python client) ask for
`v4.channel.k8s.io` or its base64 form, or name no protocol, and name their
ports in the query: that is `channels`. The API server turns kubectl's plain
SPDY upgrade into the tunnel, so the agent needs no other transport.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from kubi.node.agent.portforward import channels, pairs

TUNNEL_PROTOCOL = "SPDY/3.1+" + pairs.PROTOCOL


class WebSocketPipe:
    """SPDY bytes carried in WebSocket binary messages, one write per message."""

    def __init__(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            message = await self.ws.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                if message.data:
                    return bytes(message.data)
                continue
            # Text has no place in the tunnel; it ends it, as closing does.
            return b""

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()


def offered_protocols(request: web.Request) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


async def serve_websocket(request: web.Request, connect: pairs.Connect, *, pod: str,
                          uid: str = "") -> web.WebSocketResponse:
    """Upgrade and serve port forwarding. ValueError (before any upgrade) for
    a channel request whose ports are missing or malformed."""
    if TUNNEL_PROTOCOL in offered_protocols(request):
        ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,), autoping=True,
                                   max_msg_size=0)
        await ws.prepare(request)
        await pairs.serve(WebSocketPipe(ws), connect, pod=pod, uid=uid)
        return ws
    ports = channels.parse_ports(request.query.getall("port", []))
    ws = web.WebSocketResponse(protocols=channels.PROTOCOLS, autoping=True, max_msg_size=0)
    await ws.prepare(request)
    try:
        await channels.serve_channels(ws, ports, connect, pod=pod, uid=uid)
    finally:
        await ws.close()
    return ws

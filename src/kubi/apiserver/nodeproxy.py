"""Pod subresources served by the pod's node agent: log, exec, attach, portforward.

The API server checks the request (pod exists, is bound, names a container),
then forwards it to the agent on the pod's node, as upstream forwards to the
kubelet: logs as a streamed HTTP response, exec and attach as a WebSocket that
is relayed message by message in both directions, so the channel protocol
(`v5.channel.k8s.io`, `v4.channel.k8s.io`) is spoken end to end by kubectl and
the agent. The API server authenticates to agents with its own client
certificate (`kube-apiserver-kubelet-client`), which agents require.

portforward is SPDY end to end. kubectl first asks for SPDY tunnelled in
WebSocket (`SPDY/3.1+portforward.k8s.io`), relayed like exec; if that fails it
falls back to a plain `Upgrade: SPDY/3.1`, whose raw bytes are carried to the
agent inside that same tunnel, so agents speak only the WebSocket form.

A node whose agent publishes no port (simulated nodes) cannot serve these; the
request then fails at once with a clear message.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from kubi.api import catalog
from kubi.api.errors import BadRequest, NotFound, StatusError
from kubi.apiserver.request import RequestInfo

log = logging.getLogger(__name__)

WS_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                "v2.channel.k8s.io", "channel.k8s.io")
_PATHS = {"log": "containerLogs", "exec": "exec", "attach": "attach",
          "portforward": "portForward"}
PORT_FORWARD = "portforward.k8s.io"
SPDY_TUNNEL = "SPDY/3.1+" + PORT_FORWARD
# WebSocket port forwarding as the Python client speaks it, ports in the query.
PORT_FORWARD_CHANNELS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
# Bytes from kubectl held for the agent before reading from kubectl pauses.
_RAW_BUFFER = 1 << 20


class NodeProxy:
    """Forwards node-served pod subresources; one connection pool for all agents."""

    def __init__(self, client_ssl: ssl.SSLContext) -> None:
        self._ssl = client_ssl
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=256),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __call__(self, request: web.Request, registry, info: RequestInfo):
        if info.subresource not in _PATHS:
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        pod = registry.get(info.rt, info.namespace or "", info.name).obj
        if info.subresource == "portforward":
            base = self._agent_base(registry, pod)
            return await self._port_forward(
                request, f"{base}/portForward/{info.namespace}/{info.name}")
        container = _container(pod, request.query.get("container"), info.subresource)
        base = self._agent_base(registry, pod)
        query = [(k, v) for k, v in request.query.items() if k != "container"]
        path = f"/{_PATHS[info.subresource]}/{info.namespace}/{info.name}/{container}"
        if info.subresource == "log":
            return await self._logs(request, base + path, query)
        return await self._stream(request, base + path, query, request.query.getall("command", []))

    def _agent_base(self, registry, pod: dict) -> str:
        node_name = pod.get("spec", {}).get("nodeName")
        if not node_name:
            raise BadRequest(f"pod {pod['metadata']['name']} does not have a host assigned")
        nodes = catalog.lookup("", "v1", "nodes")
        node = registry.find(nodes, "", node_name)
        if node is None:
            raise NotFound("nodes", node_name)
        status = node.obj.get("status", {})
        port = status.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port") or 0
        if not port:
            raise BadRequest(
                f'node "{node_name}" has no agent that serves pod logs and streams '
                "(simulated node)"
            )
        address = _node_address(status)
        if address is None:
            raise StatusError(503, "ServiceUnavailable",
                              f'node "{node_name}" reports no address')
        return f"https://{_host(address)}:{port}"

    async def _logs(self, request: web.Request, url: str, query) -> web.StreamResponse:
        try:
            upstream = await self.session().get(f"{url}?{urlencode(query)}" if query else url)
        except (aiohttp.ClientError, OSError) as exc:
            raise StatusError(500, "InternalError",
                              f"Get \"{url}\": {exc}") from None
        response: web.StreamResponse | None = None
        try:
            if upstream.status >= 400:
                body = await upstream.read()
                return web.Response(status=upstream.status, body=body,
                                    content_type=upstream.content_type)
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
        except (ConnectionResetError, asyncio.CancelledError, aiohttp.ClientPayloadError):
            # The client went away or the agent's stream broke: end what was started.
            return response if response is not None else web.Response(status=499)
        finally:
            upstream.release()

    async def _stream(self, request: web.Request, url: str, query, command: list[str],
                      offered: tuple[str, ...] = WS_PROTOCOLS, linger: float = 5):
        wanted = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
                  if p.strip()]
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # kubectl then falls back to SPDY, which kubi does not speak.
            raise StatusError(400, "BadRequest",
                              "exec and attach need a WebSocket upgrade (v5.channel.k8s.io)")
        protocols = [p for p in wanted if p in offered] or list(offered)
        upstream = await self._dial(f"{url}?{urlencode(query)}" if query else url, protocols)
        client = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                       autoping=True, max_msg_size=0)
        await client.prepare(request)

        async def pump(src, dst) -> None:
            async for msg in src:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                else:
                    break

        to_agent = asyncio.create_task(pump(client, upstream))
        to_client = asyncio.create_task(pump(upstream, client))
        try:
            await asyncio.wait([to_agent, to_client], return_when=asyncio.FIRST_COMPLETED)
            # The agent ends the session (after the status on channel 3); let what it
            # sent drain to the client before closing both sides.
            if to_client.done():
                to_agent.cancel()
            else:
                await asyncio.wait([to_client], timeout=linger)
        finally:
            for task in (to_agent, to_client):
                task.cancel()
            await upstream.close()
            await client.close()
        return client

    async def _dial(self, url: str, protocols: list[str]) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self.session().ws_connect(url, protocols=protocols, autoping=True,
                                                   heartbeat=None, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as exc:
            raise StatusError(exc.status if exc.status >= 400 else 500, "InternalError",
                              f"error dialing the node agent: {exc.message}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise StatusError(500, "InternalError",
                              f"error dialing the node agent: {exc}") from None

    # ---- portforward

    async def _port_forward(self, request: web.Request, url: str) -> web.StreamResponse:
        upgrade = request.headers.get("Upgrade", "").lower()
        if upgrade == "websocket":
            wanted = request.headers.get("Sec-WebSocket-Protocol", "")
            offered = (SPDY_TUNNEL,) if SPDY_TUNNEL in wanted else PORT_FORWARD_CHANNELS
            # The agent names the ports `port`, as the kubelet does.
            query = [("port", port) for port in request.query.getall("ports", [])]
            # Nothing is owed to a client that left: the agent's side closes at once.
            return await self._stream(request, url, query, [], offered=offered, linger=0)
        if upgrade != "spdy/3.1":
            raise BadRequest("Upgrade request required")
        upstream = await self._dial(url, [SPDY_TUNNEL])
        response = web.StreamResponse(status=101, reason="Switching Protocols", headers={
            "Connection": "Upgrade", "Upgrade": "SPDY/3.1",
            "X-Stream-Protocol-Version": PORT_FORWARD})
        response.force_close()
        try:
            writer = await response.prepare(request)
            assert writer is not None
            raw = _RawConnection(request)
            await _relay_raw(raw, writer, upstream)
        finally:
            await upstream.close()
        return response


class _RawConnection:
    """kubectl's connection after a 101 to SPDY, which aiohttp does not speak:
    installed as the connection's parser, it receives every byte that follows."""

    def __init__(self, request: web.Request) -> None:
        self._transport = request.transport
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._buffered = 0
        self._paused = False
        request.protocol.set_parser(self)  # type: ignore[arg-type]

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._chunks.put_nowait(bytes(data))
        self._buffered += len(data)
        if self._buffered > _RAW_BUFFER and not self._paused and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        return False, b""

    def feed_eof(self) -> None:
        self._chunks.put_nowait(b"")

    async def read(self) -> bytes:
        data = await self._chunks.get()
        self._buffered -= len(data)
        if self._paused and self._buffered < _RAW_BUFFER // 2 and self._transport is not None:
            self._transport.resume_reading()
            self._paused = False
        return data


async def _relay_raw(raw: _RawConnection, writer, upstream: aiohttp.ClientWebSocketResponse
                     ) -> None:
    """kubectl's SPDY bytes into the agent's tunnel, and the tunnel's back, until
    either side ends."""

    async def to_agent() -> None:
        while data := await raw.read():
            await upstream.send_bytes(data)

    async def to_client() -> None:
        async for msg in upstream:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            await writer.write(msg.data)

    tasks = [asyncio.ensure_future(to_agent()), asyncio.ensure_future(to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task


def _container(pod: dict, name: str | None, sub: str) -> str:
    spec = pod.get("spec", {})
    names = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    pod_name = pod["metadata"]["name"]
    if name:
        if name not in names + init + ephemeral:
            raise BadRequest(f"container {name} is not valid for pod {pod_name}")
        return name
    if len(names) == 1:
        return names[0]
    default = pod["metadata"].get("annotations", {}).get("kubectl.kubernetes.io/default-container")
    if default in names:
        return default
    raise BadRequest(
        f"a container name must be specified for pod {pod_name}, choose one of: "
        f"[{' '.join(names)}]" + (f" or one of the init containers: [{' '.join(init)}]"
                                  if init else "")
    )


def _node_address(status: dict) -> str | None:
    """The address to reach the agent at; the machine's own addresses become
    loopback, so a local agent is reached without leaving the host."""
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    address = addresses.get("InternalIP") or addresses.get("ExternalIP")
    if not address:
        return None
    if address in _local_addresses():
        return "127.0.0.1"
    return address


def _local_addresses() -> set[str]:
    found = {"127.0.0.1"}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(str(info[4][0]))
    except OSError:
        pass
    try:
        import fcntl
        import struct

        with open("/proc/net/dev") as fh:
            names = [line.split(":")[0].strip() for line in fh.readlines()[2:]]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for name in names:
                try:
                    packed = fcntl.ioctl(sock.fileno(), 0x8915,  # SIOCGIFADDR
                                         struct.pack("256s", name[:15].encode()))
                    found.add(socket.inet_ntoa(packed[20:24]))
                except OSError:
                    continue
    except OSError:
        pass
    return found


def _host(address: str) -> str:
    try:
        if ipaddress.ip_address(address).version == 6:
            return f"[{address}]"
    except ValueError:
        pass
    return address

"""Port forwarding: stream pairs, the copy into the pod, the agent endpoint and the
API server's relay (WebSocket tunnel and plain SPDY), and the real kubectl."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from kubi.api.errors import StatusError
from kubi.apiserver.nodeproxy import NodeProxy
from kubi.node.agent import portforward
from kubi.node.agent.spdy import frames as f
from kubi.node.runtime.base import RuntimeError_
from tests.tools.binaries import GCLOUD_BIN_DIR
from tests.unit.test_agent_server import served  # noqa: F401  (a fixture)
from tests.unit.test_spdy import MemoryPipe, SpdyClient

POD_PORT = 8080


@dataclass
class EchoServer:
    """What runs in the pod: echoes until the client half-closes, then closes."""

    port: int = 0
    opened: int = 0
    closed: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    server: asyncio.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        self.idle.clear()
        self.writers.add(writer)
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.writers.discard(writer)
            self.closed += 1
            if self.closed == self.opened:
                self.idle.set()

    async def connect(self, port: int) -> portforward.Connection:
        if port != POD_PORT:
            raise ConnectionRefusedError(111, "Connection refused")
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def wait_idle(self) -> None:
        await asyncio.wait_for(self.idle.wait(), 5)
        assert self.opened == self.closed

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    await server.start()
    yield server
    await server.stop()


@dataclass
class Forwarding:
    pipe: MemoryPipe
    client: SpdyClient
    task: asyncio.Task[None]


async def start_forwarding(echo: EchoServer, **kw: Any) -> Forwarding:
    pipe = MemoryPipe()
    task = asyncio.ensure_future(portforward.serve(pipe, echo.connect, pod="sb1", **kw))
    return Forwarding(pipe, pipe.client(), task)


@pytest.fixture
async def fwd(echo: EchoServer) -> AsyncIterator[Forwarding]:
    running = await start_forwarding(echo)
    yield running
    running.pipe.hang_up()
    await asyncio.wait_for(running.task, 5)
    await running.client.close()


async def open_pair(client: SpdyClient, request: str, port: int = POD_PORT) -> tuple[int, int]:
    """As kubectl does: the error stream first (half-closed at once), then data."""
    headers = {"port": str(port), "requestid": request}
    error = await client.open({**headers, "streamtype": "error"})
    await client.wait(error, lambda s: s.replied)
    await client.send_data(error, fin=True)
    data = await client.open({**headers, "streamtype": "data"})
    await client.wait(data, lambda s: s.replied)
    return error, data


async def echo_round(client: SpdyClient, data: int, payload: bytes) -> None:
    before = len(client.streams[data].data)
    await client.send_data(data, payload)
    stream = await client.wait(data, lambda s: len(s.data) >= before + len(payload))
    assert bytes(stream.data[before:]) == payload


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(("headers", "reason"), [
    ({"streamtype": ["data"]}, '"port" header is required'),
    ({"port": ["http"], "streamtype": ["data"]}, 'unable to parse "http" as a port: invalid syntax'),
    ({"port": ["70000"], "streamtype": ["data"]},
     'unable to parse "70000" as a port: value out of range'),
    ({"port": ["0"], "streamtype": ["data"]}, 'port "0" must be > 0'),
    ({"port": ["80"]}, '"streamType" header is required'),
    ({"port": ["80"], "streamtype": ["other"]}, 'invalid stream type "other"'),
    ({"port": ["80"], "streamtype": ["error"]}, None),
])
def test_stream_headers_are_checked(headers: f.Headers, reason: str | None) -> None:
    assert portforward.check_stream(headers) == reason


def test_old_clients_get_request_ids_from_stream_numbers() -> None:
    class Fake:
        def __init__(self, sid: int, headers: dict[str, str]) -> None:
            self.id, self.headers = sid, headers

        def header(self, name: str) -> str:
            return self.headers.get(name, "")

    assert portforward.request_id(Fake(5, {"streamtype": "error"})) == "5"  # type: ignore[arg-type]
    assert portforward.request_id(Fake(7, {"streamtype": "data"})) == "5"  # type: ignore[arg-type]
    assert portforward.request_id(Fake(7, {"requestid": "0"})) == "0"  # type: ignore[arg-type]


def test_errors_read_as_go_prints_them() -> None:
    assert portforward.describe(ConnectionRefusedError(111, "x")) == \
        "connect: connection refused"
    assert portforward.describe(RuntimeError_("sandbox s is not ready")) == \
        "sandbox s is not ready"


# ---------------------------------------------------------------- forwarding


async def test_bytes_flow_both_ways_and_a_half_close_finishes_cleanly(
        fwd: Forwarding, echo: EchoServer) -> None:
    client = fwd.client
    error, data = await open_pair(client, "0")
    await echo_round(client, data, b"hello")
    await echo_round(client, data, b"x" * 300_000)
    await client.send_data(data, fin=True)  # the local client is done sending
    assert (await client.finished(data)).fin  # the pod answered all and closed
    got = await client.finished(error)
    assert got.fin and got.data == b"" and not got.reset
    await echo.wait_idle()


async def test_concurrent_connections_are_kept_apart(fwd: Forwarding, echo: EchoServer) -> None:
    client = fwd.client
    headers = {"port": "8080"}
    errors = [await client.open({**headers, "streamtype": "error", "requestid": r})
              for r in ("0", "1")]
    datas = [await client.open({**headers, "streamtype": "data", "requestid": r})
             for r in ("1", "0")]
    for sid in errors:
        await client.send_data(sid, fin=True)
    await echo_round(client, datas[0], b"one")
    await echo_round(client, datas[1], b"zero")
    await echo_round(client, datas[0], b"one again")
    assert echo.opened == 2
    for sid in datas:
        await client.send_raw(f.encode_rst_stream(sid, f.CANCEL))
    for sid in errors:
        assert (await client.finished(sid)).fin
    await echo.wait_idle()


async def test_a_refused_port_is_reported_on_the_error_stream(fwd: Forwarding) -> None:
    client = fwd.client
    error, data = await open_pair(client, "0", port=9)
    got = await client.finished(error)
    assert got.data.decode() == (
        'error forwarding port 9 to pod sb1, uid : failed to connect to localhost:9 inside '
        'namespace "sb1": connect: connection refused')
    assert (await client.finished(data)).fin


async def test_a_reset_data_stream_closes_the_pod_connection(
        fwd: Forwarding, echo: EchoServer) -> None:
    client = fwd.client
    error, data = await open_pair(client, "0")
    await echo_round(client, data, b"hi")
    await client.send_raw(f.encode_rst_stream(data, f.CANCEL))
    await echo.wait_idle()
    assert (await client.finished(error)).fin


async def test_a_lost_connection_closes_every_pod_connection(
        fwd: Forwarding, echo: EchoServer) -> None:
    client = fwd.client
    for request in ("0", "1"):
        _, data = await open_pair(client, request)
        await echo_round(client, data, b"hi")
    fwd.pipe.hang_up()
    await asyncio.wait_for(fwd.task, 5)
    await echo.wait_idle()
    assert fwd.pipe.closed


async def test_bad_streams_are_reset(fwd: Forwarding) -> None:
    client = fwd.client
    sid = await client.open({"port": "x", "streamtype": "data"})
    assert (await client.finished(sid)).reset == f.CANCEL


async def test_a_second_stream_of_one_kind_is_refused(fwd: Forwarding) -> None:
    client = fwd.client
    error = await client.open({"port": "8080", "streamtype": "error", "requestid": "0"})
    again = await client.open({"port": "8080", "streamtype": "error", "requestid": "0"})
    assert (await client.finished(again)).reset == f.CANCEL
    got = await client.wait(error, lambda s: bool(s.data))
    assert got.data == b"error processing stream for request 0: error stream already assigned"


async def test_an_incomplete_pair_times_out(echo: EchoServer) -> None:
    running = await start_forwarding(echo, stream_timeout=0.05)
    client = running.client
    error = await client.open({"port": "8080", "streamtype": "error", "requestid": "7"})
    got = await client.finished(error)
    assert got.data == b"(request=7) timed out waiting for streams" and got.reset
    running.pipe.hang_up()
    await asyncio.wait_for(running.task, 5)
    await client.close()


# ---------------------------------------------------------------- the agent endpoint


def ws_client(ws: aiohttp.ClientWebSocketResponse) -> SpdyClient:
    async def receive() -> bytes:
        message = await ws.receive()
        return bytes(message.data) if message.type == aiohttp.WSMsgType.BINARY else b""

    return SpdyClient(ws.send_bytes, receive)


async def test_the_agent_serves_the_tunnel_over_tls(served: Any, echo: EchoServer) -> None:  # noqa: F811
    base, good, _, _, runtime, _ = served
    sandbox_ids: list[str] = []

    async def port_forward(sandbox_id: str, port: int) -> portforward.Connection:
        sandbox_ids.append(sandbox_id)
        return await echo.connect(port)

    runtime.port_forward = port_forward
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/portForward/default/p", ssl=good) as resp:
            assert resp.status == 400
            assert orjson.loads(await resp.read())["message"] == "Upgrade request required"
        with pytest.raises(aiohttp.WSServerHandshakeError) as missing:
            await http.ws_connect(base + "/portForward/default/nope", ssl=good,
                                  protocols=[portforward.TUNNEL_PROTOCOL])
        assert missing.value.status == 404
        async with http.ws_connect(base + "/portForward/default/p", ssl=good,
                                   protocols=[portforward.TUNNEL_PROTOCOL]) as ws:
            assert ws.protocol == portforward.TUNNEL_PROTOCOL
            client = ws_client(ws)
            _, data = await open_pair(client, "0")
            await echo_round(client, data, b"through the agent")
            await client.close()
    await echo.wait_idle()
    [sandbox] = await runtime.list_pod_sandboxes()
    assert sandbox_ids == [sandbox.id]
    await runtime.stop_pod_sandbox(sandbox.id)
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as stopped:
            await http.ws_connect(base + "/portForward/default/p", ssl=good,
                                  protocols=[portforward.TUNNEL_PROTOCOL])
        assert stopped.value.status == 500


# ---------------------------------------------------------------- the API server relay


UPGRADES: list[str] = []


@pytest.fixture
async def relay(echo: EchoServer) -> AsyncIterator[str]:
    """An agent and, in front of it, the API server's portforward relay; the relay's URL.
    The upgrades asked of the relay are noted in UPGRADES."""
    UPGRADES.clear()
    agent = web.Application()

    async def agent_handler(request: web.Request) -> web.StreamResponse:
        try:
            return await portforward.serve_websocket(request, echo.connect, pod="sb1")
        except ValueError as exc:
            return web.Response(status=400, text=str(exc))

    agent.router.add_get("/portForward/default/web", agent_handler)
    agent_runner = web.AppRunner(agent)
    await agent_runner.setup()
    agent_site = web.TCPSite(agent_runner, "127.0.0.1", 0)
    await agent_site.start()
    agent_url = f"http://127.0.0.1:{agent_runner.addresses[0][1]}/portForward/default/web"

    proxy = NodeProxy(None)  # type: ignore[arg-type]
    api = web.Application()

    async def api_handler(request: web.Request) -> web.StreamResponse:
        UPGRADES.append(request.headers.get("Upgrade", ""))
        try:
            return await proxy._port_forward(request, agent_url)
        except StatusError as exc:
            return web.Response(status=exc.code, text=str(exc))

    api.router.add_route("*", "/api/v1/namespaces/default/pods/web/portforward", api_handler)
    for path, body in _discovery().items():
        api.router.add_get(path, _json_handler(body))
    api_runner = web.AppRunner(api)
    await api_runner.setup()
    api_site = web.TCPSite(api_runner, "127.0.0.1", 0)
    await api_site.start()
    yield f"http://127.0.0.1:{api_runner.addresses[0][1]}"
    await proxy.close()
    await api_runner.cleanup()
    await agent_runner.cleanup()


def _json_handler(body: dict[str, Any]) -> Any:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body)
    return handler


def _discovery() -> dict[str, dict[str, Any]]:
    pod = {"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
           "spec": {"containers": [{"name": "c", "image": "x"}]},
           "status": {"phase": "Running"}}
    return {
        "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
        "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
             "verbs": ["get", "list"]},
            {"name": "pods/portforward", "singularName": "", "namespaced": True,
             "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}]},
        "/api/v1/namespaces/default/pods/web": pod,
    }


PATH = "/api/v1/namespaces/default/pods/web/portforward"


async def test_the_relay_passes_the_websocket_tunnel(relay: str, echo: EchoServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(relay + PATH, protocols=[portforward.TUNNEL_PROTOCOL]) as ws:
            assert ws.protocol == portforward.TUNNEL_PROTOCOL
            client = ws_client(ws)
            _, data = await open_pair(client, "0")
            await echo_round(client, data, b"tunnelled")
            await client.close()
        async with http.post(relay + PATH) as resp:
            assert resp.status == 400
    await echo.wait_idle()


async def test_the_relay_turns_plain_spdy_into_the_tunnel(relay: str, echo: EchoServer) -> None:
    host, port = relay.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
                 "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                 "X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
    assert "Upgrade: SPDY/3.1" in head and "X-Stream-Protocol-Version: portforward.k8s.io" in head

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    client = SpdyClient(send, lambda: reader.read(65536))
    _, data = await open_pair(client, "0")
    await echo_round(client, data, b"plain spdy")
    await echo_round(client, data, os.urandom(200_000))
    # When the agent ends the session (here: a header block it cannot read), the
    # relay hangs up on the client too.
    garbage = b"\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00broken"
    await client.send_raw(b"\x80\x03\x00\x01" + len(garbage).to_bytes(4, "big") + garbage)
    assert (await client.control_frame(f.GOAWAY)).value == f.GOAWAY_PROTOCOL_ERROR
    await asyncio.wait_for(client.closed.wait(), 5)
    await echo.wait_idle()
    writer.close()
    await client.close()


# ---------------------------------------------------------------- WebSocket channels


@pytest.mark.parametrize(("values", "error"), [
    ([], 'query parameter "port" is required'),
    ([""], 'query parameter "port" cannot be empty'),
    (["80,x"], 'unable to parse "80,x" as a port: invalid syntax'),
    (["0"], 'port "0" must be > 0'),
])
def test_channel_ports_are_checked(values: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        portforward.parse_ports(values)
    assert portforward.parse_ports(["80,81", "82"]) == [80, 81, 82]


async def test_channels_through_the_relay(relay: str, echo: EchoServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(relay + PATH + "?ports=8080,9",
                                   protocols=["v5.channel.k8s.io", portforward.V4_BINARY]) as ws:
            assert ws.protocol == portforward.V4_BINARY
            first = [await ws.receive_bytes(timeout=5) for _ in range(4)]
            assert first == [b"\x00\x90\x1f", b"\x01\x90\x1f", b"\x02\x09\x00", b"\x03\x09\x00"]
            assert await ws.receive_bytes(timeout=5) == b"\x03" + (
                b"error forwarding port 9 to pod sb1, uid : failed to connect to localhost:9 "
                b'inside namespace "sb1": connect: connection refused')
            await ws.send_bytes(b"\x00hello")
            assert await ws.receive_bytes(timeout=5) == b"\x00hello"
        await echo.wait_idle()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(relay + PATH)  # no ports
        assert refused.value.status == 400


async def test_base64_channels_end_when_the_pod_connection_does(served: Any,  # noqa: F811
                                                              echo: EchoServer) -> None:
    base, good, _, _, runtime, _ = served

    async def port_forward(sandbox_id: str, port: int) -> portforward.Connection:
        return await echo.connect(port)

    runtime.port_forward = port_forward
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/portForward/default/p?port=x", ssl=good,
                             headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                      "Sec-WebSocket-Version": "13",
                                      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as resp:
            assert resp.status == 400
            assert orjson.loads(await resp.read())["message"] == \
                'unable to parse "x" as a port: invalid syntax'
        async with http.ws_connect(base + "/portForward/default/p?port=8080", ssl=good,
                                   protocols=[portforward.V4_BASE64]) as ws:
            assert [await ws.receive_str(timeout=5) for _ in range(2)] == ["0kB8=", "1kB8="]
            await ws.send_str("0" + base64.b64encode(b"ping").decode())
            assert await ws.receive_str(timeout=5) == "0" + base64.b64encode(b"ping").decode()
            await echo.stop()  # the pod's server goes away with its connection
            for writer in list(echo.writers):
                writer.close()
            message = await ws.receive(timeout=5)
            assert message.type == aiohttp.WSMsgType.CLOSE


async def test_the_python_client(relay: str, echo: EchoServer) -> None:
    from kubernetes import client as k8s
    from kubernetes.stream import portforward as python_port_forward

    configuration = k8s.Configuration()
    configuration.host = relay
    api = k8s.CoreV1Api(k8s.ApiClient(configuration))

    def exchange() -> bytes:
        forward = python_port_forward(api.connect_get_namespaced_pod_portforward, "web",
                                      "default", ports=str(POD_PORT))
        sock = forward.socket(POD_PORT)
        sock.setblocking(True)
        sock.sendall(b"from python")
        received = b""
        while len(received) < len(b"from python"):
            received += sock.recv(1024)
        sock.close()
        forward.close()
        return received

    assert await asyncio.wait_for(asyncio.to_thread(exchange), 20) == b"from python"
    await echo.wait_idle()


# ---------------------------------------------------------------- the real kubectl

KUBECTL = GCLOUD_BIN_DIR / "kubectl.1.33"


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl 1.33 is not installed")
@pytest.mark.parametrize("websockets", ["true", "false"])
async def test_kubectl_port_forward(relay: str, echo: EchoServer, tmp_path: Path,
                                    websockets: str) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{relay}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u, namespace: default}}]\n"
        "users: [{name: u, user: {token: t}}]\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "KUBECTL_PORT_FORWARD_WEBSOCKETS": websockets}
    proc = await asyncio.create_subprocess_exec(
        str(KUBECTL), f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'cache'}",
        "port-forward", "--address=127.0.0.1", "pod/web", f":{POD_PORT}", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        if not match:
            assert proc.stderr is not None
            raise AssertionError(line + (await proc.stderr.read()).decode())
        local = int(match.group(1))

        async def exchange(payload: bytes) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", local)
            writer.write(payload)
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer

        big = os.urandom(1 << 20)
        answers = await asyncio.gather(exchange(b"first"), exchange(big), exchange(b"third"))
        assert answers == [b"first", big, b"third"]
        await echo.wait_idle()
        assert UPGRADES == (["websocket"] if websockets == "true" else ["SPDY/3.1"])
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()
    await echo.wait_idle()

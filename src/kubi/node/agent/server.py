"""The agent's HTTPS endpoint, shaped like the kubelet's: logs, exec, attach, healthz.

    GET      /containerLogs/{namespace}/{pod}/{container}   follow, tailLines, sinceSeconds,
                                                           sinceTime, timestamps, previous,
                                                           limitBytes
    GET|POST /exec/{namespace}/{pod}[/{uid}]/{container}    command=..., stdin, stdout,
                                                           stderr, tty (WebSocket)
    GET|POST /attach/{namespace}/{pod}[/{uid}]/{container}  stdin, stdout, stderr, tty
    GET|POST /portForward/{namespace}/{pod}[/{uid}]         SPDY tunnelled in WebSocket, or
                                                           port=... (v4.channel.k8s.io)
    GET      /healthz

Only the API server calls it: TLS with a client certificate signed by the
cluster CA, and its CN must be one of `allowed_users`
(`kube-apiserver-kubelet-client`). What a path names is looked up through
`NodeEndpoints`, which the agent implements; failures are answered with a
Status object (400 for bad parameters and containers in the wrong state,
404 for unknown pods), which the API server relays to kubectl.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web

from kubi.node.agent import portforward, streams
from kubi.node.agent.logs import options_from_query, read_log
from kubi.node.agent.tls import API_SERVER_CLIENT, client_identity
from kubi.node.runtime.base import Runtime, RuntimeError_

log = logging.getLogger(__name__)


class EndpointError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


def bad_request(message: str) -> EndpointError:
    return EndpointError(400, "BadRequest", message)


def not_found(message: str) -> EndpointError:
    return EndpointError(404, "NotFound", message)


@dataclass
class LogTarget:
    path: str
    running: Callable[[], bool]


@dataclass
class StreamTarget:
    runtime: Runtime
    container_id: str


@dataclass
class PortForwardTarget:
    runtime: Runtime
    sandbox_id: str


class NodeEndpoints(Protocol):
    async def log_target(self, namespace: str, pod: str, container: str, *,
                         previous: bool) -> LogTarget: ...

    async def stream_target(self, namespace: str, pod: str, container: str,
                            uid: str = "") -> StreamTarget: ...

    async def port_forward_target(self, namespace: str, pod: str,
                                  uid: str = "") -> PortForwardTarget: ...


def status_body(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Failure", "message": message, "reason": reason,
                         "code": code})


def _error_response(err: EndpointError) -> web.Response:
    return web.Response(status=err.code, body=status_body(err.code, err.reason, err.message),
                        content_type="application/json")


class AgentServer:
    def __init__(self, endpoints: NodeEndpoints, *, bind: str = "0.0.0.0", port: int = 10250,
                 ssl_context: ssl.SSLContext | None = None,
                 allowed_users: frozenset[str] = frozenset({API_SERVER_CLIENT}),
                 clock: Callable[[], float] = time.time) -> None:
        self.endpoints = endpoints
        self.bind = bind
        self.port = port
        self.ssl_context = ssl_context
        self.allowed_users = allowed_users
        self.clock = clock
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._authorize])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        for verb in ("exec", "attach"):
            for path in (f"/{verb}/{{namespace}}/{{pod}}/{{container}}",
                         f"/{verb}/{{namespace}}/{{pod}}/{{uid}}/{{container}}"):
                app.router.add_route("GET", path, self._stream)
                app.router.add_route("POST", path, self._stream)
        for path in ("/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"):
            app.router.add_route("GET", path, self._port_forward)
            app.router.add_route("POST", path, self._port_forward)
        return app

    async def start(self) -> int:
        """Listen; the port actually bound (useful when asked for port 0)."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, ssl_context=self.ssl_context)
        await site.start()
        for address in self._runner.addresses:
            self.port = int(address[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- authorization

    @web.middleware
    async def _authorize(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.ssl_context is not None:
            transport = request.transport
            peer = transport.get_extra_info("peercert") if transport else None
            user, _groups = client_identity(peer)
            if user not in self.allowed_users:
                message = (f"Forbidden (user={user or 'system:anonymous'}, verb="
                           f"{request.method.lower()}, resource=nodes, subresource=proxy)")
                return _error_response(EndpointError(403, "Forbidden", message))
        try:
            return await handler(request)
        except EndpointError as err:
            return _error_response(err)

    # ---- handlers

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        try:
            opts = options_from_query(request.query, self.clock())
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        target = await self.endpoints.log_target(info["namespace"], info["pod"],
                                                 info["container"], previous=opts.previous)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            async for chunk in read_log(target.path, opts, running=target.running):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            return response
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        attach = request.path.startswith("/attach/")
        try:
            opts = streams.stream_options(request.query)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        if not attach and not opts.command:
            raise bad_request("you must specify at least one command for the container")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise bad_request("Upgrade request required")
        target = await self.endpoints.stream_target(info["namespace"], info["pod"],
                                                    info["container"], info.get("uid", ""))
        try:
            if attach:
                session = await target.runtime.attach(target.container_id, tty=opts.tty,
                                                      stdin=opts.stdin)
            else:
                session = await target.runtime.exec(target.container_id, opts.command,
                                                    tty=opts.tty, stdin=opts.stdin)
        except RuntimeError_ as exc:
            raise EndpointError(500, "InternalError", str(exc)) from None
        ws = web.WebSocketResponse(protocols=streams.PROTOCOLS, autoping=True,
                                   max_msg_size=0)
        try:
            await ws.prepare(request)
        except Exception:
            await session.close()
            raise
        if attach:
            await streams.bridge(ws, session, opts, finish=lambda code: streams.success_status())
        else:
            await streams.bridge(ws, session, opts,
                                 finish=lambda code: streams.exit_status(opts.command, code))
        return ws

    async def _port_forward(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise bad_request("Upgrade request required")
        target = await self.endpoints.port_forward_target(info["namespace"], info["pod"],
                                                          info.get("uid", ""))

        async def connect(port: int) -> portforward.Connection:
            return await target.runtime.port_forward(target.sandbox_id, port)

        try:
            # Messages name the sandbox, as the kubelet's streaming server does.
            return await portforward.serve_websocket(request, connect, pod=target.sandbox_id)
        except ValueError as exc:
            raise bad_request(str(exc)) from None

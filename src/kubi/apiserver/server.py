"""The API server process: HTTPS listener, authentication, error rendering,
the non-resource endpoints (health, version, discovery, OpenAPI), and the
start-up that opens the store, fills the watch cache and creates the objects
every cluster has (the system namespaces and the `kubernetes` Service).

Authentication is x509 client certificates signed by the cluster CA (CN is
the user, O the groups), or a bearer token: a service account token issued by
`serviceaccounts/token` (see `tokens.py`).
Health and version endpoints are public, as upstream's
`system:public-info-viewer` role makes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web

from kubi.api import catalog, hooks, openapi
from kubi.api.errors import AlreadyExists, StatusError, Unauthorized
from kubi.apiserver import discovery, handlers, tokens
from kubi.apiserver.cache import WatchCache
from kubi.apiserver.nodeproxy import NodeProxy
from kubi.apiserver.pki import PKI, serving_hosts
from kubi.apiserver.rest import SYSTEM_NAMESPACES, Registry, WriteOptions

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})
KUBERNETES_SERVICE_IP = "10.43.0.1"
UNIX_SOCKET_NAME = "api.sock"
UNIX_PATH_MAX = 108  # sizeof(sockaddr_un.sun_path), the terminating NUL included


@dataclass
class User:
    name: str
    groups: tuple[str, ...] = ()


@dataclass
class ServerConfig:
    data_dir: Path
    port: int = 6443
    bind: str = "0.0.0.0"
    advertise_address: str = "127.0.0.1"
    tokens: dict[str, User] = field(default_factory=dict)
    # Admission plugins turned off by name (`--disable-admission-plugins`).
    disabled_admission: tuple[str, ...] = ()


def _status_response(err: StatusError) -> web.Response:
    import orjson

    return web.Response(
        body=orjson.dumps(err.to_status()),
        status=err.code,
        headers={"Content-Type": "application/json"},
    )


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except StatusError as err:
        return _status_response(err)
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except ConnectionResetError:
        raise
    except Exception as exc:  # a bug: report it as upstream does, keep the server up
        log.error("internal error on %s %s:\n%s", request.method, request.path_qs,
                  traceback.format_exc())
        return _status_response(
            StatusError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc}",
                        {"causes": [{"message": str(exc)}]})
        )


LOCAL_USER = User("system:kubi-local", ("system:masters",))


def _over_unix_socket(request: web.Request) -> bool:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is not None and sock.family == socket.AF_UNIX


def _authenticate(request: web.Request) -> User | None:
    peercert = request.transport.get_extra_info("peercert") if request.transport else None
    if peercert:
        cn = ""
        groups: list[str] = []
        for rdn in peercert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
                elif key == "organizationName":
                    groups.append(value)
        if cn:
            return User(cn, tuple(groups))
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer ") and _over_unix_socket(request):
        # Only the data dir's owner can reach the socket: its own components.
        return LOCAL_USER
    if auth.startswith("Bearer "):
        token = auth[7:].strip()
        user = request.app["config"].tokens.get(token)
        if user is not None:
            return user
        signer = request.app.get("token_signer")
        if signer is not None:
            return tokens.authenticate(signer, request.app["registry"], token)
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler):
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    user = _authenticate(request)
    if user is None:
        raise Unauthorized()
    request["user"] = user
    return await handler(request)


# ------------------------------------------------------------------ routes

async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok", content_type="text/plain")


async def _version(request: web.Request) -> web.Response:
    return web.Response(body=discovery.version(), content_type="application/json")


async def _api_root(request: web.Request) -> web.Response:
    v = discovery.wants_aggregated(request.headers.get("Accept"))
    if v:
        ct = discovery.AGGREGATED_CT if v == "v2" else discovery.AGGREGATED_CT_BETA
        return web.Response(body=discovery.aggregated(True, v), headers={"Content-Type": ct})
    return web.Response(body=discovery.api_versions(), content_type="application/json")


async def _apis_root(request: web.Request) -> web.Response:
    v = discovery.wants_aggregated(request.headers.get("Accept"))
    if v:
        ct = discovery.AGGREGATED_CT if v == "v2" else discovery.AGGREGATED_CT_BETA
        return web.Response(body=discovery.aggregated(False, v), headers={"Content-Type": ct})
    return web.Response(body=discovery.api_group_list(), content_type="application/json")


async def _core_v1(request: web.Request) -> web.Response:
    return web.Response(body=discovery.resource_list("", "v1"), content_type="application/json")


async def _group(request: web.Request) -> web.Response:
    body = discovery.api_group(request.match_info["group"])
    if body is None:
        raise StatusError(404, "NotFound", "the server could not find the requested resource")
    return web.Response(body=body, content_type="application/json")


async def _group_version(request: web.Request) -> web.Response:
    body = discovery.resource_list(request.match_info["group"], request.match_info["version"])
    if body is None:
        raise StatusError(404, "NotFound", "the server could not find the requested resource")
    return web.Response(body=body, content_type="application/json")


def _cached(request: web.Request, body: bytes, etag: str, content_type: str) -> web.Response:
    quoted = f'"{etag}"'
    headers = {"ETag": quoted, "Cache-Control": "no-cache, private",
               "Vary": "Accept"}
    if request.headers.get("If-None-Match") == quoted:
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = content_type
    return web.Response(body=body, headers=headers)


async def _openapi_v2(request: web.Request) -> web.Response:
    accept = request.headers.get("Accept", "")
    if "protobuf" in accept and "json" not in accept:
        # kubectl falls back to its compiled-in patch metadata on a 404.
        raise StatusError(404, "NotFound", "the server could not find the requested resource")
    body, etag = openapi.openapi_v2()
    return _cached(request, body, etag, "application/json")


async def _openapi_v3_root(request: web.Request) -> web.Response:
    return web.Response(body=openapi.openapi_v3_root(), content_type="application/json")


async def _openapi_v3_gv(request: web.Request) -> web.Response:
    found = openapi.openapi_v3_group_version(request.match_info["path"])
    if found is None:
        raise StatusError(404, "NotFound", "the server could not find the requested resource")
    body, etag = found
    return _cached(request, body, etag, "application/json")


async def _not_found(request: web.Request) -> web.Response:
    raise StatusError(404, "NotFound", "the server could not find the requested resource")


def build_app(registry: Registry, config: ServerConfig) -> web.Application:
    app = web.Application(
        middlewares=[errors_middleware, auth_middleware],
        client_max_size=handlers.MAX_BODY + 1024,
    )
    app["registry"] = registry
    app["config"] = config
    r = app.router
    for path in ("/healthz", "/livez", "/readyz"):
        r.add_get(path, _health)
        r.add_get(path + "/{check:.*}", _health)
    r.add_get("/version", _version)
    r.add_get("/version/", _version)
    r.add_get("/api", _api_root)
    r.add_get("/api/", _api_root)
    r.add_get("/apis", _apis_root)
    r.add_get("/apis/", _apis_root)
    r.add_get("/api/v1", _core_v1)
    r.add_get("/api/v1/", _core_v1)
    r.add_get("/openapi/v2", _openapi_v2)
    r.add_get("/openapi/v3", _openapi_v3_root)
    r.add_get("/openapi/v3/{path:.+}", _openapi_v3_gv)
    r.add_get("/apis/{group}", _group)
    r.add_get("/apis/{group}/", _group)
    r.add_get("/apis/{group}/{version}", _group_version)
    r.add_get("/apis/{group}/{version}/", _group_version)
    r.add_route("*", "/api/v1/{tail:.+}", handlers.handle)
    r.add_route("*", "/apis/{group}/{version}/{tail:.+}", handlers.handle)
    r.add_route("*", "/{tail:.*}", _not_found)
    return app


# ---------------------------------------------------------------- start-up

def tls_context(pki: PKI, hosts: tuple[str, ...]) -> ssl.SSLContext:
    serving = pki.issue("apiserver", common_name="kube-apiserver", server=True, hosts=hosts)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(serving.cert, serving.key)
    ctx.load_verify_locations(pki.ca.cert)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


_KUBE_DNS = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "kube-dns", "namespace": "kube-system",
                 "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                            "kubernetes.io/name": "CoreDNS"}},
    "spec": {
        "clusterIP": "10.43.0.10",
        "selector": {"k8s-app": "kube-dns"},
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                  {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}],
    },
}


def kubelet_client_context(pki: PKI) -> ssl.SSLContext:
    """How the API server authenticates to node agents. Agents' serving
    certificates are checked against the cluster CA; host names are not, since
    an agent is reached by address (as upstream reaches kubelets)."""
    pair = pki.issue("apiserver-kubelet-client", common_name="kube-apiserver-kubelet-client",
                     organizations=("system:masters",))
    ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
    ctx.check_hostname = False
    ctx.load_cert_chain(pair.cert, pair.key)
    return ctx


async def bootstrap(registry: Registry) -> None:
    """Create what every cluster has, if it is not there yet."""
    opts = WriteOptions(field_manager="kube-apiserver", field_validation="Ignore")
    ns_rt = catalog.lookup("", "v1", "namespaces")
    for name in SYSTEM_NAMESPACES:
        if registry.find(ns_rt, "", name) is None:
            try:
                await registry.create(ns_rt, "", {"apiVersion": "v1", "kind": "Namespace",
                                                  "metadata": {"name": name}}, opts)
            except AlreadyExists:
                pass
    svc_rt = catalog.lookup("", "v1", "services")
    if registry.find(svc_rt, "kube-system", "kube-dns") is None:
        try:
            await registry.create(svc_rt, "kube-system", orjson.loads(orjson.dumps(_KUBE_DNS)),
                                  opts)
        except AlreadyExists:
            pass
    if registry.find(svc_rt, "default", "kubernetes") is None:
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": KUBERNETES_SERVICE_IP,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                           "targetPort": registry_port(registry)}],
                "sessionAffinity": "None",
            },
        }
        try:
            await registry.create(svc_rt, "default", service, opts)
        except AlreadyExists:
            pass


async def publish_kubernetes_endpoints(registry: Registry, port: int) -> None:
    """Keep `default/kubernetes` Endpoints and EndpointSlice pointing at this
    server, as upstream's endpoint reconciler does (loopback is not allowed in
    Endpoints, so a machine without another address gets none)."""
    from kubi.controllers.endpoints import kubernetes_endpoints, primary_ipv4

    address = primary_ipv4()
    if address is None:
        return
    endpoints, endpoint_slice = kubernetes_endpoints(address, port)
    opts = WriteOptions(field_manager="kube-apiserver", field_validation="Ignore")
    for api_version, plural, obj in (("v1", "endpoints", endpoints),
                                      ("discovery.k8s.io/v1", "endpointslices", endpoint_slice)):
        group, _, version = api_version.rpartition("/")
        rt = catalog.lookup(group, version, plural)
        name = obj["metadata"]["name"]
        if registry.find(rt, "default", name) is None:
            try:
                await registry.create(rt, "default", obj, opts)
            except AlreadyExists:
                pass
            continue

        def replace(current: dict, wanted: dict = obj) -> dict:
            for key, value in wanted.items():
                if key != "metadata":
                    current[key] = value
            current["metadata"]["labels"] = wanted["metadata"].get("labels", {})
            return current

        await registry.update_with(rt, "default", name, replace, opts)


def registry_port(registry: Registry) -> int:
    return getattr(registry, "port", 6443)


class APIServer:
    """Owns the store, the cache and the listener; `start()` then `stop()`."""

    def __init__(self, config: ServerConfig, store) -> None:
        self.config = config
        self.store = store
        self.cache = WatchCache(store)
        self.registry = Registry(store, self.cache, disabled_admission=config.disabled_admission)
        self.registry.port = config.port  # type: ignore[attr-defined]
        self.pki = PKI(config.data_dir / "pki")
        self._runner: web.AppRunner | None = None
        self.node_proxy: NodeProxy | None = None
        self.unix_socket: Path | None = None

    async def start(self) -> None:
        hooks.load()
        self.pki.ensure_ca()
        await self.store.open()
        await self.cache.start()
        await bootstrap(self.registry)
        await publish_kubernetes_endpoints(self.registry, self.config.port)
        app = build_app(self.registry, self.config)
        app["token_signer"] = tokens.TokenSigner(self.pki.dir)
        self.node_proxy = NodeProxy(kubelet_client_context(self.pki))
        app["node_proxy"] = self.node_proxy
        ctx = tls_context(self.pki, serving_hosts((self.config.advertise_address,)))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.bind, self.config.port, ssl_context=ctx,
                           backlog=1024, reuse_address=True)
        await site.start()
        await self._serve_unix_socket()

    async def _serve_unix_socket(self) -> None:
        """Also serve plain HTTP on `<data-dir>/api.sock` (mode 0600), for the
        components `kubi up` starts on this machine: they skip TLS on every
        request. Requests on it act as the data dir's owner. A path too long
        for a socket address means no socket; clients then use TLS."""
        path = self.config.data_dir / UNIX_SOCKET_NAME
        if len(os.fsencode(path)) >= UNIX_PATH_MAX or self._runner is None:
            return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        await web.UnixSite(self._runner, str(path), backlog=1024).start()
        os.chmod(path, 0o600)
        self.unix_socket = path

    async def stop(self) -> None:
        await self.cache.stop()
        if self.node_proxy is not None:
            await self.node_proxy.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.unix_socket is not None:
            with contextlib.suppress(FileNotFoundError):
                self.unix_socket.unlink()
            self.unix_socket = None
        await self.store.close()

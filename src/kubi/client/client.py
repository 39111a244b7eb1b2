"""An asyncio client for the Kubernetes REST API, shared by every kubi component.

`Client` holds one aiohttp session (connection pooling, TLS with the
kubeconfig's client certificate) and speaks JSON. Resources are addressed by
`Resource` (group, version, plural, namespaced), taken from the catalog or
built by hand for anything else. Failures come back as the same
`kubi.api.errors.StatusError` the server raised, rebuilt from the Status body,
so callers catch `NotFound`-style errors by `.reason` or `.code`.

There is deliberately no client-side rate limit: the server is the one to say
when it is busy (429).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import yaml

from kubi.api import catalog
from kubi.api.errors import StatusError
from kubi.client.unixhttp import UnixHTTP


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""

    @classmethod
    def of(cls, api_version: str, plural: str) -> Resource:
        group, _, version = api_version.rpartition("/")
        rt = catalog.lookup(group, version, plural)
        if rt is None:
            return cls(group, version, plural)
        return cls.from_type(rt)

    @classmethod
    def from_type(cls, rt: catalog.ResourceType) -> Resource:
        return cls(rt.group, rt.version, rt.plural, rt.namespaced, rt.kind)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str = "", sub: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


def error_from_response(status: int, body: bytes) -> StatusError:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        return StatusError(
            data.get("code", status),
            data.get("reason", ""),
            data.get("message", ""),
            data.get("details") or {},
        )
    return StatusError(status, "Unknown", body.decode(errors="replace")[:500])


@dataclass
class KubeConfig:
    server: str
    ca_data: bytes | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    token: str | None = None
    insecure: bool = False
    # The API server's local socket (the `kubi.dev/unix-socket` cluster
    # extension that `kubi up` writes into its components' kubeconfigs).
    unix_socket: str | None = None

    @classmethod
    def load(cls, path: str | Path, context: str | None = None) -> KubeConfig:
        doc = yaml.safe_load(Path(path).read_text())
        ctx_name = context or doc.get("current-context")
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next((u["user"] for u in doc.get("users", []) if u["name"] == ctx.get("user")), {})
        base = Path(path).parent

        def data(entry: dict, key: str) -> bytes | None:
            if entry.get(f"{key}-data"):
                return base64.b64decode(entry[f"{key}-data"])
            if entry.get(key):
                return (base / entry[key]).read_bytes()
            return None

        return cls(
            server=cluster["server"].rstrip("/"),
            ca_data=data(cluster, "certificate-authority"),
            cert_data=data(user, "client-certificate"),
            key_data=data(user, "client-key"),
            token=user.get("token"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            unix_socket=_unix_socket(cluster),
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            ctx.load_verify_locations(cadata=self.ca_data.decode())
        if self.cert_data and self.key_data:
            # ssl only loads a chain from files: write them to a private temp dir.
            with tempfile.TemporaryDirectory() as tmp:
                cert = Path(tmp) / "c.pem"
                key = Path(tmp) / "k.pem"
                cert.write_bytes(self.cert_data)
                key.write_bytes(self.key_data)
                ctx.load_cert_chain(cert, key)
        return ctx


UNIX_SOCKET_EXTENSION = "kubi.dev/unix-socket"


def _unix_socket(cluster: dict) -> str | None:
    for item in cluster.get("extensions") or ():
        if isinstance(item, dict) and item.get("name") == UNIX_SOCKET_EXTENSION:
            path = (item.get("extension") or {}).get("path")
            return str(path) if path else None
    return None


class RecentEvents:
    """Watch event lines decoded lately in this process, by their bytes.

    The API server encodes each change once and sends every watcher the same
    bytes, so the informers of several components in one process (controllers,
    scheduler, simulated nodes) receive identical lines; the second and later
    ones get the first one's decoded event instead of decoding it again. As with
    client-go's shared informers, watched objects are therefore shared and must
    be treated as read-only.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.hits = self.misses = 0
        self._decoded: dict[bytes, dict] = {}

    def decode(self, line: bytes) -> dict:
        event = self._decoded.get(line)
        if event is not None:
            self.hits += 1
        else:
            self.misses += 1
            event = orjson.loads(line)
            if len(self._decoded) >= self.capacity:
                # Oldest first: dicts keep insertion order.
                del self._decoded[next(iter(self._decoded))]
            self._decoded[line] = event
        return event


_RECENT_EVENTS = RecentEvents()


class Client:
    """One connection pool to one API server."""

    def __init__(self, config: KubeConfig, *, user_agent: str = "kubi", limit: int = 100) -> None:
        self.config = config
        self.user_agent = user_agent
        self._ssl = config.ssl_context()
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._unix: UnixHTTP | None = None
        self._base = config.server

    @classmethod
    def from_kubeconfig(cls, path: str | Path, **kw: Any) -> Client:
        return cls(KubeConfig.load(path), **kw)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = self._headers()
            socket_path = self.config.unix_socket
            connector: aiohttp.BaseConnector
            if socket_path and os.path.exists(socket_path):
                # The server's own machine: plain HTTP over its private socket,
                # without TLS on both ends of every request.
                connector = aiohttp.UnixConnector(path=socket_path, limit=self._limit)
                self._base = "http://localhost"
            else:
                connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._limit)
                self._base = self.config.server
            self._session = aiohttp.ClientSession(
                base_url=None,
                headers=headers,
                connector=connector,
                json_serialize=lambda o: orjson.dumps(o).decode(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        return self._session

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        return headers

    def _plain(self) -> UnixHTTP | None:
        """The lean path for single requests when the server's socket is here."""
        if self._unix is None:
            session = self.session
            if isinstance(session.connector, aiohttp.UnixConnector):
                self._unix = UnixHTTP(session.connector.path, self._headers(),
                                      limit=self._limit)
        return self._unix

    async def close(self) -> None:
        if self._unix is not None:
            await self._unix.close()
            self._unix = None
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _url(self, path: str, params: dict | None) -> str:
        # The base follows the connector the session chose (see `session`),
        # which every caller opens before building its URL.
        return self._base + _target(path, params)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = 60,
    ) -> Any:
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
        plain = self._plain()
        if plain is not None:
            answer = await plain.request(method, _target(path, params), data, content_type,
                                         timeout)
            return _answer(answer.status, answer.content_type, answer.body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self.session.request(
            method, self._url(path, params), data=data, headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            return _answer(resp.status, resp.content_type, await resp.read())

    # ---- verbs

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        return await self.request("GET", res.path(namespace, name))

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> dict:
        return await self.request("GET", res.path(namespace), params={
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "limit": limit, "continue": continue_, "resourceVersion": resource_version,
        })

    async def create(self, res: Resource, obj: dict, namespace: str | None = None,
                     *, field_manager: str | None = None, dry_run: bool = False) -> dict:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return await self.request("POST", res.path(ns), body=obj, params={
            "fieldManager": field_manager, "dryRun": "All" if dry_run else None})

    async def replace(self, res: Resource, obj: dict, *, subresource: str = "",
                      field_manager: str | None = None) -> dict:
        md = obj["metadata"]
        return await self.request("PUT", res.path(md.get("namespace"), md["name"], subresource),
                                  body=obj, params={"fieldManager": field_manager})

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    *, patch_type: str = "merge", subresource: str = "",
                    field_manager: str | None = None, force: bool | None = None) -> dict:
        content_type = {
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "strategic": "application/strategic-merge-patch+json",
            "apply": "application/apply-patch+yaml",
        }[patch_type]
        return await self.request("PATCH", res.path(namespace, name, subresource), body=patch,
                                  content_type=content_type, params={
                                      "fieldManager": field_manager,
                                      "force": None if force is None else str(force).lower()})

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: dict | None = None) -> dict:
        body: dict = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            body["preconditions"] = preconditions
        return await self.request("DELETE", res.path(namespace, name), body=body)

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[tuple[str, dict]]:
        """Yield (type, object) events until the server closes the stream."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if allow_bookmarks else None,
        }
        async with self.session.get(
            self._url(res.path(namespace), params),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
        ) as resp:
            if resp.status >= 400:
                raise error_from_response(resp.status, await resp.read())
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                if b"\n" not in chunk:
                    continue
                # One split per chunk: splitting line by line would copy the rest
                # of a large chunk once per event.
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = _RECENT_EVENTS.decode(line)
                    yield event["type"], event["object"]


def _target(path: str, params: dict | None) -> str:
    """The path with its query: the parameters that are set."""
    if params:
        clean = {k: v for k, v in params.items() if v is not None}
        if clean:
            return path + "?" + urlencode(clean, doseq=True)
    return path


def _answer(status: int, content_type: str, raw: bytes) -> Any:
    """A response's body as the caller gets it: a StatusError for a failure,
    decoded JSON, text, or None when empty."""
    if status >= 400:
        raise error_from_response(status, raw)
    if not raw:
        return None
    if content_type.startswith("application/json"):
        return orjson.loads(raw)
    return raw.decode()


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2)


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll an async predicate until it is true or the deadline passes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await predicate():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)

"""Plain HTTPS requests to a running kubi, below kubectl and the Python client.

Some acceptance checks need the raw exchange: the status code and Status body
of a malformed request, a request made without any client certificate, a watch
stream read line by line while the server is killed under it. `Direct` speaks
HTTP/1.1 over `http.client` with the cluster's CA, and presents the admin
client certificate from the generated kubeconfig unless told not to. Each
`Direct` owns one keep-alive connection, so give each thread its own.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.harness import Cluster

JSON = "application/json"


@dataclass
class Reply:
    """One HTTP response: status code, headers (lower-cased names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes
    warnings: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


def admin_credentials(cluster: Cluster) -> tuple[Path, Path]:
    """Write the kubeconfig's client certificate and key to files ssl can load."""
    cert_path = cluster.base_dir / "admin-client.crt"
    key_path = cluster.base_dir / "admin-client.key"
    if not cert_path.exists():
        user = yaml.safe_load(cluster.kubeconfig.read_text())["users"][0]["user"]
        cert_path.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key_path.touch(mode=0o600)
        key_path.write_bytes(base64.b64decode(user["client-key-data"]))
    return cert_path, key_path


def tls_context(
    cluster: Cluster,
    *,
    credentials: bool = True,
    client_cert: tuple[Path, Path] | None = None,
) -> ssl.SSLContext:
    """A context trusting the cluster CA, presenting the admin (or a given) certificate."""
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    chosen = client_cert or (admin_credentials(cluster) if credentials else None)
    if chosen is not None:
        context.load_cert_chain(str(chosen[0]), str(chosen[1]))
    return context


class Direct:
    """A keep-alive HTTPS connection to the cluster's API server."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        credentials: bool = True,
        client_cert: tuple[Path, Path] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._context = tls_context(cluster, credentials=credentials, client_cert=client_cert)
        self._port = cluster.port
        self._timeout = timeout
        self._conn: http.client.HTTPSConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Mapping[str, Any] | None = None,
        *,
        content_type: str = JSON,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request and read the whole response."""
        if isinstance(body, Mapping):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        sent = {"Accept": JSON, **(headers or {})}
        if body is not None:
            sent["Content-Type"] = content_type
        conn = self._connection()
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
        except BaseException:
            self.close()
            raise
        return Reply(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=data,
            warnings=response.headers.get_all("Warning") or [],
        )

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: bytes | str | Mapping[str, Any]) -> Reply:
        return self.request("POST", path, body)

    def watch(self, path: str) -> Iterator[dict[str, Any]]:
        """Open a watch on `path` (which carries ?watch=1) and yield its events.

        The iterator ends when the server closes the stream; a connection the
        server dropped without closing raises OSError or http.client errors.
        """
        conn = http.client.HTTPSConnection(
            "127.0.0.1", self._port, context=self._context, timeout=self._timeout
        )
        try:
            conn.request("GET", path, headers={"Accept": JSON})
            response = conn.getresponse()
            if response.status != 200:
                raise AssertionError(f"watch {path}: {response.status} {response.read()!r}")
            while line := response.readline():
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPSConnection:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(
                "127.0.0.1", self._port, context=self._context, timeout=self._timeout
            )
        return self._conn

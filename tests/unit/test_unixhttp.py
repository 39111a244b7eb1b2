"""The lean HTTP/1.1 client used over the API server's Unix socket: responses
with a length or in chunks, keep-alive reuse, a connection the server closed
while idle, limits, timeouts and broken answers — against a scripted server —
and, against the real server, many concurrent writers of one object."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from kubi.api.errors import StatusError
from kubi.cli.kubeconfig import kubeconfig_for, write_kubeconfig
from kubi.client.client import Client, Resource
from kubi.client.unixhttp import UnixHTTP
from tests.unit.apiserver_fixtures import started_server

NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")

Answer = Callable[[bytes], list[bytes] | None]


class ScriptedServer:
    """Reads one request at a time on each connection and writes what `answer` says
    (a list of byte pieces, sent with small pauses; None closes the connection)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.AbstractServer | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self, path: Path) -> None:
        self._server = await asyncio.start_unix_server(self._serve, str(path))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                pieces = self.answer(request)
                if pieces is None:
                    writer.close()
                    return
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.001)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def drop_idle(self) -> None:
        for writer in self._writers:
            writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        self.drop_idle()
        await self._server.wait_closed()


def ok(body: bytes, content_type: str = "application/json") -> list[bytes]:
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    # Split mid-header and mid-body, as a socket may deliver it.
    whole = head + body
    return [whole[:10], whole[10:len(head) + 3], whole[len(head) + 3:]]


@contextlib.asynccontextmanager
async def scripted(tmp_path: Path, answer: Answer
                   ) -> AsyncIterator[tuple[ScriptedServer, UnixHTTP]]:
    """A scripted server and a client of it (four connections at most), both
    closed at the end."""
    server = ScriptedServer(answer)
    await server.start(tmp_path / "s.sock")
    http = UnixHTTP(str(tmp_path / "s.sock"), {"User-Agent": "test"}, limit=4)
    try:
        yield server, http
    finally:
        await http.close()
        await server.stop()


async def test_a_response_with_a_length_is_read_and_the_connection_reused(tmp_path: Path) -> None:
    async with scripted(tmp_path, lambda req: ok(b'{"a": 1}')) as (server, http):
        for _ in range(3):
            answer = await http.request("GET", "/api/v1/namespaces?limit=1")
            assert (answer.status, answer.content_type, answer.body) == \
                (200, "application/json", b'{"a": 1}')
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"GET /api/v1/namespaces?limit=1 HTTP/1.1\r\n")
        assert b"Host: localhost\r\n" in first and b"User-Agent: test\r\n" in first


async def test_a_body_is_sent_with_its_type_and_length(tmp_path: Path) -> None:
    def echo(req: bytes) -> list[bytes]:
        return ok(req.split(b"\r\n\r\n", 1)[1])

    async with scripted(tmp_path, echo) as (server, http):
        answer = await http.request("PATCH", "/x", b'{"b": 2}', "application/merge-patch+json")
        assert answer.body == b'{"b": 2}'
        assert b"Content-Type: application/merge-patch+json\r\n" in server.requests[0]
        assert b"Content-Length: 8\r\n" in server.requests[0]
        await http.request("POST", "/empty")
        assert b"Content-Length: 0\r\n" in server.requests[1]


async def test_a_chunked_response_is_joined(tmp_path: Path) -> None:
    pieces = [b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n",
              b"Content-Type: application/json; charset=utf-8\r\n\r\n",
              b"4\r\n{\"a\"\r\n", b"3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\n", b"\r\n"]
    async with scripted(tmp_path, lambda req: pieces) as (server, http):
        answer = await http.request("GET", "/c")
        assert answer.status == 201
        assert answer.content_type.startswith("application/json")
        assert answer.body == b'{"a": 1}'
        # The connection is still usable afterwards.
        assert (await http.request("GET", "/c")).body == b'{"a": 1}'
        assert server.connections == 1


async def test_no_content_has_no_body(tmp_path: Path) -> None:
    no_content = [b"HTTP/1.1 204 No Content\r\n\r\n"]
    async with scripted(tmp_path, lambda req: no_content) as (_, http):
        answer = await http.request("DELETE", "/d")
        assert (answer.status, answer.body) == (204, b"")


async def test_a_connection_closed_while_idle_is_replaced(tmp_path: Path) -> None:
    async with scripted(tmp_path, lambda req: ok(b"{}")) as (server, http):
        await http.request("GET", "/a")
        server.drop_idle()
        await asyncio.sleep(0.05)
        assert (await http.request("GET", "/b")).status == 200
        assert server.connections == 2


async def test_a_request_the_server_drops_unanswered_on_a_fresh_connection_fails(
        tmp_path: Path) -> None:
    async with scripted(tmp_path, lambda req: None) as (server, http):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await http.request("POST", "/create", b"{}")
        # Sent once: a fresh connection is never retried (the server may have acted).
        assert len(server.requests) == 1


async def test_a_response_cut_short_is_a_payload_error(tmp_path: Path) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\""

    def answer(req: bytes) -> list[bytes] | None:
        return None if len(server.requests) > 1 else [head]

    async with scripted(tmp_path, answer) as (server, http):
        task = asyncio.create_task(http.request("GET", "/p"))
        await asyncio.sleep(0.05)
        server.drop_idle()
        with pytest.raises(aiohttp.ClientPayloadError):
            await task


async def test_garbage_is_a_payload_error(tmp_path: Path) -> None:
    async with scripted(tmp_path, lambda req: [b"SPDY/3 what\r\n\r\n"]) as (_, http):
        with pytest.raises(aiohttp.ClientPayloadError, match="malformed"):
            await http.request("GET", "/g")


async def test_a_slow_answer_times_out_and_its_connection_is_not_reused(tmp_path: Path) -> None:
    def answer(req: bytes) -> list[bytes] | None:
        return [] if b"/slow" in req else ok(b"{}")

    async with scripted(tmp_path, answer) as (server, http):
        with pytest.raises(TimeoutError):
            await http.request("GET", "/slow", timeout=0.1)
        assert (await http.request("GET", "/fast")).status == 200
        assert server.connections == 2


async def test_no_more_than_the_limit_of_connections(tmp_path: Path) -> None:
    async with scripted(tmp_path, lambda req: ok(b"{}")) as (server, http):
        answers = await asyncio.gather(*(http.request("GET", f"/{i}") for i in range(20)))
        assert all(a.status == 200 for a in answers)
        assert server.connections <= 4


async def test_a_missing_socket_is_a_connection_error(tmp_path: Path) -> None:
    http = UnixHTTP(str(tmp_path / "none.sock"), {})
    with pytest.raises(aiohttp.ClientOSError):
        await http.request("GET", "/")


async def test_concurrent_writers_of_one_object_all_succeed(tmp_path: Path) -> None:
    """Fifty merge patches of one namespace at once, none with a resourceVersion:
    each is retried until it lands, as upstream's guaranteed update does."""
    server, port = await started_server(tmp_path)
    try:
        path = tmp_path / "cm.kubeconfig"
        write_kubeconfig(kubeconfig_for(server.pki, f"https://127.0.0.1:{port}", "cm",
                                        "system:kube-controller-manager",
                                        unix_socket=server.unix_socket), path)
        async with Client.from_kubeconfig(path) as client:
            assert client._plain() is not None
            await asyncio.gather(*(
                client.patch(NAMESPACES, "default", {"metadata": {"labels": {f"k{i}": "v"}}})
                for i in range(50)))
            labels = (await client.get(NAMESPACES, "default"))["metadata"]["labels"]
            assert {f"k{i}" for i in range(50)} <= set(labels)
            # Errors come back as the server's Status, as over TLS.
            with pytest.raises(StatusError) as missing:
                await client.get(NAMESPACES, "nope")
            assert missing.value.code == 404
    finally:
        await server.stop()

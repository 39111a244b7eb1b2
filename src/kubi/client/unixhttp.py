"""Plain HTTP/1.1 requests over the API server's Unix socket, at little CPU per request.

The components and the local node agent send thousands of small requests a
second to the API server on the same machine (pod creates, bindings, status
patches). A general-purpose client spends more CPU building and parsing each
of them than the server needs to answer a GET, so for this one case — one
known server, HTTP/1.1 without TLS, bodies that fit in memory — `UnixHTTP`
writes the request bytes itself and parses the response in a small protocol:
a status line, headers, then a `Content-Length` or chunked body.

Connections are kept alive and reused, at most `limit` at once (callers beyond
that wait). A connection the server closed while idle is noticed by the
protocol and never reused; a request that went out on a reused connection and
got not a single byte back is sent once more on a fresh one, since the server
closed it without reading the request. Failures raise aiohttp's exception
types (`ClientOSError`, `ServerDisconnectedError`, `ClientPayloadError`) and
the built-in `TimeoutError`, which is what callers of `Client` already handle.
Streams (watches, logs) do not come here: they stay on the aiohttp session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

MAX_HEADER_BYTES = 64 * 1024


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its response parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False
        self._waiter: asyncio.Future[Response] | None = None
        self._reset()

    def _reset(self) -> None:
        self._buffer = bytearray()
        self._head: tuple[int, str, int | None, bool, bool] | None = None
        self._chunks: list[bytes] = []
        self._received = False

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._received:
                waiter.set_exception(aiohttp.ClientPayloadError(
                    "the API server closed the connection in the middle of a response"))
            else:
                waiter.set_exception(aiohttp.ServerDisconnectedError())

    def data_received(self, data: bytes) -> None:
        self._received = True
        self._buffer += data
        try:
            self._parse()
        except ValueError as exc:
            self._fail(aiohttp.ClientPayloadError(
                f"malformed response from the API server: {exc}"))

    def eof_received(self) -> bool | None:
        return False

    # ---- use

    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._reset()
        self._waiter = asyncio.get_running_loop().create_future()
        self.used = True
        self.transport.write(request)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def got_bytes(self) -> bool:
        return self._received

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def _parse(self) -> None:
        buf = self._buffer
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise ValueError("response headers too long")
                return
            self._head = _parse_head(bytes(buf[:end]))
            del buf[:end + 4]
        status, content_type, length, chunked, close = self._head
        if chunked:
            body = self._parse_chunks()
            if body is None:
                return
        else:
            if length is None:
                # Neither length nor chunks: the body runs to the end of the
                # connection, which the server does not do for our requests.
                raise ValueError("response without a length")
            if len(buf) < length:
                return
            body = bytes(buf[:length])
            del buf[:length]
        if buf:
            raise ValueError("bytes after the response")
        waiter, self._waiter = self._waiter, None
        if close:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(status, content_type, body))

    def _parse_chunks(self) -> bytes | None:
        buf = self._buffer
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return None
            size = int(bytes(buf[:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                # The last chunk, then (trailers and) an empty line.
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return None
                del buf[:trailer_end + 4]
                body = b"".join(self._chunks)
                self._chunks = []
                return body
            start = line_end + 2
            if len(buf) < start + size + 2:
                return None
            self._chunks.append(bytes(buf[start:start + size]))
            del buf[:start + size + 2]


def _parse_head(head: bytes) -> tuple[int, str, int | None, bool, bool]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {lines[0][:80]!r}")
    status = int(parts[1])
    content_type = ""
    length: int | None = None
    chunked = False
    close = parts[0] == b"HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            length = int(value)
        elif name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = value.lower() == b"close"
    if status in (204, 304) or 100 <= status < 200:
        length = 0
    return status, content_type, length, chunked, close


class UnixHTTP:
    """A small pool of keep-alive HTTP/1.1 connections to one Unix socket."""

    def __init__(self, path: str, headers: dict[str, str], *, limit: int = 100) -> None:
        self.path = path
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in
                              {"Host": "localhost", **headers}.items()).encode("latin-1")
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    async def request(self, method: str, target: str, body: bytes | None = None,
                      content_type: str | None = None,
                      timeout: float | None = None) -> Response:
        head = f"{method} {target} HTTP/1.1\r\n".encode("latin-1") + self._fixed
        if body is not None:
            head += (f"Content-Type: {content_type or 'application/json'}\r\n"
                     f"Content-Length: {len(body)}\r\n").encode("latin-1")
        elif method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: 0\r\n"
        request = head + b"\r\n" + body if body is not None else head + b"\r\n"
        async with self._slots:
            if timeout is None:
                return await self._exchange(request)
            async with asyncio.timeout(timeout):
                return await self._exchange(request)

    async def _exchange(self, request: bytes) -> Response:
        conn = self._take()
        reused = conn is not None
        if conn is None:
            conn = await self._connect()
        try:
            try:
                response = await conn.send(request)
            except aiohttp.ServerDisconnectedError:
                if not reused or conn.got_bytes:
                    raise
                # Closed by the server while idle, before it read this request.
                conn = await self._connect()
                response = await conn.send(request)
        except BaseException:
            conn.close()
            raise
        if conn.closed or self._closed:
            conn.close()
        else:
            self._idle.append(conn)
        return response

    def _take(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_unix_connection(_Connection, self.path)
        except OSError as exc:
            raise aiohttp.ClientOSError(exc.errno, f"cannot connect to {self.path}: {exc}") \
                from exc
        return conn

    async def close(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()

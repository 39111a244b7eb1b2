"""Asking an upstream resolver, for names cluster DNS does not own.

kubi never forwards unless told where to: `Upstream("10.0.0.2:53")` is the
explicit opt-in. A query goes out over UDP with a fresh id (so a late answer
to an earlier query can never be taken for this one) and is retried over
TCP when the answer comes back truncated. Failures raise `UpstreamError`;
the caller turns them into SERVFAIL.
"""

from __future__ import annotations

import asyncio
import secrets
import struct

from dnslib import DNSRecord  # type: ignore[import-untyped]

DEFAULT_PORT = 53


class UpstreamError(Exception):
    """The upstream resolver could not be reached or answered nonsense."""


def parse_address(address: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 address, as (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or DEFAULT_PORT)
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, int(port)
    return address, DEFAULT_PORT


class _OneAnswer(asyncio.DatagramProtocol):
    def __init__(self, query_id: int) -> None:
        self.query_id = query_id
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 2 and struct.unpack("!H", data[:2])[0] == self.query_id \
                and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


class Upstream:
    def __init__(self, address: str, *, timeout: float = 2.0) -> None:
        self.host, self.port = parse_address(address)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Upstream({self.host}:{self.port})"

    async def query(self, request: DNSRecord, *, tcp: bool = False) -> DNSRecord:
        """The upstream's answer to `request`, carrying the request's own id."""
        outgoing = DNSRecord.parse(request.pack())
        outgoing.header.id = secrets.randbelow(0x10000)
        try:
            async with asyncio.timeout(self.timeout):
                data = await (self._tcp(outgoing) if tcp else self._udp(outgoing))
                answer = DNSRecord.parse(data)
                if answer.header.tc and not tcp:
                    answer = DNSRecord.parse(await self._tcp(outgoing))
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise UpstreamError(f"{self!r}: {exc!r}") from exc
        except Exception as exc:  # dnslib raises a variety of errors on garbage
            raise UpstreamError(f"{self!r}: unreadable answer: {exc!r}") from exc
        answer.header.id = request.header.id
        return answer

    async def _udp(self, outgoing: DNSRecord) -> bytes:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _OneAnswer(outgoing.header.id), remote_addr=(self.host, self.port))
        try:
            transport.sendto(outgoing.pack())
            return await protocol.answer
        finally:
            transport.close()

    async def _tcp(self, outgoing: DNSRecord) -> bytes:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            packet = outgoing.pack()
            writer.write(struct.pack("!H", len(packet)) + packet)
            await writer.drain()
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(size)
        finally:
            writer.close()

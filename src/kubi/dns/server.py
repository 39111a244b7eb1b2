"""DNSServer: cluster DNS on the wire, over UDP and TCP on one address and port.

Each datagram (or each length-prefixed message on a TCP connection) is
parsed with dnslib, answered by the resolver, and packed back. The server
owns the transport rules: FORMERR for packets it cannot parse, an EDNS0 OPT
record in the answer when the question had one, and UDP answers cut to the
client's buffer (512 bytes without EDNS0) with the TC bit set, keeping as
many whole answer records as fit so clients that never retry over TCP still
get something. TCP connections idle for 10 seconds are closed.

`start()` binds both sockets (port 0 picks a free port, the same for both);
`stop()` closes them and cancels the answers still in flight.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Coroutine
from typing import Any, Protocol

from dnslib import EDNS0, QTYPE, RCODE, DNSHeader, DNSRecord  # type: ignore[import-untyped]

log = logging.getLogger(__name__)

PLAIN_UDP_SIZE = 512
MAX_UDP_SIZE = 4096
TCP_IDLE_TIMEOUT = 10.0
BIND_ATTEMPTS = 20


class Resolver(Protocol):
    async def resolve(self, request: DNSRecord, *, tcp: bool = False) -> DNSRecord: ...


def _client_udp_size(request: DNSRecord) -> int | None:
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return max(PLAIN_UDP_SIZE, min(int(rr.rclass), MAX_UDP_SIZE))
    return None


def _formerr(data: bytes) -> bytes | None:
    if len(data) < 2:
        return None
    (query_id,) = struct.unpack("!H", data[:2])
    packed: bytes = DNSRecord(DNSHeader(id=query_id, qr=1, rcode=RCODE.FORMERR)).pack()
    return packed


def fit(message: DNSRecord, limit: int) -> bytes:
    """Pack `message` into at most `limit` bytes, dropping records and setting TC if needed."""
    packed: bytes = message.pack()
    if len(packed) <= limit:
        return packed
    message.ar = [rr for rr in message.ar if rr.rtype == QTYPE.OPT]
    message.auth = []
    message.header.tc = 1
    answers = list(message.rr)
    low, high = 0, len(answers)  # the most answers that fit lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        message.rr = answers[:middle]
        if len(message.pack()) <= limit:
            low = middle
        else:
            high = middle - 1
    message.rr = answers[:low]
    packed = message.pack()
    return packed


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._spawn(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = await self.server.handle(data, tcp=False)
        if packet is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(packet, addr)


class DNSServer:
    def __init__(self, resolver: Resolver, host: str = "127.0.0.1", port: int = 53) -> None:
        self.resolver = resolver
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(BIND_ATTEMPTS):
            tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
            port = tcp.sockets[0].getsockname()[1]
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    lambda: _UDP(self), local_addr=(self.host, port))
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if self.port or attempt == BIND_ATTEMPTS - 1:
                    raise
                continue  # the free TCP port is taken for UDP: pick another
            self._tcp, self._udp, self.port = tcp, udp, port
            log.info("cluster DNS listening on %s:%d (udp, tcp)", self.host, port)
            return

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
            self._tcp = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle(self, data: bytes, *, tcp: bool) -> bytes | None:
        """The packed answer to one packed query; None when nothing should be sent."""
        try:
            request = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - dnslib raises many error types on malformed input
            return _formerr(data)
        if request.header.qr:
            return None  # a response sent to us: answering could start a loop
        size = _client_udp_size(request)
        try:
            response = await self.resolver.resolve(request, tcp=tcp)
            if size is not None and not any(rr.rtype == QTYPE.OPT for rr in response.ar):
                response.add_ar(EDNS0(udp_len=size))
            if tcp:
                packed: bytes = response.pack()
                return packed
            return fit(response, size or PLAIN_UDP_SIZE)
        except Exception:
            log.exception("cluster DNS: answering %s failed", request.q.qname)
            failed = DNSRecord(DNSHeader(id=request.header.id, qr=1, rcode=RCODE.SERVFAIL),
                               questions=list(request.questions))
            packed = failed.pack()
            return packed

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    (size,) = struct.unpack("!H", await reader.readexactly(2))
                    data = await reader.readexactly(size)
                packet = await self.handle(data, tcp=True)
                if packet is None:
                    continue
                writer.write(struct.pack("!H", len(packet)) + packet)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

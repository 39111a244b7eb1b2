"""DNSServer on loopback: real UDP and TCP queries with dnslib's client, forwarding, truncation.

Every packet here stays on 127.0.0.1; the "upstream" is a second DNSServer
in this process answering from a fixed table.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from dnslib import CNAME, EDNS0, QTYPE, RCODE, RR, A, DNSRecord

from kubi.dns import ClusterDNS, DNSServer
from kubi.dns.answer import response_to
from kubi.dns.cluster import shuffle_addresses
from tests.unit.dns_fixtures import endpoint, endpoint_slice, rr_text, seed_table, service


class FixedUpstream:
    """Answers `example.com`/`www.example.com` A with 192.0.2.1 and reverse names with a PTR."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def resolve(self, request: DNSRecord, *, tcp: bool = False) -> DNSRecord:
        name = str(request.q.qname)
        self.asked.append(name)
        if name in ("example.com.", "www.example.com.") and request.q.qtype == QTYPE.A:
            reply = response_to(request)
            reply.add_answer(RR(name, QTYPE.A, ttl=60, rdata=A("192.0.2.1")))
            return reply
        if name.endswith(".in-addr.arpa."):
            reply = response_to(request)
            reply.add_answer(*RR.fromZone(f"{name} 60 IN PTR host.example.com."))
            return reply
        return response_to(request, RCODE.NXDOMAIN)


def cluster(upstream: str | None = None) -> ClusterDNS:
    return ClusterDNS(None, upstream=upstream, round_robin=False, nameservers=("10.43.0.10",),
                      table=seed_table())


@pytest.fixture
async def served() -> AsyncIterator[tuple[ClusterDNS, DNSServer]]:
    dns = cluster()
    server = DNSServer(dns, "127.0.0.1", 0)
    await server.start()
    try:
        yield dns, server
    finally:
        await server.stop()


async def query(port: int, name: str, qtype: str = "A", *, tcp: bool = False,
                edns: int | None = None) -> DNSRecord:
    question = DNSRecord.question(name, qtype)
    if edns is not None:
        question.add_ar(EDNS0(udp_len=edns))
    data = await asyncio.to_thread(question.send, "127.0.0.1", port, tcp=tcp, timeout=5)
    return DNSRecord.parse(data)


@pytest.mark.parametrize("tcp", [False, True])
async def test_seed_names_over_the_wire(served: tuple[ClusterDNS, DNSServer], tcp: bool) -> None:
    _, server = served
    answer = await query(server.port, "web-demo-0.nginx-demo.demo.svc.cluster.local", tcp=tcp)
    assert [rr_text(r) for r in answer.rr] == [
        "web-demo-0.nginx-demo.demo.svc.cluster.local. 5 A 10.244.0.39"]
    answer = await query(server.port, "nginx-demo.demo.svc.cluster.local", tcp=tcp)
    assert sorted(str(r.rdata) for r in answer.rr) == ["10.244.0.39", "10.244.0.40"]
    answer = await query(server.port, "nope.demo.svc.cluster.local", tcp=tcp)
    assert answer.header.rcode == RCODE.NXDOMAIN and len(answer.auth) == 1


async def test_tcp_connection_carries_several_queries(served: tuple[ClusterDNS, DNSServer]) -> None:
    _, server = served
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for name in ("kubernetes.default.svc.cluster.local", "nginx-demo.demo.svc.cluster.local"):
            packet = DNSRecord.question(name).pack()
            writer.write(len(packet).to_bytes(2, "big") + packet)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            answer = DNSRecord.parse(await reader.readexactly(size))
            assert answer.header.rcode == RCODE.NOERROR and answer.rr
    finally:
        writer.close()


async def test_large_udp_answers_are_cut_to_fit_and_flagged(
        served: tuple[ClusterDNS, DNSServer]) -> None:
    dns, server = served
    dns.table.apply_service(service("big", "demo"))
    dns.table.apply_endpoint_slice(endpoint_slice(
        "big-1", "demo", "big", [endpoint(f"10.244.9.{i}") for i in range(1, 101)]))
    name = "big.demo.svc.cluster.local"
    plain = await query(server.port, name)
    assert plain.header.tc == 1 and 0 < len(plain.rr) < 100 and len(plain.pack()) <= 512
    bigger = await query(server.port, name, edns=4096)
    assert bigger.header.tc == 0 and len(bigger.rr) == 100
    assert [rr.rclass for rr in bigger.ar if rr.rtype == QTYPE.OPT] == [4096]
    full = await query(server.port, name, tcp=True)
    assert full.header.tc == 0 and len(full.rr) == 100


async def test_garbage_gets_formerr(served: tuple[ClusterDNS, DNSServer]) -> None:
    _, server = served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(b"\x12\x34garbage", ("127.0.0.1", server.port))
        data, _ = await asyncio.to_thread(sock.recvfrom, 512)
    answer = DNSRecord.parse(data)
    assert (answer.header.id, answer.header.rcode) == (0x1234, RCODE.FORMERR)


async def test_without_upstream_outside_names_are_refused(
        served: tuple[ClusterDNS, DNSServer]) -> None:
    _, server = served
    answer = await query(server.port, "example.com")
    assert answer.header.rcode == RCODE.REFUSED


async def test_with_upstream_outside_names_are_forwarded() -> None:
    fake = FixedUpstream()
    upstream = DNSServer(fake, "127.0.0.1", 0)
    await upstream.start()
    dns = cluster(f"127.0.0.1:{upstream.port}")
    dns.table.apply_service(service("ext", "demo", "", type="ExternalName",
                                    externalName="www.example.com", ports=[]))
    server = DNSServer(dns, "127.0.0.1", 0)
    await server.start()
    try:
        answer = await query(server.port, "example.com")
        assert [rr_text(r) for r in answer.rr] == ["example.com. 60 A 192.0.2.1"]
        answer = await query(server.port, "ext.demo.svc.cluster.local", tcp=True)
        assert [rr_text(r) for r in answer.rr] == [
            "ext.demo.svc.cluster.local. 5 CNAME www.example.com.",
            "www.example.com. 60 A 192.0.2.1"]
        answer = await query(server.port, "4.3.2.1.in-addr.arpa", "PTR")
        assert [rr_text(r) for r in answer.rr] == ["4.3.2.1.in-addr.arpa. 60 PTR host.example.com."]
        # Cluster misses stay ours: no forwarding inside the cluster domain.
        answer = await query(server.port, "nope.demo.svc.cluster.local")
        assert answer.header.rcode == RCODE.NXDOMAIN
        assert "nope.demo.svc.cluster.local." not in fake.asked
    finally:
        await server.stop()
        await upstream.stop()


async def test_unreachable_upstream_is_servfail() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        silent = sock.getsockname()[1]  # bound but never read: queries time out
        dns = cluster(f"127.0.0.1:{silent}")
        assert dns.upstream is not None
        dns.upstream.timeout = 0.2
        answer = await dns.resolve(DNSRecord.question("example.com"))
    assert answer.header.rcode == RCODE.SERVFAIL


async def test_stop_releases_the_port() -> None:
    server = DNSServer(cluster(), "127.0.0.1", 0)
    await server.start()
    port = server.port
    await server.stop()
    again = DNSServer(cluster(), "127.0.0.1", port)
    await again.start()
    await again.stop()


def test_shuffle_keeps_cnames_first() -> None:
    message = DNSRecord.question("x.demo.svc.cluster.local").reply()
    message.add_answer(RR("x.demo.svc.cluster.local.", QTYPE.CNAME, ttl=5,
                          rdata=CNAME("y.demo.svc.cluster.local.")))
    for i in range(1, 6):
        message.add_answer(RR("y.demo.svc.cluster.local.", QTYPE.A, ttl=5, rdata=A(f"10.0.0.{i}")))
    shuffle_addresses(message)
    assert message.rr[0].rtype == QTYPE.CNAME
    assert sorted(str(r.rdata) for r in message.rr[1:]) == [f"10.0.0.{i}" for i in range(1, 6)]


async def test_a_failing_resolver_gives_servfail() -> None:
    class Broken:
        async def resolve(self, request: DNSRecord, *, tcp: bool = False) -> DNSRecord:
            raise RuntimeError("boom")

    server = DNSServer(Broken(), "127.0.0.1", 0)
    packet = await server.handle(DNSRecord.question("x.demo.svc.cluster.local").pack(), tcp=False)
    assert packet is not None
    assert DNSRecord.parse(packet).header.rcode == RCODE.SERVFAIL


async def test_responses_sent_to_the_server_are_ignored() -> None:
    server = DNSServer(cluster(), "127.0.0.1", 0)
    stray = DNSRecord.question("x.demo.svc.cluster.local").reply().pack()
    assert await server.handle(stray, tcp=False) is None

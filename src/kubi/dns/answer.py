"""Turning one DNS question into one DNS response, authoritatively.

`Authority.answer(request)` is pure: it reads the record table through a
`Lookup` and returns a `Reply` holding the response message. It serves the
cluster domain and the two reverse zones. Names outside them come back with
`outside` set (REFUSED unless the caller forwards them); names it could not
find in a reverse zone come back with `name_error` set, so the caller may
hand them to an upstream (CoreDNS's `fallthrough in-addr.arpa ip6.arpa`).
CNAMEs to names outside the domain are listed in `external` for the caller
to chase upstream; without an upstream the CNAME is the answer.

Response codes follow CoreDNS: NXDOMAIN for names that cannot exist,
NOERROR with an empty answer for names that exist without that type, both
with the zone's SOA in the authority section; SERVFAIL instead of NXDOMAIN
until the caches have synced. Responses are authoritative (aa) and never
offer recursion (no ra).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dnslib import (  # type: ignore[import-untyped]
    AAAA,
    CNAME,
    NS,
    OPCODE,
    PTR,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    TXT,
    A,
    DNSHeader,
    DNSRecord,
)

from kubi.dns.lookup import Lookup, Member, NoSuchName
from kubi.dns.names import REVERSE_ZONES, address_from_reverse, is_ip, is_ipv4, split_zone

DNS_SCHEMA_VERSION = "1.1.0"
SCHEMA_VERSION_TTL = 28800
MAX_CNAME_CHAIN = 10
# SOA timers as CoreDNS sets them; only the minimum (negative-caching TTL) follows the TTL.
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400


@dataclass
class Reply:
    message: DNSRecord
    outside: bool = False
    name_error: bool = False
    reverse_zone: bool = False
    external: list[str] = field(default_factory=list)


def response_to(request: DNSRecord, rcode: int = RCODE.NOERROR, *, aa: bool = True) -> DNSRecord:
    """An empty response echoing the request's id, opcode, rd flag and question."""
    header = DNSHeader(id=request.header.id, qr=1, opcode=request.header.opcode,
                       aa=int(aa), rd=request.header.rd, rcode=rcode)
    return DNSRecord(header, questions=list(request.questions))


class Authority:
    """The authoritative answers for the cluster domain and the reverse zones."""

    def __init__(self, lookup: Lookup, *, ttl: int = 5,
                 synced: Callable[[], bool] = lambda: True) -> None:
        self.lookup = lookup
        self.ttl = ttl
        self.synced = synced
        self._domain = tuple(lookup.domain.split("."))
        self._zones = [self._domain] + [tuple(z.split(".")) for z in REVERSE_ZONES]

    def answer(self, request: DNSRecord) -> Reply:
        if request.header.opcode != OPCODE.QUERY:
            return Reply(response_to(request, RCODE.NOTIMP, aa=False))
        if len(request.questions) != 1:
            return Reply(response_to(request, RCODE.FORMERR, aa=False))
        question = request.q
        raw = tuple(label.decode("ascii", "replace") for label in question.qname.label)
        labels = tuple(label.lower() for label in raw)
        for zone in self._zones:
            base = split_zone(labels, zone)
            if base is not None:
                break
        else:
            return Reply(response_to(request, RCODE.REFUSED, aa=False), outside=True)
        if question.qtype in (QTYPE.AXFR, QTYPE.IXFR):
            return Reply(response_to(request, RCODE.REFUSED, aa=False))
        zone_name = ".".join(raw[len(base):]) + "."  # the zone as the client spelled it
        reply = Reply(response_to(request), reverse_zone=zone is not self._domain)
        qname, qtype = question.qname, question.qtype
        try:
            if reply.reverse_zone:
                answers, extra = self._reverse_records(qname, qtype, base, zone_name)
            else:
                answers, extra = self._domain_records(qname, qtype, base, zone_name,
                                                      reply.external)
        except NoSuchName:
            reply.name_error = True
            rcode = RCODE.NXDOMAIN if self.synced() else RCODE.SERVFAIL
            reply.message.header.rcode = rcode
            reply.message.add_auth(self._soa(zone_name))
            return reply
        if not answers:
            reply.message.add_auth(self._soa(zone_name))
        for rr in answers:
            reply.message.add_answer(rr)
        for rr in extra:
            reply.message.add_ar(rr)
        return reply

    # ---- the cluster domain

    def _domain_records(self, qname: object, qtype: int, base: tuple[str, ...], zone: str,
                        external: list[str]) -> tuple[list[RR], list[RR]]:
        if qtype in (QTYPE.A, QTYPE.AAAA):
            return self._addresses(qname, qtype, base, zone, [], external), []
        if qtype == QTYPE.SRV:
            return self._srv(qname, base, zone)
        if qtype == QTYPE.TXT:
            return self._txt(qname, base, zone), []
        if qtype == QTYPE.CNAME:
            names = [m.host for m in self._members(base, zone)[:1] if not is_ip(m.host)]
            return [RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=CNAME(n + ".")) for n in names], []
        if qtype == QTYPE.PTR:
            hosts = dict.fromkeys(m.host for m in self._members(base, zone) if not is_ip(m.host))
            return [RR(qname, QTYPE.PTR, ttl=self.ttl, rdata=PTR(h + ".")) for h in hosts], []
        if qtype == QTYPE.SOA:
            return ([self._soa(zone)] if not base else []), []
        if qtype == QTYPE.NS and not base:
            return self._ns(qname, zone)
        # Any other type: the name's existence alone decides NXDOMAIN or NODATA.
        self._members(base, zone)
        return [], []

    def _members(self, base: tuple[str, ...], zone: str) -> list[Member]:
        if base == ("ns", "dns"):
            return self.lookup.nameserver_members(zone, owner=f"ns.dns.{zone}")
        return self.lookup.members(base, zone)

    def _addresses(self, qname: object, qtype: int, base: tuple[str, ...], zone: str,
                   chain: list[str], external: list[str]) -> list[RR]:
        records: list[RR] = []
        seen: set[str] = set()
        asked = str(qname).rstrip(".").lower()
        for member in self._members(base, zone):
            if is_ip(member.host):
                if member.host in seen or is_ipv4(member.host) != (qtype == QTYPE.A):
                    continue
                seen.add(member.host)
                rdata = A(member.host) if qtype == QTYPE.A else AAAA(member.host)
                records.append(RR(qname, qtype, ttl=self.ttl, rdata=rdata))
                continue
            target = member.host.lower()
            if target == asked or target in chain or len(chain) > MAX_CNAME_CHAIN:
                continue  # a loop, or a chain too long to follow
            alias = RR(qname, QTYPE.CNAME, ttl=self.ttl, rdata=CNAME(member.host + "."))
            inner = split_zone(tuple(target.split(".")), self._domain)
            if inner is None:
                records.append(alias)
                external.append(member.host)
                continue
            try:
                followed = self._addresses(member.host + ".", qtype, inner,
                                           self.lookup.domain + ".", chain + [target], external)
            except NoSuchName:
                continue
            if followed:
                records.append(alias)
                records.extend(followed)
        return records

    def _srv(self, qname: object, base: tuple[str, ...], zone: str) -> tuple[list[RR], list[RR]]:
        members = [m for m in self._members(base, zone) if is_ip(m.host)]
        # Every member shares priority 0, so the weights split 100 evenly among them.
        weight = max(1, 100 // len(members)) if members else 100
        records: list[RR] = []
        extra: list[RR] = []
        seen_srv: set[tuple[str, int]] = set()
        seen_addr: set[tuple[str, str]] = set()
        for m in members:
            if m.port == -1:
                continue
            if (m.target, m.port) not in seen_srv:
                seen_srv.add((m.target, m.port))
                records.append(RR(qname, QTYPE.SRV, ttl=self.ttl,
                                  rdata=SRV(0, weight, m.port, m.target)))
            if (m.target, m.host) not in seen_addr:
                seen_addr.add((m.target, m.host))
                extra.append(self._address_rr(m.target, m.host))
        return records, extra

    def _txt(self, qname: object, base: tuple[str, ...], zone: str) -> list[RR]:
        if base == ("dns-version",):
            return [RR(qname, QTYPE.TXT, ttl=SCHEMA_VERSION_TTL, rdata=TXT(DNS_SCHEMA_VERSION))]
        try:
            exists = bool(self.lookup.members(base, zone))
        except NoSuchName:
            exists = False
        if not exists:
            # CoreDNS holds no TXT data, and calls a name without data nonexistent here.
            raise NoSuchName(".".join(base))
        return []

    def _ns(self, qname: object, zone: str) -> tuple[list[RR], list[RR]]:
        records: list[RR] = []
        extra: list[RR] = []
        for m in self.lookup.nameserver_members(zone):
            extra.append(self._address_rr(m.target, m.host))
            if all(str(r.rdata.label) != m.target for r in records):
                records.append(RR(qname, QTYPE.NS, ttl=self.ttl, rdata=NS(m.target)))
        return records, extra

    # ---- the reverse zones

    def _reverse_records(self, qname: object, qtype: int, base: tuple[str, ...],
                         zone: str) -> tuple[list[RR], list[RR]]:
        if not base:
            if qtype == QTYPE.SOA:
                return [self._soa(zone)], []
            if qtype == QTYPE.NS:
                return self._ns(qname, self.lookup.domain + ".")
            return [], []
        if qtype == QTYPE.SOA:
            return [], []
        address = address_from_reverse(base, zone.rstrip(".").lower())
        if qtype != QTYPE.PTR or address is None:
            raise NoSuchName(".".join(base))
        targets = self.lookup.reverse(address)
        if not targets:
            raise NoSuchName(address)
        return [RR(qname, QTYPE.PTR, ttl=self.ttl, rdata=PTR(t)) for t in targets], []

    # ---- shared records

    def _address_rr(self, name: str, ip: str) -> RR:
        if is_ipv4(ip):
            return RR(name, QTYPE.A, ttl=self.ttl, rdata=A(ip))
        return RR(name, QTYPE.AAAA, ttl=self.ttl, rdata=AAAA(ip))

    def _soa(self, zone: str) -> RR:
        times = (self.lookup.table.serial, SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, self.ttl)
        return RR(zone, QTYPE.SOA, ttl=min(self.ttl, 300),
                  rdata=SOA(f"ns.dns.{zone}", f"hostmaster.{zone}", times))

"""Objects and helpers shared by the cluster DNS tests.

The seed's namespace `demo` holds the headless Service `nginx-demo` with the
StatefulSet pods web-demo-0 (10.244.0.39) and web-demo-1 (10.244.0.40);
`kube-system` holds kube-dns at 10.43.0.10, `default` the API's Service.
"""

from __future__ import annotations

from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

from kubi.dns.answer import Authority
from kubi.dns.lookup import Lookup
from kubi.dns.table import RecordTable

Obj = dict[str, Any]


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def service(name: str, ns: str, cluster_ip: str = "None", *, ports: list[Obj] | None = None,
            **spec: Any) -> Obj:
    ips = [cluster_ip] if cluster_ip else []
    body = {"clusterIP": cluster_ip, "clusterIPs": ips, "type": "ClusterIP",
            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}] if ports is None else ports}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"}, "spec": body}


def endpoint(ip: str, hostname: str | None = None, *, ready: bool | None = True) -> Obj:
    ep: Obj = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        ep["hostname"] = hostname
    return ep


def endpoint_slice(name: str, ns: str, svc: str, endpoints: list[Obj], *,
                   ports: list[Obj] | None = None, address_type: str = "IPv4") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": "1",
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": address_type,
            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}] if ports is None else ports,
            "endpoints": endpoints}


def seed_table() -> RecordTable:
    table = RecordTable(clock=lambda: 1700000000)
    for ns in ("default", "demo", "kube-system"):
        table.apply_namespace(namespace(ns))
    table.apply_service(service("kubernetes", "default", "10.43.0.1",
                                ports=[{"name": "https", "port": 443, "protocol": "TCP"}]))
    table.apply_service(service("kube-dns", "kube-system", "10.43.0.10", ports=[
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]))
    table.apply_service(service("nginx-demo", "demo"))
    table.apply_endpoint_slice(endpoint_slice("nginx-demo-x7k2p", "demo", "nginx-demo", [
        endpoint("10.244.0.39", "web-demo-0"), endpoint("10.244.0.40", "web-demo-1")]))
    return table


def authority(table: RecordTable, **kw: Any) -> Authority:
    kw.setdefault("nameservers", ("10.43.0.10",))
    ttl = kw.pop("ttl", 5)
    synced = kw.pop("synced", lambda: True)
    return Authority(Lookup(table, domain="cluster.local", **kw), ttl=ttl, synced=synced)


def rr_text(rr: Any) -> str:
    return f"{rr.rname} {rr.ttl} {QTYPE[rr.rtype]} {rr.rdata}"


Sections = tuple[str, list[str], list[str], list[str]]


def ask(auth: Authority, name: str, qtype: str = "A") -> Sections:
    """(rcode, answer, authority, additional) of one question, records as one-line text."""
    message = auth.answer(DNSRecord.question(name, qtype)).message
    return (RCODE[message.header.rcode], [rr_text(r) for r in message.rr],
            [rr_text(r) for r in message.auth], [rr_text(r) for r in message.ar])


SOA = ("cluster.local. 5 SOA ns.dns.cluster.local. hostmaster.cluster.local. "
       "1700000000 7200 1800 86400 5")

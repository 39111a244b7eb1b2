"""From a parsed name to the cluster objects it denotes, as CoreDNS's `kubernetes` plugin decides.

`Lookup.members(base, zone)` answers "what does this name hold?" with a list
of `Member`s (an address or an external name, the name an SRV record would
point at, a port), an empty list for a name that exists without data, or
raises `NoSuchName` (NXDOMAIN). The rules, in short:

- a ClusterIP Service holds its ClusterIPs, one member per matching port;
- a headless Service holds its ready endpoint addresses (none ready: NXDOMAIN);
- `<endpoint>.<svc>` holds the addresses of endpoints with that hostname (or
  that dashed address), for headless and ClusterIP Services alike;
- an ExternalName Service holds its external name (a CNAME);
- `<a-b-c-d>.<ns>.pod` holds that address when pod records are on;
- a namespace that does not exist makes everything below it NXDOMAIN.

`reverse(ip)` gives the PTR targets: a Service owning the ClusterIP first,
else every ready endpoint carrying the address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kubi.dns.names import (
    POD,
    InvalidName,
    RecordRequest,
    is_ip,
    parse_request,
    pod_address,
)
from kubi.dns.table import NO_PORT, RecordTable, ServiceEntry

PodMode = Literal["disabled", "insecure", "verified"]


class NoSuchName(LookupError):
    """The name does not exist (NXDOMAIN)."""


@dataclass(frozen=True)
class Member:
    host: str  # an IP address, or a domain name without the trailing dot
    target: str  # the owner name SRV and NS records point at, with the trailing dot
    port: int = NO_PORT


class Lookup:
    def __init__(self, table: RecordTable, *, domain: str, pod_mode: PodMode = "insecure",
                 nameservers: tuple[str, ...] = ()) -> None:
        self.table = table
        self.domain = domain.lower().strip(".")
        self.pod_mode = pod_mode
        self.nameservers = nameservers

    def members(self, base: tuple[str, ...], zone: str) -> list[Member]:
        """What the name `<base>.<zone>` holds; `zone` is spelled as asked, with the dot."""
        try:
            request = parse_request(base)
        except InvalidName:
            raise NoSuchName(".".join(base)) from None
        if not request.kind:
            return []
        if not self.table.has_namespace(request.namespace):
            raise NoSuchName(request.namespace)
        if request.kind == POD:
            return self._pods(request, zone)
        return self._services(request, zone)

    def _pods(self, request: RecordRequest, zone: str) -> list[Member]:
        if self.pod_mode == "disabled":
            raise NoSuchName(request.service)
        if not request.service:
            return []
        ip = pod_address(request.service)
        if ip is None:
            raise NoSuchName(request.service)
        if self.pod_mode == "verified" and request.namespace not in self.table.pod_namespaces(ip):
            raise NoSuchName(request.service)
        return [Member(ip, f"{request.service}.{request.namespace}.pod.{zone}")]

    def _services(self, request: RecordRequest, zone: str) -> list[Member]:
        if not request.service:
            return []
        svc = self.table.service(request.namespace, request.service)
        if svc is None:
            raise NoSuchName(request.service)
        owner = f"{svc.name}.{svc.namespace}.svc.{zone}"
        if svc.is_external_name:
            if request.endpoint or request.port or request.protocol:
                raise NoSuchName(request.endpoint or request.port)
            # An address is no name to alias; the schema only defines CNAMEs here.
            if not svc.external_name or is_ip(svc.external_name):
                raise NoSuchName(request.service)
            return [Member(svc.external_name, owner)]
        if svc.headless or request.endpoint:
            return self._endpoints(svc, request, owner)
        found = False
        members: list[Member] = []
        for port in svc.ports:
            if not _port_matches(request, port.name, port.protocol):
                continue
            found = True
            members.extend(Member(ip, owner, port.port) for ip in svc.cluster_ips if ip)
        if not found:
            raise NoSuchName(request.port)
        return members

    def _endpoints(self, svc: ServiceEntry, request: RecordRequest, owner: str) -> list[Member]:
        members = [
            Member(row.ip, f"{row.hostname}.{owner}", row.port.port)
            for row in self.table.endpoint_rows(svc.namespace, svc.name)
            if (not request.endpoint or request.endpoint == row.hostname.lower())
            and _port_matches(request, row.port.name, row.port.protocol)
        ]
        if not members:
            raise NoSuchName(request.endpoint or request.service)
        return members

    # ---- special names

    def nameserver_members(self, zone: str, owner: str | None = None) -> list[Member]:
        """The addresses of this server, named after the Service that fronts it.

        A Service whose ClusterIP is one of our addresses (kube-dns) names it;
        otherwise the fixed `ns.dns.<zone>` does. `owner` overrides the name,
        for queries that ask for `ns.dns.<zone>` itself.
        """
        members: list[Member] = []
        for ip in self.nameservers:
            name = owner
            if name is None:
                owners = self.table.services_with_cluster_ip(ip)
                name = (f"{owners[0].name}.{owners[0].namespace}.svc.{zone}" if owners
                        else f"ns.dns.{zone}")
            members.append(Member(ip, name))
        return members

    def reverse(self, ip: str) -> list[str]:
        """PTR targets for an address, with trailing dots; empty when unknown."""
        owners = self.table.services_with_cluster_ip(ip)
        if owners:
            return [f"{owners[0].name}.{owners[0].namespace}.svc.{self.domain}."]
        targets: list[str] = []
        for (namespace, service), rows in self.table.endpoint_owners(ip):
            for row in rows:
                name = f"{row.hostname}.{service}.{namespace}.svc.{self.domain}."
                if name not in targets:
                    targets.append(name)
        return targets


def _port_matches(request: RecordRequest, name: str, protocol: str) -> bool:
    return ((not request.port or request.port == name.lower())
            and (not request.protocol or request.protocol == protocol.lower()))

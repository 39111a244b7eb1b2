"""Service ClusterIP and NodePort allocation.

Upstream allocates these in the API server's service REST storage; so does
kubi. The allocator keeps the in-use sets in memory, built from the watch
cache on first use, and changes them without awaiting, so two concurrent
creates in one process can never be handed the same address. Dynamic IPs come
from above the first 256 addresses of the range, which stay for static
assignments (`10.43.0.1` for the `kubernetes` Service, `10.43.0.10` for DNS),
as upstream's allocator bands do.
"""

from __future__ import annotations

import ipaddress
import random

from kubi.api import catalog
from kubi.api.errors import Invalid, invalid

SERVICE_CIDR = ipaddress.ip_network("10.43.0.0/16")
NODE_PORT_RANGE = (30000, 32767)
_STATIC_BAND = 256


class ServiceAllocator:
    def __init__(self, cache) -> None:
        self._cache = cache
        self._ips: set[str] | None = None
        self._ports: set[int] = set()
        self.cidr = SERVICE_CIDR

    def _load(self) -> None:
        if self._ips is not None:
            return
        self._ips = set()
        rt = catalog.lookup("", "v1", "services")
        for entry in self._cache.resource(rt).entries():
            spec = entry.obj.get("spec", {})
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    self._ips.add(ip)
            for port in spec.get("ports") or []:
                if port.get("nodePort"):
                    self._ports.add(port["nodePort"])

    def allocate(self, svc: dict, *, dry_run: bool) -> None:
        self._load()
        assert self._ips is not None
        spec = svc.setdefault("spec", {})
        name = svc.get("metadata", {}).get("name", "")
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            return
        ip = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
        if ip == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
        elif ip:
            self._claim_ip(name, ip, dry_run)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        else:
            ip = self._next_ip()
            if not dry_run:
                self._ips.add(ip)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if kind in ("NodePort", "LoadBalancer"):
            self._allocate_ports(name, spec, dry_run)

    def _claim_ip(self, name: str, ip: str, dry_run: bool) -> None:
        assert self._ips is not None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return  # validation reports the malformed address
        path = "spec.clusterIPs"
        if addr not in self.cidr:
            raise Invalid("Service", name, [invalid(path, [ip], f"failed to allocate IP {ip}: "
                          f"the provided IP ({ip}) is not in the valid range. The range of valid "
                          f"IPs is {self.cidr}")])
        if ip in self._ips:
            raise Invalid("Service", name, [invalid(path, [ip], f"failed to allocate IP {ip}: "
                          "provided IP is already allocated")])
        if not dry_run:
            self._ips.add(ip)

    def _next_ip(self) -> str:
        assert self._ips is not None
        size = self.cidr.num_addresses
        base = int(self.cidr.network_address)
        # Try random picks in the dynamic band first, then scan the whole range.
        for _ in range(64):
            offset = random.randrange(_STATIC_BAND, size - 1)
            ip = str(ipaddress.ip_address(base + offset))
            if ip not in self._ips:
                return ip
        for offset in list(range(_STATIC_BAND, size - 1)) + list(range(1, _STATIC_BAND)):
            ip = str(ipaddress.ip_address(base + offset))
            if ip not in self._ips:
                return ip
        raise Invalid("Service", "", [invalid("spec.clusterIPs", [], "failed to allocate a "
                      "serviceIP: range is full")])

    def _allocate_ports(self, name: str, spec: dict, dry_run: bool) -> None:
        low, high = NODE_PORT_RANGE
        for i, port in enumerate(spec.get("ports") or []):
            wanted = port.get("nodePort")
            if wanted:
                if wanted in self._ports:
                    raise Invalid("Service", name, [invalid(
                        f"spec.ports[{i}].nodePort", wanted,
                        "provided port is already allocated")])
            else:
                free = [p for p in range(low, high + 1) if p not in self._ports]
                if not free:
                    raise Invalid("Service", name, [invalid(
                        f"spec.ports[{i}].nodePort", 0, "range is full")])
                wanted = random.choice(free)
                port["nodePort"] = wanted
            if not dry_run:
                self._ports.add(wanted)

    def release(self, svc: dict) -> None:
        if self._ips is None:
            return
        spec = svc.get("spec", {})
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if ip and ip != "None":
                self._ips.discard(ip)
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                self._ports.discard(port["nodePort"])

    def keep_on_update(self, new: dict, old: dict) -> None:
        """Allocated addresses survive updates that leave them out, as upstream."""
        self._load()
        new_spec = new.setdefault("spec", {})
        old_spec = old.get("spec", {})
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if key in old_spec and not new_spec.get(key):
                new_spec[key] = old_spec[key]
        old_ports = {p.get("port"): p.get("nodePort") for p in old_spec.get("ports") or []}
        if new_spec.get("type") in ("NodePort", "LoadBalancer"):
            for port in new_spec.get("ports") or []:
                if not port.get("nodePort") and old_ports.get(port.get("port")):
                    port["nodePort"] = old_ports[port.get("port")]
            self._allocate_ports(new.get("metadata", {}).get("name", ""),
                                 {"ports": [p for p in new_spec.get("ports") or []
                                            if not p.get("nodePort")]}, False)

"""The record table: what cluster DNS knows, kept current one object at a time.

Services, EndpointSlices, Namespaces and (optionally) Pods flow in as plain
API dicts through `apply_*`/`remove_*`; each call re-derives only what that
object touches. A Service becomes a `ServiceEntry`; the slices labelled
`kubernetes.io/service-name` are folded, per Service, into `EndpointRow`s
(one per ready address and slice port), rebuilt for that Service alone
whenever one of its slices or the Service itself changes. Reverse indexes map
addresses to the Services whose ClusterIP they are and to the Services whose
endpoints carry them, so PTR lookups cost the size of the answer.

Slices are kept even when their Service is not (yet) known: PTR names come
from the slice's label alone, and the Service may arrive later.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubi.dns.names import endpoint_hostname

Obj = dict[str, Any]
ServiceKey = tuple[str, str]  # (namespace, name), lower-cased

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
HEADLESS = "None"
EXTERNAL_NAME = "ExternalName"
NO_PORT = -1  # a slice or Service without ports still yields address records


@dataclass(frozen=True)
class PortSpec:
    name: str
    protocol: str
    port: int


@dataclass(frozen=True)
class ServiceEntry:
    namespace: str
    name: str
    type: str
    cluster_ips: tuple[str, ...]
    external_name: str
    ports: tuple[PortSpec, ...]
    publish_not_ready: bool

    @property
    def headless(self) -> bool:
        return bool(self.cluster_ips) and self.cluster_ips[0] == HEADLESS

    @property
    def is_external_name(self) -> bool:
        return self.type == EXTERNAL_NAME


@dataclass(frozen=True)
class EndpointRow:
    """One address of one endpoint, serving one port of its slice."""

    hostname: str  # the endpoint's hostname, else its address with dashes
    ip: str
    port: PortSpec


@dataclass(frozen=True)
class _Endpoint:
    addresses: tuple[str, ...]
    hostname: str
    ready: bool


@dataclass(frozen=True)
class _Slice:
    service: ServiceKey
    ports: tuple[PortSpec, ...]
    endpoints: tuple[_Endpoint, ...]


def _md(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _key(namespace: str, name: str) -> ServiceKey:
    return namespace.lower(), name.lower()


def service_entry(obj: Obj) -> ServiceEntry:
    """The parts of a Service that DNS answers from."""
    md, spec = _md(obj), obj.get("spec") or {}
    single = [spec["clusterIP"]] if spec.get("clusterIP") else []
    cluster_ips = tuple(spec.get("clusterIPs") or single)
    ports = tuple(PortSpec(p.get("name") or "", p.get("protocol") or "TCP",
                           int(p.get("port", NO_PORT)))
                  for p in spec.get("ports") or ())
    return ServiceEntry(
        namespace=md.get("namespace", ""), name=md["name"], type=spec.get("type") or "ClusterIP",
        cluster_ips=cluster_ips, external_name=(spec.get("externalName") or "").rstrip("."),
        ports=ports or (PortSpec("", "", NO_PORT),),
        publish_not_ready=bool(spec.get("publishNotReadyAddresses")),
    )


def _slice_of(obj: Obj) -> _Slice | None:
    md = _md(obj)
    service = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service:
        return None
    ports = tuple(PortSpec(p.get("name") or "", p.get("protocol") or "",
                           NO_PORT if p.get("port") is None else int(p["port"]))
                  for p in obj.get("ports") or ())
    endpoints = tuple(
        _Endpoint(addresses=tuple(ep.get("addresses") or ()), hostname=ep.get("hostname") or "",
                  # an unset condition means ready: consumers must assume so
                  ready=(ep.get("conditions") or {}).get("ready") is not False)
        for ep in obj.get("endpoints") or ())
    return _Slice(_key(md.get("namespace", ""), service), ports or (PortSpec("", "", NO_PORT),),
                  endpoints)


class RecordTable:
    """Services, their endpoint rows, namespaces and pod addresses, indexed for lookup."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.serial = int(clock())
        self._services: dict[ServiceKey, ServiceEntry] = {}
        self._slices: dict[tuple[str, str], _Slice] = {}  # (namespace, slice name)
        self._slices_of: dict[ServiceKey, set[tuple[str, str]]] = {}
        self._rows: dict[ServiceKey, tuple[EndpointRow, ...]] = {}
        self._cluster_ip_owners: dict[str, set[ServiceKey]] = {}
        self._endpoint_ip_owners: dict[str, set[ServiceKey]] = {}
        self._namespaces: set[str] = set()
        self._pod_ips: dict[str, dict[str, str]] = {}  # ip -> {pod key: namespace}
        self._pod_ip_of: dict[str, tuple[str, ...]] = {}  # pod key -> its ips

    # ---- reads

    def service(self, namespace: str, name: str) -> ServiceEntry | None:
        return self._services.get(_key(namespace, name))

    def endpoint_rows(self, namespace: str, name: str) -> tuple[EndpointRow, ...]:
        return self._rows.get(_key(namespace, name), ())

    def has_namespace(self, namespace: str) -> bool:
        return namespace.lower() in self._namespaces

    def pod_namespaces(self, ip: str) -> set[str]:
        return set(self._pod_ips.get(ip, {}).values())

    def services_with_cluster_ip(self, ip: str) -> list[ServiceEntry]:
        return [self._services[k] for k in sorted(self._cluster_ip_owners.get(ip, ()))]

    def endpoint_owners(self, ip: str) -> list[tuple[ServiceKey, list[EndpointRow]]]:
        """The Services whose ready endpoints carry `ip`, with the matching rows."""
        return [(k, [r for r in self._rows.get(k, ()) if r.ip == ip])
                for k in sorted(self._endpoint_ip_owners.get(ip, ()))]

    # ---- Services

    def apply_service(self, obj: Obj) -> None:
        entry = service_entry(obj)
        key = _key(entry.namespace, entry.name)
        old = self._services.get(key)
        if old is not None:
            self._unindex(self._cluster_ip_owners, old.cluster_ips, key)
        self._services[key] = entry
        self._index(self._cluster_ip_owners, entry.cluster_ips, key)
        if old is None or old.publish_not_ready != entry.publish_not_ready:
            self._rebuild_rows(key)
        self._touch()

    def remove_service(self, obj: Obj) -> None:
        md = _md(obj)
        key = _key(md.get("namespace", ""), md["name"])
        old = self._services.pop(key, None)
        if old is not None:
            self._unindex(self._cluster_ip_owners, old.cluster_ips, key)
            self._rebuild_rows(key)
        self._touch()

    # ---- EndpointSlices

    def apply_endpoint_slice(self, obj: Obj) -> None:
        md = _md(obj)
        slice_key = (md.get("namespace", ""), md["name"])
        old = self._slices.pop(slice_key, None)
        new = _slice_of(obj)
        if old is not None and (new is None or new.service != old.service):
            self._slices_of.get(old.service, set()).discard(slice_key)
            self._rebuild_rows(old.service)
        if new is not None:
            self._slices[slice_key] = new
            self._slices_of.setdefault(new.service, set()).add(slice_key)
            self._rebuild_rows(new.service)
        self._touch()

    def remove_endpoint_slice(self, obj: Obj) -> None:
        md = _md(obj)
        slice_key = (md.get("namespace", ""), md["name"])
        old = self._slices.pop(slice_key, None)
        if old is not None:
            self._slices_of.get(old.service, set()).discard(slice_key)
            self._rebuild_rows(old.service)
        self._touch()

    def _rebuild_rows(self, key: ServiceKey) -> None:
        entry = self._services.get(key)
        publish = entry is not None and entry.publish_not_ready
        rows: list[EndpointRow] = []
        for slice_key in sorted(self._slices_of.get(key, ())):
            piece = self._slices[slice_key]
            for ep in piece.endpoints:
                if not (ep.ready or publish):
                    continue
                for ip in ep.addresses:
                    label = endpoint_hostname(ep.hostname, ip)
                    rows.extend(EndpointRow(label, ip, port) for port in piece.ports)
        old_ips = {r.ip for r in self._rows.get(key, ())}
        new_ips = {r.ip for r in rows}
        self._unindex(self._endpoint_ip_owners, old_ips - new_ips, key)
        self._index(self._endpoint_ip_owners, new_ips - old_ips, key)
        if rows:
            self._rows[key] = tuple(rows)
        else:
            self._rows.pop(key, None)
        if not self._slices_of.get(key):
            self._slices_of.pop(key, None)

    # ---- Namespaces and Pods

    def apply_namespace(self, obj: Obj) -> None:
        self._namespaces.add(_md(obj)["name"].lower())
        self._touch()

    def remove_namespace(self, obj: Obj) -> None:
        self._namespaces.discard(_md(obj)["name"].lower())
        self._touch()

    def apply_pod(self, obj: Obj) -> None:
        md = _md(obj)
        pod_key = f"{md.get('namespace', '')}/{md['name']}"
        status = obj.get("status") or {}
        ips = tuple(p["ip"] for p in status.get("podIPs") or () if p.get("ip")) or (
            (status["podIP"],) if status.get("podIP") else ())
        if self._pod_ip_of.get(pod_key, ()) == ips:
            return
        self._drop_pod(pod_key)
        for ip in ips:
            self._pod_ips.setdefault(ip, {})[pod_key] = md.get("namespace", "").lower()
        if ips:
            self._pod_ip_of[pod_key] = ips
        self._touch()

    def remove_pod(self, obj: Obj) -> None:
        md = _md(obj)
        self._drop_pod(f"{md.get('namespace', '')}/{md['name']}")
        self._touch()

    def _drop_pod(self, pod_key: str) -> None:
        for ip in self._pod_ip_of.pop(pod_key, ()):
            owners = self._pod_ips.get(ip, {})
            owners.pop(pod_key, None)
            if not owners:
                self._pod_ips.pop(ip, None)

    # ---- helpers

    def _touch(self) -> None:
        # The SOA serial follows the clock, as in CoreDNS, but never goes back.
        self.serial = max(self.serial, int(self._clock()))

    @staticmethod
    def _index(index: dict[str, set[ServiceKey]], ips: Iterable[str], key: ServiceKey) -> None:
        for ip in ips:
            if ip and ip != HEADLESS:
                index.setdefault(ip, set()).add(key)

    @staticmethod
    def _unindex(index: dict[str, set[ServiceKey]], ips: Iterable[str], key: ServiceKey) -> None:
        for ip in ips:
            owners = index.get(ip)
            if owners is not None:
                owners.discard(key)
                if not owners:
                    del index[ip]

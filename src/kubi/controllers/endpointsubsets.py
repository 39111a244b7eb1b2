"""The desired core/v1 Endpoints of a Service, computed from its pods.

`desired_subsets` turns each selected pod into an EndpointAddress (its IP of
the Service's family, nodeName, targetRef, and hostname when its subdomain
names the Service) with one port per service port the pod serves, ready or
not ready by its Ready condition unless the Service publishes not-ready
addresses. Terminating pods are left out. `repack_subsets` then folds those
one-address subsets into the canonical layout: addresses that serve the same
set of ports, in the same readiness, share a subset. `desired_endpoints`
compares the result with the stored object and returns the object to write,
or None when nothing changed; beyond 1000 addresses it truncates and marks
the object `endpoints.kubernetes.io/over-capacity: truncated`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from typing import Any

from kubi.controllers.endpointutil import (
    HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME,
    canonical_ip,
    find_port,
    is_headless,
    is_ipv6,
    is_service_ip_set,
    pod_ips,
    should_pod_be_in_endpoints,
    should_set_hostname,
)
from kubi.controllers.podutil import is_pod_ready

Obj = dict[str, Any]

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpoint-controller"
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
TRUNCATED = "truncated"
MAX_CAPACITY = 1000

# Stands for "no ports" while repacking, so a headless Service without ports
# keeps its addresses.
_NO_PORTS: tuple[Any, ...] = ("", -1, "", None)


def _wants_ipv6(service: Obj, pod: Obj) -> bool:
    spec = service.get("spec") or {}
    families = spec.get("ipFamilies") or []
    if families:
        return families[0] == "IPv6"
    cluster_ip = spec.get("clusterIP") or ""
    if cluster_ip and cluster_ip != "None":
        return is_ipv6(cluster_ip)
    return is_ipv6((pod.get("status") or {}).get("podIP") or "")


def pod_address(service: Obj, pod: Obj) -> Obj | None:
    """The EndpointAddress of `pod` for `service`; None when it has no IP of the family."""
    want_v6 = _wants_ipv6(service, pod)
    ip = next((ip for ip in pod_ips(pod) if is_ipv6(ip) == want_v6), None)
    if ip is None:
        return None
    md = pod.get("metadata") or {}
    address: Obj = {"ip": canonical_ip(ip)}
    if should_set_hostname(pod, service):
        address["hostname"] = (pod.get("spec") or {}).get("hostname")
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    address["targetRef"] = {"kind": "Pod", "namespace": md.get("namespace", ""),
                            "name": md.get("name", ""), "uid": md.get("uid", "")}
    return address


def endpoint_port(service_port: Mapping[str, Any], number: int) -> Obj:
    port: Obj = {"name": service_port["name"]} if service_port.get("name") else {}
    port.update(port=number, protocol=service_port.get("protocol") or "TCP")
    if service_port.get("appProtocol") is not None:
        port["appProtocol"] = service_port["appProtocol"]
    return port


def desired_subsets(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The repacked subsets for `service`, built from the pods its selector matched."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    subsets: list[Obj] = []
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=False):
            continue
        address = pod_address(service, pod)
        if address is None:
            continue
        field = "addresses" if publish_not_ready or is_pod_ready(pod) else "notReadyAddresses"
        if not service_ports:
            # Only a headless Service may go without ports.
            if is_headless(service):
                subsets.append({field: [address]})
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is None:
                continue
            subsets.append({field: [address], "ports": [endpoint_port(service_port, number)]})
    return repack_subsets(subsets)


# ---- canonical layout

def _address_key(address: Obj) -> tuple[str, str]:
    return address.get("ip", ""), (address.get("targetRef") or {}).get("uid", "")


def _port_key(port: Obj) -> tuple[Any, ...]:
    return (port.get("name") or "", port.get("port", 0), port.get("protocol") or "",
            port.get("appProtocol"))


def _port_from_key(key: tuple[Any, ...]) -> Obj:
    name, number, protocol, app_protocol = key
    port: Obj = {"name": name} if name else {}
    port.update(port=number, protocol=protocol)
    if app_protocol is not None:
        port["appProtocol"] = app_protocol
    return port


def _sortable_port(key: tuple[Any, ...]) -> tuple[str, int, str, str]:
    name, number, protocol, app_protocol = key
    return name, number, protocol, app_protocol or ""


def address_sort_key(address: Obj) -> tuple[bytes, int, str]:
    """Upstream orders addresses by the bytes of the IP text, then by target UID."""
    ref = address.get("targetRef")
    return address.get("ip", "").encode(), 0 if ref is None else 1, (ref or {}).get("uid", "")


def repack_subsets(subsets: Iterable[Obj]) -> list[Obj]:
    """Regroup addresses so each subset holds the addresses serving one set of ports.

    An address that is not ready for some port stays not ready for it, even if
    another subset lists it as ready there. Upstream orders ports and subsets
    by a hash of their content; we order them by their content, which is just
    as canonical and easier to read.
    """
    addresses: dict[tuple[str, str], Obj] = {}
    readiness_by_port: dict[tuple[Any, ...], dict[tuple[str, str], bool]] = {}
    for subset in subsets:
        port_keys = [_port_key(p) for p in subset.get("ports") or ()] or [_NO_PORTS]
        entries = [(a, True) for a in subset.get("addresses") or ()]
        entries += [(a, False) for a in subset.get("notReadyAddresses") or ()]
        for port_key in port_keys:
            readiness = readiness_by_port.setdefault(port_key, {})
            for address, ready in entries:
                key = _address_key(address)
                addresses.setdefault(key, copy.deepcopy(address))
                if readiness.get(key, True):
                    readiness[key] = ready
    ports_by_members: dict[frozenset[tuple[tuple[str, str], bool]], list[tuple[Any, ...]]] = {}
    for port_key, readiness in readiness_by_port.items():
        ports_by_members.setdefault(frozenset(readiness.items()), []).append(port_key)
    repacked = []
    for members, port_keys in ports_by_members.items():
        packed: Obj = {}
        ready_ones = sorted((addresses[k] for k, r in members if r), key=address_sort_key)
        not_ready = sorted((addresses[k] for k, r in members if not r), key=address_sort_key)
        if ready_ones:
            packed["addresses"] = ready_ones
        if not_ready:
            packed["notReadyAddresses"] = not_ready
        real_ports = sorted((k for k in port_keys if k != _NO_PORTS), key=_sortable_port)
        if real_ports:
            packed["ports"] = [_port_from_key(k) for k in real_ports]
        repacked.append(packed)
    repacked.sort(key=_subset_sort_key)
    return repacked


def _subset_sort_key(subset: Obj) -> tuple[Any, ...]:
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{}])[0]
    ports = tuple(_sortable_port(_port_key(p)) for p in subset.get("ports") or ())
    return ports, address_sort_key(first)


# ---- comparing with what is stored

def _without_ref_versions(subsets: list[Obj] | None) -> list[Obj]:
    """Subsets with targetRef.resourceVersion dropped: a pod's version alone is no change."""
    cleaned = copy.deepcopy(subsets or [])
    for subset in cleaned:
        for field in ("addresses", "notReadyAddresses"):
            for address in subset.get(field) or ():
                (address.get("targetRef") or {}).pop("resourceVersion", None)
            if not subset.get(field):
                subset.pop(field, None)
        if not subset.get("ports"):
            subset.pop("ports", None)
    return cleaned


def subsets_equal(a: list[Obj] | None, b: list[Obj] | None) -> bool:
    return _without_ref_versions(a) == _without_ref_versions(b)


def desired_labels(service: Obj) -> dict[str, str]:
    """The Service's labels, the headless marker when it has no cluster IP, and managed-by."""
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    if is_service_ip_set(service):
        labels.pop(HEADLESS_LABEL, None)
    else:
        labels[HEADLESS_LABEL] = ""
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def labels_correct(endpoint_labels: Mapping[str, str], service_labels: Mapping[str, str]) -> bool:
    """The Endpoints' labels are the Service's, plus managed-by and maybe the headless marker."""
    if endpoint_labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME:
        return False
    own = {k: v for k, v in endpoint_labels.items() if k not in (HEADLESS_LABEL, MANAGED_BY_LABEL)}
    return own == dict(service_labels)


def address_count(subsets: Iterable[Obj]) -> int:
    return sum(len(s.get("addresses") or ()) + len(s.get("notReadyAddresses") or ())
               for s in subsets)


def capacity_annotation_correct(annotations: Mapping[str, str], subsets: list[Obj]) -> bool:
    """False when the subsets are over capacity, or under it but still marked truncated."""
    if address_count(subsets) > MAX_CAPACITY:
        return False
    return OVER_CAPACITY not in annotations


def truncate_subsets(subsets: list[Obj], capacity: int = MAX_CAPACITY) -> bool:
    """Cut the subsets down to `capacity` addresses in place; True when anything was cut.

    Ready addresses are kept first. Whichever kind is cut is shared among the
    subsets in proportion to their size, each share rounded up, so the last
    subsets may get less. With 1200 ready addresses in subsets of 600, 400 and
    200, the shares are 500, 334 and 166 (what is left), and every not-ready
    address goes.
    """
    ready = sum(len(s.get("addresses") or ()) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or ()) for s in subsets)
    if ready + not_ready <= capacity:
        return False
    cut_ready = ready > capacity
    room, total = (capacity, ready) if cut_ready else (capacity - ready, not_ready)
    left = room
    for subset in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        present = subset.get(field) or []
        share = min(math.ceil(len(present) / total * room), left)
        kept = present[:share]
        if kept:
            subset[field] = kept
        else:
            subset.pop(field, None)
        if cut_ready:
            subset.pop("notReadyAddresses", None)
        left -= len(kept)
    # A subset whose every address was cut would be invalid; drop it.
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def desired_endpoints(service: Obj, current: Obj | None, subsets: list[Obj],
                      trigger_time: str | None) -> Obj | None:
    """The Endpoints to write for `service`, or None when `current` is already right."""
    svc_md = service.get("metadata") or {}
    service_labels = svc_md.get("labels") or {}
    if current is not None:
        cur_md = current.get("metadata") or {}
        if (subsets_equal(current.get("subsets"), subsets)
                and labels_correct(cur_md.get("labels") or {}, service_labels)
                and capacity_annotation_correct(cur_md.get("annotations") or {},
                                                current.get("subsets") or [])):
            return None
        endpoints = copy.deepcopy(current)
    else:
        endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                     "metadata": {"name": svc_md.get("name"),
                                  "namespace": svc_md.get("namespace")}}
    md = endpoints.setdefault("metadata", {})
    new_subsets = copy.deepcopy(subsets)
    annotations = dict(md.get("annotations") or {})
    if trigger_time:
        annotations[LAST_CHANGE_TRIGGER_TIME] = trigger_time
    else:
        annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
    if truncate_subsets(new_subsets):
        annotations[OVER_CAPACITY] = TRUNCATED
    else:
        annotations.pop(OVER_CAPACITY, None)
    if new_subsets:
        endpoints["subsets"] = new_subsets
    else:
        endpoints.pop("subsets", None)
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)
    md["labels"] = desired_labels(service)
    return endpoints

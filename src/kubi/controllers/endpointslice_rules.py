"""The parts of an EndpointSlice, each a small pure rule on plain dicts.

A pod becomes an Endpoint (`pod_to_endpoint`: addresses of the slice's
family, ready/serving/terminating conditions, hostname, nodeName, zone,
targetRef) serving the ports `endpoint_ports` resolves for it. `endpoint_key`
is what identifies an endpoint from one sync to the next, `port_key` what
groups endpoints into slices. A slice carries its Service's labels plus the
reserved service-name, managed-by and headless labels (`slice_labels`) and a
controller ownerReference to the Service (`new_slice`). The reconciler in
endpointslice_reconciler combines these rules.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from kubi.controllers.endpointutil import (
    HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME,
    ZONE_LABEL,
    canonical_ip,
    find_port,
    is_headless,
    is_ipv6,
    is_service_ip_set,
    pod_ips,
    should_set_hostname,
)
from kubi.controllers.podutil import is_pod_ready

Obj = dict[str, Any]
EndpointKey = tuple[tuple[str, ...], str, str, str]
PortKey = tuple[tuple[str, int, str, str], ...]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"
TOPOLOGY_AWARE_HINTS = "service.kubernetes.io/topology-aware-hints"
PREFER_CLOSE = "PreferClose"

_RESERVED_LABELS = (LABEL_SERVICE_NAME, LABEL_MANAGED_BY, HEADLESS_LABEL)


def _md(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def address_types(service: Obj) -> list[str]:
    """The slice address types a Service needs, from its IP families."""
    spec = service.get("spec") or {}
    # Slice address types and IP families share their spelling.
    families = [f for f in spec.get("ipFamilies") or () if f in ("IPv4", "IPv6")]
    if families:
        return list(dict.fromkeys(families))
    if is_service_ip_set(service):
        return ["IPv6" if is_ipv6(spec["clusterIP"]) else "IPv4"]
    # A headless Service from before IP families were defaulted: assume both.
    return ["IPv4", "IPv6"]


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    """The slice ports `pod` serves for `service` (named ports resolved per pod)."""
    spec = service.get("spec") or {}
    service_ports = spec.get("ports") or []
    if not service_ports and is_headless(service):
        return []
    ports = []
    for service_port in service_ports:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: Obj = {"name": service_port.get("name") or "", "port": number,
                     "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol") is not None:
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def port_key(ports: Iterable[Obj] | None) -> PortKey:
    """Identifies a set of ports, whatever their order."""
    return tuple(sorted((p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "",
                         p.get("appProtocol") or "") for p in ports or ()))


def pod_to_endpoint(pod: Obj, node: Obj | None, service: Obj, address_type: str) -> Obj:
    """The Endpoint of `pod` in slices of `address_type`.

    serving follows readiness; terminating marks a pod being deleted; ready is
    serving and not terminating, unless the Service publishes not-ready addresses.
    """
    md = _md(pod)
    serving = is_pod_ready(pod)
    terminating = bool(md.get("deletionTimestamp"))
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    want_v6 = address_type == "IPv6"
    endpoint: Obj = {
        "addresses": [canonical_ip(ip) for ip in pod_ips(pod) if is_ipv6(ip) == want_v6],
        "conditions": {"ready": publish or (serving and not terminating),
                       "serving": serving, "terminating": terminating},
    }
    if should_set_hostname(pod, service):
        endpoint["hostname"] = (pod.get("spec") or {}).get("hostname")
    endpoint["targetRef"] = {"kind": "Pod", "namespace": md.get("namespace", ""),
                             "name": md.get("name", ""), "uid": md.get("uid", "")}
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        endpoint["nodeName"] = node_name
    zone = (_md(node).get("labels") or {}).get(ZONE_LABEL) if node is not None else None
    if zone:
        endpoint["zone"] = zone
    return endpoint


def endpoint_key(endpoint: Obj) -> EndpointKey:
    """What identifies an endpoint across syncs: its addresses, hostname and pod.

    Conditions, node and zone are left out so their changes update in place.
    """
    ref = endpoint.get("targetRef") or {}
    return (tuple(sorted(endpoint.get("addresses") or ())), endpoint.get("hostname") or "",
            ref.get("namespace") or "", ref.get("name") or "")


def _ref_without_version(ref: Obj | None) -> Obj | None:
    if ref is None:
        return None
    return {k: v for k, v in ref.items() if k != "resourceVersion" and v not in ("", None)}


def endpoints_equal_beyond_key(a: Obj, b: Obj) -> bool:
    """Equal in everything `endpoint_key` leaves out (a pod's resourceVersion aside)."""
    if a.get("nodeName") != b.get("nodeName") or a.get("zone") != b.get("zone"):
        return False
    ca, cb = a.get("conditions") or {}, b.get("conditions") or {}
    if any(ca.get(c) != cb.get(c) for c in ("ready", "serving", "terminating")):
        return False
    return _ref_without_version(a.get("targetRef")) == _ref_without_version(b.get("targetRef"))


def slice_labels(endpoint_slice: Obj, service: Obj,
                 controller_name: str = CONTROLLER_NAME) -> tuple[dict[str, str], bool]:
    """(the labels the slice should carry, whether its Service-derived labels changed).

    A slice mirrors its Service's labels, except the reserved service-name,
    managed-by and headless labels, which the controller sets itself.
    """
    def unreserved(labels: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in labels.items() if k not in _RESERVED_LABELS}

    current = unreserved(_md(endpoint_slice).get("labels") or {})
    labels = unreserved(_md(service).get("labels") or {})
    changed = current != labels
    if not is_service_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    labels[LABEL_SERVICE_NAME] = _md(service).get("name", "")
    labels[LABEL_MANAGED_BY] = controller_name
    return labels, changed


def owner_reference(service: Obj) -> Obj:
    md = _md(service)
    return {"apiVersion": "v1", "kind": "Service", "name": md.get("name", ""),
            "uid": md.get("uid", ""), "controller": True, "blockOwnerDeletion": True}


def owned_by(endpoint_slice: Obj, service: Obj) -> bool:
    uid = _md(service).get("uid")
    return any(ref.get("uid") == uid and ref.get("kind") == "Service"
               and ref.get("apiVersion") == "v1"
               for ref in _md(endpoint_slice).get("ownerReferences") or ())


def new_slice(service: Obj, ports: list[Obj], address_type: str,
              controller_name: str = CONTROLLER_NAME) -> Obj:
    md = _md(service)
    endpoint_slice: Obj = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"generateName": f"{md.get('name', '')}-",
                     "namespace": md.get("namespace", ""),
                     "ownerReferences": [owner_reference(service)]},
        "addressType": address_type,
        "endpoints": [],
        "ports": copy.deepcopy(ports),
    }
    endpoint_slice["metadata"]["labels"], _ = slice_labels(endpoint_slice, service,
                                                           controller_name)
    return endpoint_slice


def slice_to_fill(slices: Iterable[Obj], count: int, max_endpoints: int) -> Obj | None:
    """The slice that `count` more endpoints leave closest to full without overflowing."""
    best: Obj | None = None
    best_gap = max_endpoints
    for candidate in slices:
        gap = max_endpoints - (count + len(candidate.get("endpoints") or ()))
        if 0 <= gap < best_gap:
            best, best_gap = candidate, gap
            if gap == 0:
                break
    return best


def hints_enabled(annotations: Mapping[str, str]) -> bool:
    """The Topology Aware Routing annotation; the deprecated spelling wins when both are set."""
    value = annotations.get(TOPOLOGY_AWARE_HINTS, annotations.get(TOPOLOGY_MODE))
    return value in ("Auto", "auto")


def set_trigger_time(endpoint_slice: Obj, trigger_time: str | None) -> None:
    annotations = dict(_md(endpoint_slice).get("annotations") or {})
    if trigger_time:
        annotations[LAST_CHANGE_TRIGGER_TIME] = trigger_time
    else:
        annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
    md = endpoint_slice.setdefault("metadata", {})
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)


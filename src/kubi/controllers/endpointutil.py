"""What the Endpoints and EndpointSlice controllers agree on, as pure functions.

Both controllers answer the same questions about a Service and its pods:
which Services select a pod (and so must be synced when it changes), whether
a pod belongs in the endpoints at all (it needs an IP and must not have
finished), which container port a service port's targetPort names, when a
pod's `hostname` is published, and which pod IP matches an address family.
`TriggerTimeTracker` computes the `endpoints.kubernetes.io/last-change-trigger-time`
annotation: the earliest pod-readiness or service change not yet exported.
Everything takes plain dicts and is deterministic, so it is tested on data.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from kubi.api.meta import parse_time
from kubi.client.client import Resource
from kubi.controllers.podutil import is_pod_ready, pod_ready_condition

Obj = dict[str, Any]

SERVICES = Resource("", "v1", "services", True, "Service")
NODES = Resource("", "v1", "nodes", False, "Node")

LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"
ZONE_LABEL = "topology.kubernetes.io/zone"
CLUSTER_IP_NONE = "None"


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def service_key(service: Obj) -> str:
    md = _meta(service)
    return f"{md.get('namespace', '')}/{md.get('name', '')}"


def service_selector(service: Obj) -> dict[str, str] | None:
    """The selector, or None when the Service has none.

    An empty selector counts as none: upstream's wire format drops an empty
    map, so there such a Service never selects anything either.
    """
    selector = _spec(service).get("selector")
    return dict(selector) if selector else None


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(key) == value for key, value in selector.items())


def manages_endpoints(service: Obj) -> bool:
    """True for a Service whose endpoints these controllers write."""
    return (_spec(service).get("type") != "ExternalName"
            and service_selector(service) is not None)


def is_service_ip_set(service: Obj) -> bool:
    cluster_ip = _spec(service).get("clusterIP") or ""
    return cluster_ip not in ("", CLUSTER_IP_NONE)


def is_headless(service: Obj) -> bool:
    return _spec(service).get("clusterIP") == CLUSTER_IP_NONE


# ---- which services a pod change concerns

def services_selecting(services: Iterable[Obj], labels: Mapping[str, str] | None) -> set[str]:
    """Keys of the Services (all in the pod's namespace) whose selector matches `labels`."""
    return {service_key(svc) for svc in services if selects(service_selector(svc), labels)}


def _hostname_and_subdomain(pod: Obj) -> tuple[str, str]:
    spec = _spec(pod)
    return spec.get("hostname") or "", spec.get("subdomain") or ""


def _pod_ip_list(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    return [entry.get("ip", "") for entry in status.get("podIPs") or ()]


def pod_endpoints_changed(old: Obj, new: Obj) -> tuple[bool, bool]:
    """(the pod's endpoint may have changed, the Services selecting it may have changed).

    Labels, hostname and subdomain decide membership; deletion, readiness and
    the pod IPs decide what the endpoint says. Name, namespace and UID are
    immutable, and nodeName is set before the pod ever gets an IP.
    """
    labels_changed = (_meta(old).get("labels") or {}) != (_meta(new).get("labels") or {}) \
        or _hostname_and_subdomain(old) != _hostname_and_subdomain(new)
    pod_changed = (_meta(old).get("deletionTimestamp") != _meta(new).get("deletionTimestamp")
                   or is_pod_ready(old) != is_pod_ready(new)
                   or _pod_ip_list(old) != _pod_ip_list(new))
    return pod_changed, labels_changed


def services_to_update(services: Iterable[Obj], old: Obj, new: Obj) -> set[str]:
    """Keys of the Services to sync after a pod update."""
    if _meta(old).get("resourceVersion") == _meta(new).get("resourceVersion"):
        return set()
    pod_changed, labels_changed = pod_endpoints_changed(old, new)
    if not pod_changed and not labels_changed:
        return set()
    candidates = list(services)
    current = services_selecting(candidates, _meta(new).get("labels"))
    if not labels_changed:
        return current
    previous = services_selecting(candidates, _meta(old).get("labels"))
    if pod_changed:
        return current | previous
    # Only membership moved: the Services that both selected it see no change.
    return current ^ previous


# ---- what goes into endpoints

def is_pod_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def should_pod_be_in_endpoints(pod: Obj, *, include_terminating: bool) -> bool:
    """Running or about to run, with an IP; terminating pods only when asked for."""
    if is_pod_terminal(pod):
        return False
    status = pod.get("status") or {}
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not _meta(pod).get("deletionTimestamp")


def should_set_hostname(pod: Obj, service: Obj) -> bool:
    """A pod publishes its hostname under the Service named by its subdomain.

    This is what gives a StatefulSet's pods their `<pod>.<service>` DNS names.
    """
    hostname, subdomain = _hostname_and_subdomain(pod)
    return (bool(hostname) and subdomain == _meta(service).get("name")
            and _meta(service).get("namespace") == _meta(pod).get("namespace"))


def find_port(pod: Obj, service_port: Mapping[str, Any]) -> int | None:
    """The pod port a service port targets; None when a named port is not found.

    A number is used as is; a name is looked up among the containers' ports of
    the same protocol, then among sidecars (init containers that always restart).
    """
    target = service_port.get("targetPort")
    if target is None or target == "":
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    spec = _spec(pod)
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for container in containers:
        for port in container.get("ports") or ():
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port.get("containerPort") or 0)
    return None


def is_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def pod_ips(pod: Obj) -> list[str]:
    """status.podIPs, or the lone status.podIP of a pod that reports only that."""
    ips = [ip for ip in _pod_ip_list(pod) if ip]
    if not ips:
        single = (pod.get("status") or {}).get("podIP")
        ips = [single] if single else []
    return ips


def canonical_ip(address: str) -> str:
    """The address in its canonical spelling (upstream re-formats pod IPs)."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


# ---- the last-change-trigger-time annotation

def format_trigger_time(epoch: float) -> str:
    """RFC 3339 in UTC with as many fractional digits as needed (Go's RFC3339Nano).

    Times come from parsed timestamps, which carry at most microseconds.
    """
    whole = int(epoch // 1)
    micros = round((epoch - whole) * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, 0
    stamp = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{micros:06d}".rstrip("0") if micros else ""
    return f"{stamp}{fraction}Z"


def _pod_trigger_time(pod: Obj) -> float | None:
    return parse_time((pod_ready_condition(pod) or {}).get("lastTransitionTime"))


class TriggerTimeTracker:
    """Remembers, per Service, the trigger times exported by the previous sync.

    The time to export is the earliest trigger that changed since then: a
    pod's Ready transition or the Service's creation. A Service seen for the
    first time exports its creation time. Like upstream, two changes of the
    same object between syncs are seen as one.
    """

    def __init__(self) -> None:
        self._states: dict[str, tuple[float | None, dict[str, float]]] = {}

    def compute(self, service: Obj, pods: Iterable[Obj]) -> str | None:
        key = service_key(service)
        known = key in self._states
        last_service, last_pods = self._states.get(key, (None, {}))
        earliest: float | None = None
        pod_times: dict[str, float] = {}
        for pod in pods:
            when = _pod_trigger_time(pod)
            if when is None:
                continue
            name = _meta(pod).get("name", "")
            pod_times[name] = when
            previous = last_pods.get(name)
            if previous is None or when > previous:
                earliest = when if earliest is None else min(earliest, when)
        created = parse_time(_meta(service).get("creationTimestamp"))
        if created is not None and (last_service is None or created > last_service):
            earliest = created if earliest is None else min(earliest, created)
        self._states[key] = (created, pod_times)
        if not known:
            return format_trigger_time(created) if created is not None else None
        return format_trigger_time(earliest) if earliest is not None else None

    def delete_service(self, key: str) -> None:
        self._states.pop(key, None)

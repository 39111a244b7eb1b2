"""coordination.k8s.io/v1 Lease, discovery.k8s.io/v1 EndpointSlice and
events.k8s.io/v1 Event: defaults, server-set fields and validation as upstream
v1.33 has them, plus the two pure functions that convert an Event between its
core/v1 shape (the one stored) and its events.k8s.io/v1 shape.

An events.k8s.io/v1 write is converted to the core shape and checked there
with the legacy and the strict rule sets of `events`, so its error paths are
upstream's (which name core fields, e.g. `reportingController`).
"""

from __future__ import annotations

import copy
from typing import Any

from kubi.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_many,
)
from kubi.api.hooks import defaulter, preparer, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import (
    dns_label,
    ipv4_errors,
    ipv6_errors,
    meta_create,
    meta_update,
    non_special_ip,
    protocol_errors,
    qualified_name,
    section,
)
from kubi.api.kinds.events import legacy_event_errors, strict_event_errors

# -- Event conversion ----------------------------------------------------------------

# (core/v1 name, events.k8s.io/v1 name) for the fields whose names differ.
_RENAMED = (
    ("involvedObject", "regarding"),
    ("source", "deprecatedSource"),
    ("message", "note"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
)
_SAME = ("eventTime", "series", "action", "reason", "related", "type", "reportingInstance")


def core_event_to_events_v1(obj: dict) -> dict:
    """The events.k8s.io/v1 view of a core/v1 Event (a new dict; the input is untouched)."""
    out: dict[str, Any] = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    out["metadata"] = copy.deepcopy(obj.get("metadata") or {})
    for core_name, v1_name in _RENAMED:
        if obj.get(core_name) not in (None, "", 0):
            out[v1_name] = copy.deepcopy(obj[core_name])
    for name in _SAME:
        if obj.get(name) not in (None, ""):
            out[name] = copy.deepcopy(obj[name])
    # The fields events.k8s.io/v1 always serializes, even when empty.
    out.setdefault("eventTime", None)
    out.setdefault("regarding", {})
    out.setdefault("deprecatedSource", {})
    out.setdefault("deprecatedFirstTimestamp", None)
    out.setdefault("deprecatedLastTimestamp", None)
    return out


def events_v1_to_core_event(obj: dict) -> dict:
    """The core/v1 form of an events.k8s.io/v1 Event (a new dict; the input is untouched)."""
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    out["metadata"] = copy.deepcopy(obj.get("metadata") or {})
    for core_name, v1_name in _RENAMED:
        if obj.get(v1_name) not in (None, "", 0):
            out[core_name] = copy.deepcopy(obj[v1_name])
    for name in _SAME:
        if obj.get(name) not in (None, ""):
            out[name] = copy.deepcopy(obj[name])
    out.setdefault("involvedObject", {})
    out.setdefault("source", {})
    for name in ("firstTimestamp", "lastTimestamp", "eventTime"):
        out.setdefault(name, None)
    for name in ("reportingComponent", "reportingInstance"):
        out.setdefault(name, "")
    return out


@validator("events.k8s.io/v1", "Event")
def validate_events_v1_event(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    core = events_v1_to_core_event(obj)
    old_core = events_v1_to_core_event(old) if old is not None else None
    return legacy_event_errors(core) + strict_event_errors(core, old_core)


# -- Lease ---------------------------------------------------------------------------

LEASE_STRATEGIES = ("OldestEmulationVersion",)


@validator("coordination.k8s.io/v1", "Lease")
def validate_lease(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    if old is None:
        errs = m.validate_object_meta(
            obj.get("metadata") or {}, namespaced=True, name_fn=m.dns1123_subdomain, builtin=False
        )
    else:
        errs = m.validate_object_meta_update(
            obj.get("metadata") or {}, old.get("metadata") or {}, builtin=False
        )
    return errs + _lease_spec(obj.get("spec") or {})


def _lease_spec(spec: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errs.append(
            invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    strategy = spec.get("strategy")
    if strategy is not None:
        # Upstream nests the field name twice in this path.
        path = "spec.strategy.strategy"
        if "/" not in strategy:
            if strategy not in LEASE_STRATEGIES:
                errs.append(not_supported(path, strategy, LEASE_STRATEGIES))
        else:
            errs.extend(qualified_name(strategy, path))
    if spec.get("preferredHolder") and not strategy:
        errs.append(
            forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
        )
    return errs


# -- EndpointSlice -------------------------------------------------------------------

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000
MAX_TOPOLOGY_LABELS = 16
MAX_ZONE_HINTS = 8


@defaulter("discovery.k8s.io/v1", "EndpointSlice")
def default_endpoint_slice(obj: dict) -> None:
    for port in obj.get("ports") or []:
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


@preparer("discovery.k8s.io/v1", "EndpointSlice")
def prepare_endpoint_slice(obj: dict, old: dict | None) -> None:
    meta = section(obj, "metadata")
    if old is None:
        meta["generation"] = 1
        return
    old_meta = old.get("metadata") or {}
    generation = old_meta.get("generation") or 0
    changed = any(obj.get(k) != old.get(k) for k in ("addressType", "endpoints", "ports"))
    meta["generation"] = generation + 1 if changed else generation


@validator("discovery.k8s.io/v1", "EndpointSlice")
def validate_endpoint_slice(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    errs = meta_update(obj, old) if old is not None else []
    errs.extend(meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain))
    address_type = obj.get("addressType") or ""
    # The deprecated "IP" type is tolerated on objects that already have it.
    allowed = ADDRESS_TYPES if old is None else ("FQDN", "IP", "IPv4", "IPv6")
    if not address_type:
        errs.append(required("addressType"))
    elif address_type not in allowed:
        errs.append(not_supported("addressType", address_type, allowed))
    errs.extend(_slice_endpoints(obj.get("endpoints") or [], address_type))
    errs.extend(_slice_ports(obj.get("ports") or []))
    if old is not None:
        errs.extend(m.immutable(address_type, old.get("addressType") or "", "addressType"))
    return errs


def _fqdn_errors(value: str, path: str) -> list[FieldError]:
    if not value:
        return [required(path)]
    name = value.removesuffix(".")
    problems = m.is_dns1123_subdomain(name)
    if problems:
        return [invalid(path, name, ",".join(problems))]
    labels = name.split(".")
    if len(labels) < 2:
        return [
            invalid(path, name, "should be a domain with at least two segments separated by dots")
        ]
    for label in labels:
        problems = m.is_dns1123_label(label)
        if problems:
            return [invalid(path, label, ",".join(problems))]
    return []


def _slice_endpoints(endpoints: list[dict], address_type: str) -> list[FieldError]:
    if len(endpoints) > MAX_ENDPOINTS:
        return [too_many("endpoints", len(endpoints), MAX_ENDPOINTS)]
    errs: list[FieldError] = []
    for i, endpoint in enumerate(endpoints):
        path = f"endpoints[{i}]"
        addresses = endpoint.get("addresses") or []
        if not addresses:
            errs.append(required(f"{path}.addresses", "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errs.append(too_many(f"{path}.addresses", len(addresses), MAX_ADDRESSES))
        for j, address in enumerate(addresses):
            here = f"{path}.addresses[{j}]"
            if address_type == "IPv4":
                errs.extend(ipv4_errors(address, here) + non_special_ip(address, here))
            elif address_type == "IPv6":
                errs.extend(ipv6_errors(address, here) + non_special_ip(address, here))
            elif address_type == "FQDN":
                errs.extend(_fqdn_errors(address, here))
        if endpoint.get("nodeName") is not None:
            node = endpoint["nodeName"]
            errs.extend(invalid(f"{path}.nodeName", node, msg) for msg in m.dns1123_subdomain(node))
        topology = endpoint.get("deprecatedTopology") or {}
        if len(topology) > MAX_TOPOLOGY_LABELS:
            errs.append(too_many(f"{path}.deprecatedTopology", len(topology), MAX_TOPOLOGY_LABELS))
        errs.extend(m.validate_labels(topology, f"{path}.deprecatedTopology"))
        if endpoint.get("hostname") is not None:
            errs.extend(dns_label(endpoint["hostname"], f"{path}.hostname"))
        if endpoint.get("hints") is not None:
            errs.extend(_zone_hints(endpoint["hints"], f"{path}.hints"))
    return errs


def _zone_hints(hints: dict, path: str) -> list[FieldError]:
    zones = hints.get("forZones") or []
    if len(zones) > MAX_ZONE_HINTS:
        return [too_many(f"{path}.forZones", len(zones), MAX_ZONE_HINTS)]
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, zone in enumerate(zones):
        here = f"{path}.forZones[{i}].name"
        name = zone.get("name") or ""
        if name in seen:
            errs.append(duplicate(here, name))
        seen.add(name)
        errs.extend(invalid(here, name, msg) for msg in m.is_valid_label_value(name))
    return errs


def _slice_ports(ports: list[dict]) -> list[FieldError]:
    if len(ports) > MAX_PORTS:
        return [too_many("ports", len(ports), MAX_PORTS)]
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = f"ports[{i}]"
        name = port.get("name") or ""
        if name:
            errs.extend(dns_label(name, f"{path}.name"))
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
        errs.extend(protocol_errors(port.get("protocol"), f"{path}.protocol"))
        if port.get("appProtocol") is not None:
            errs.extend(qualified_name(port["appProtocol"], f"{path}.appProtocol"))
    return errs

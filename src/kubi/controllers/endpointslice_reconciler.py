"""Deciding a Service's EndpointSlices: which to create, update and delete.

`reconcile(service, pods, existing, ...)` is upstream's reconciler as a pure
function. Per address type the Service supports, each selected pod (with an
IP, not finished; terminating pods included) becomes an Endpoint, grouped by
the ports it serves. For each group existing slices are kept where they
still fit: endpoints no longer wanted are dropped and changed ones replaced
in place; the slices being updated anyway are then filled up (fullest
first), then the unchanged slice that the rest leaves closest to full, and
only then are new slices of at most `max_endpoints_per_slice` created. A
Service without endpoints keeps one empty placeholder slice. Slices about
to be deleted are reused for slices about to be created, so churn becomes
updates. The plan holds the objects exactly as they are to be written.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubi.controllers.endpointslice_rules import (
    CONTROLLER_NAME,
    MAX_ENDPOINTS_PER_SLICE,
    PREFER_CLOSE,
    EndpointKey,
    PortKey,
    address_types,
    endpoint_key,
    endpoint_ports,
    endpoints_equal_beyond_key,
    hints_enabled,
    new_slice,
    owned_by,
    pod_to_endpoint,
    port_key,
    set_trigger_time,
    slice_labels,
    slice_to_fill,
)
from kubi.controllers.endpointutil import should_pod_be_in_endpoints

Obj = dict[str, Any]


@dataclass
class SlicePlan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    # Pods left out because their Node is unknown; the sync is to be retried.
    errors: list[str] = field(default_factory=list)

    def extend(self, other: SlicePlan) -> None:
        self.create += other.create
        self.update += other.update
        self.delete += other.delete
        self.errors += other.errors


@dataclass
class _Settings:
    service: Obj
    max_endpoints: int
    controller_name: str


def _name(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("name", "")


def reconcile(service: Obj, pods: Iterable[Obj], existing: Iterable[Obj], *,
              nodes: Mapping[str, Obj], trigger_time: str | None = None,
              max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
              controller_name: str = CONTROLLER_NAME) -> SlicePlan:
    """What to write so the slices of `existing` represent `pods` for `service`.

    `existing` are the slices labelled for the Service and managed by this
    controller; `nodes` maps node names to Nodes (for zones, and to skip pods
    whose Node is gone). Slices of an address type the Service no longer
    supports are deleted.
    """
    settings = _Settings(service, max_endpoints_per_slice, controller_name)
    ordered_pods = sorted(pods, key=_name)
    supported = address_types(service)
    by_type: dict[str, list[Obj]] = {t: [] for t in supported}
    plan = SlicePlan()
    unsupported: list[Obj] = []
    for endpoint_slice in existing:
        bucket = by_type.get(endpoint_slice.get("addressType", ""))
        if bucket is None:
            unsupported.append(endpoint_slice)
        else:
            bucket.append(endpoint_slice)
    for address_type in supported:
        plan.extend(_reconcile_address_type(settings, ordered_pods, by_type[address_type],
                                            nodes, address_type, trigger_time))
    plan.delete += unsupported
    return plan


def _reconcile_address_type(settings: _Settings, pods: list[Obj], existing: list[Obj],
                            nodes: Mapping[str, Obj], address_type: str,
                            trigger_time: str | None) -> SlicePlan:
    service = settings.service
    plan = SlicePlan()
    existing_by_ports: dict[PortKey, list[Obj]] = {}
    for endpoint_slice in existing:
        if owned_by(endpoint_slice, service):
            existing_by_ports.setdefault(port_key(endpoint_slice.get("ports")),
                                         []).append(endpoint_slice)
        else:
            # Left by an earlier Service of the same name.
            plan.delete.append(endpoint_slice)

    desired_by_ports: dict[PortKey, dict[EndpointKey, Obj]] = {}
    ports_of: dict[PortKey, list[Obj]] = {}
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    md = service.get("metadata") or {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = endpoint_ports(service, pod)
        key = port_key(ports)
        desired = desired_by_ports.setdefault(key, {})
        ports_of.setdefault(key, ports)
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = nodes.get(node_name)
        if node is None and not publish:
            # A pod pointing at a missing Node must not hold the whole Service back.
            plan.errors.append(f"skipping Pod {_name(pod)} for Service {md.get('namespace')}/"
                               f"{md.get('name')}: Node {node_name} Not Found")
            continue
        endpoint = pod_to_endpoint(pod, node, service, address_type)
        if endpoint["addresses"]:
            desired[endpoint_key(endpoint)] = endpoint

    for key, desired in desired_by_ports.items():
        creates, updates, deletes = _reconcile_port_mapping(
            settings, existing_by_ports.get(key, []), desired, ports_of[key], address_type)
        plan.create += creates
        plan.update += updates
        plan.delete += deletes
    for key, slices in existing_by_ports.items():
        if key not in desired_by_ports:
            plan.delete += slices

    if len(existing) == len(plan.delete) and not plan.create:
        placeholder = new_slice(service, [], address_type, settings.controller_name)
        if len(plan.delete) == 1 and _same_placeholder(plan.delete[0], placeholder):
            plan.delete = []  # it is already there; do not delete and recreate it
        else:
            plan.create.append(placeholder)

    changed = {_name(s) for s in plan.update + plan.delete}
    unchanged = [s for s in existing if _name(s) not in changed]
    _reconcile_hints(service, plan, unchanged)
    _reuse_deleted_slices(service, plan)
    if (service.get("metadata") or {}).get("deletionTimestamp"):
        # New slices would race the garbage collector deleting the Service's slices.
        plan.create = []
    for endpoint_slice in plan.create + plan.update:
        set_trigger_time(endpoint_slice, trigger_time)
    return plan


def _reconcile_port_mapping(settings: _Settings, existing: list[Obj],
                            desired: dict[EndpointKey, Obj], ports: list[Obj],
                            address_type: str) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """(creates, updates, deletes) for the slices of one set of ports; consumes `desired`."""
    service = settings.service
    by_name: dict[str, Obj] = {}
    # Dicts as ordered sets, so plans come out in a stable order.
    unchanged: dict[str, None] = {}
    to_update: dict[str, None] = {}
    to_delete: dict[str, None] = {}

    for endpoint_slice in existing:
        name = _name(endpoint_slice)
        by_name[name] = endpoint_slice
        current = endpoint_slice.get("endpoints") or []
        kept = []
        endpoint_changed = False
        for endpoint in current:
            wanted = desired.pop(endpoint_key(endpoint), None)
            if wanted is not None:
                kept.append(wanted)
                endpoint_changed = endpoint_changed or not endpoints_equal_beyond_key(
                    wanted, endpoint)
        labels, labels_changed = slice_labels(endpoint_slice, service, settings.controller_name)
        if endpoint_changed or len(kept) != len(current):
            if not kept:
                to_delete[name] = None
                continue
            updated = copy.deepcopy(endpoint_slice)
            updated["endpoints"] = kept
        elif labels_changed:
            updated = copy.deepcopy(endpoint_slice)
        else:
            unchanged[name] = None
            continue
        updated.setdefault("metadata", {})["labels"] = labels
        by_name[name] = updated
        to_update[name] = None

    # Fill the slices that are written anyway, fullest first.
    if desired and to_update:
        filling = sorted((by_name[n] for n in to_update),
                         key=lambda s: -len(s.get("endpoints") or ()))
        for endpoint_slice in filling:
            _fill(endpoint_slice, desired, settings.max_endpoints)

    creates: list[Obj] = []
    while desired:
        target: Obj | None = None
        if len(desired) < settings.max_endpoints and unchanged:
            target = slice_to_fill((by_name[n] for n in unchanged), len(desired),
                                   settings.max_endpoints)
        if target is None:
            target = new_slice(service, ports, address_type, settings.controller_name)
        else:
            target = copy.deepcopy(target)
            by_name[_name(target)] = target
        _fill(target, desired, settings.max_endpoints)
        if _name(target):
            to_update[_name(target)] = None
            unchanged.pop(_name(target), None)
        else:
            creates.append(target)
    return creates, [by_name[n] for n in to_update], [by_name[n] for n in to_delete]


def _fill(endpoint_slice: Obj, desired: dict[EndpointKey, Obj], max_endpoints: int) -> None:
    endpoints = endpoint_slice.setdefault("endpoints", [])
    while desired and len(endpoints) < max_endpoints:
        endpoints.append(desired.pop(next(iter(desired))))


def _owner_refs(obj: Obj) -> list[tuple[Any, ...]]:
    return [(r.get("apiVersion"), r.get("kind"), r.get("name"), r.get("uid"),
             r.get("controller"), r.get("blockOwnerDeletion"))
            for r in (obj.get("metadata") or {}).get("ownerReferences") or ()]


def _same_placeholder(existing: Obj, placeholder: Obj) -> bool:
    a, b = existing.get("metadata") or {}, placeholder["metadata"]
    return (a.get("namespace") == b.get("namespace")
            and (a.get("labels") or {}) == (b.get("labels") or {})
            and _owner_refs(existing) == _owner_refs(placeholder)
            and existing.get("addressType") == placeholder.get("addressType")
            and not existing.get("endpoints") and not existing.get("ports"))


def _reuse_deleted_slices(service: Obj, plan: SlicePlan) -> None:
    """Turn create+delete pairs into updates of the slices that would be deleted.

    Only slices this Service owns and of the same address type are reused: a
    slice of an earlier Service of the same name is the garbage collector's.
    """
    index = 0
    while index < len(plan.delete) and plan.create:
        victim = plan.delete[index]
        replacement = plan.create[-1]
        if victim.get("addressType") == replacement.get("addressType") \
                and owned_by(victim, service):
            victim_md = victim.get("metadata") or {}
            replacement["metadata"]["name"] = victim_md.get("name")
            if victim_md.get("resourceVersion"):
                replacement["metadata"]["resourceVersion"] = victim_md["resourceVersion"]
            plan.create.pop()
            plan.update.append(replacement)
            plan.delete.pop(index)
        else:
            index += 1


# ---- topology hints (trafficDistribution: PreferClose)

def _is_ready(endpoint: Obj) -> bool:
    return bool((endpoint.get("conditions") or {}).get("ready"))


def _wanted_hints(endpoint: Obj) -> Obj | None:
    zone = endpoint.get("zone")
    return {"forZones": [{"name": zone}]} if zone else None


def _needs_hint_update(endpoint_slice: Obj) -> bool:
    for endpoint in endpoint_slice.get("endpoints") or ():
        if not _is_ready(endpoint):
            continue
        hints = endpoint.get("hints") or {}
        zone = endpoint.get("zone")
        zones = hints.get("forZones") or []
        if zone and (len(zones) != 1 or zones[0].get("name") != zone):
            return True
        if not zone and zones:
            return True
        if hints.get("forNodes"):
            return True
    return False


def _reconcile_hints(service: Obj, plan: SlicePlan, unchanged: list[Obj]) -> None:
    """Zone hints for ready endpoints under PreferClose; no hints on what is written otherwise.

    Topology Aware Routing by annotation (`topology-mode: Auto`) would need the
    zone capacity heuristics, which are not implemented: such Services get no
    hints, as when the heuristics find zones too unbalanced.
    """
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    distribution = (service.get("spec") or {}).get("trafficDistribution")
    prefer_close = distribution == PREFER_CLOSE and not hints_enabled(annotations)
    if prefer_close:
        for endpoint_slice in unchanged:
            if _needs_hint_update(endpoint_slice):
                plan.update.append(copy.deepcopy(endpoint_slice))
    for endpoint_slice in plan.create + plan.update:
        for endpoint in endpoint_slice.get("endpoints") or ():
            wanted = _wanted_hints(endpoint) if prefer_close else None
            if prefer_close and not _is_ready(endpoint):
                continue  # hints of endpoints that are not ready are left alone
            if wanted is None:
                endpoint.pop("hints", None)
            else:
                endpoint["hints"] = wanted

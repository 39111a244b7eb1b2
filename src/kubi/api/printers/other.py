"""Table printers for `storage.k8s.io`, `coordination.k8s.io` and `discovery.k8s.io`.

StorageClasses mark the cluster default with a ` (default)` suffix on the
name and print the API defaults (Delete, Immediate, false) for unset
policies. CSIDriver booleans are JSON booleans in the cells, with upstream's
defaults for unset ones. EndpointSlices list up to three ports and
addresses each, like Endpoints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubi.api.printers._common import (
    AGE,
    NAME,
    NONE,
    UNSET,
    Column,
    Obj,
    Printer,
    age,
    items,
    list_with_more,
    metadata,
    name_of,
    section,
)

_DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


def is_default_class(obj: Obj) -> bool:
    annotations = section(metadata(obj), "annotations")
    return any(annotations.get(key) == "true" for key in _DEFAULT_CLASS_ANNOTATIONS)


def _storageclass_cells(obj: Obj, now: datetime) -> list[Any]:
    name = name_of(obj) + (" (default)" if is_default_class(obj) else "")
    expansion = obj.get("allowVolumeExpansion")
    return [
        name,
        obj.get("provisioner") or "",
        obj.get("reclaimPolicy") or "Delete",
        obj.get("volumeBindingMode") or "Immediate",
        expansion if isinstance(expansion, bool) else False,
        age(obj, now),
    ]


def _flag(spec: Obj, key: str, default: bool) -> bool:
    value = spec.get(key)
    return value if isinstance(value, bool) else default


def _csidriver_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = section(obj, "spec")
    # Stored objects cannot tell an empty list from an unset one, so both read <unset>.
    token_requests = items(spec, "tokenRequests")
    audiences = (
        ",".join(t.get("audience") or "" for t in token_requests) if token_requests else UNSET
    )
    return [
        name_of(obj),
        _flag(spec, "attachRequired", True),
        _flag(spec, "podInfoOnMount", False),
        _flag(spec, "storageCapacity", False),
        audiences,
        _flag(spec, "requiresRepublish", False),
        ",".join(items(spec, "volumeLifecycleModes")) or NONE,
        age(obj, now),
    ]


def _csinode_cells(obj: Obj, now: datetime) -> list[Any]:
    return [name_of(obj), len(items(section(obj, "spec"), "drivers")), age(obj, now)]


def _lease_cells(obj: Obj, now: datetime) -> list[Any]:
    return [name_of(obj), section(obj, "spec").get("holderIdentity") or "", age(obj, now)]


def _slice_port(port: Obj) -> str:
    if isinstance(port.get("port"), int):
        return str(port["port"])
    if port.get("name") is not None:
        return str(port["name"])
    return "*"


def _endpointslice_cells(obj: Obj, now: datetime) -> list[Any]:
    ports = [_slice_port(port) for port in items(obj, "ports")]
    addresses = [
        address for endpoint in items(obj, "endpoints") for address in items(endpoint, "addresses")
    ]
    return [
        name_of(obj),
        obj.get("addressType") or "",
        list_with_more(ports),
        list_with_more(addresses),
        age(obj, now),
    ]


PRINTERS: dict[tuple[str, str], Printer] = {
    ("storage.k8s.io", "storageclasses"): Printer(
        (
            NAME,
            Column("Provisioner", description="Driver that provisions volumes of this class."),
            Column("ReclaimPolicy", description="Reclaim policy of provisioned volumes."),
            Column("VolumeBindingMode", description="When volumes are bound and provisioned."),
            Column("AllowVolumeExpansion", description="Whether claims may be resized."),
            AGE,
        ),
        _storageclass_cells,
    ),
    ("storage.k8s.io", "csidrivers"): Printer(
        (
            NAME,
            Column("AttachRequired", "boolean", "Whether volumes need an attach step."),
            Column("PodInfoOnMount", "boolean", "Whether pod details are passed on mount."),
            Column("StorageCapacity", "boolean", "Whether capacity is considered in scheduling."),
            Column("TokenRequests", description="Audiences of service account tokens passed."),
            Column("RequiresRepublish", "boolean", "Whether volumes are periodically remounted."),
            Column("Modes", description="Volume lifecycle modes supported."),
            AGE,
        ),
        _csidriver_cells,
    ),
    ("storage.k8s.io", "csinodes"): Printer(
        (NAME, Column("Drivers", "integer", "Number of CSI drivers registered on the node."), AGE),
        _csinode_cells,
    ),
    ("coordination.k8s.io", "leases"): Printer(
        (NAME, Column("Holder", description="Identity of the current lease holder."), AGE),
        _lease_cells,
    ),
    ("discovery.k8s.io", "endpointslices"): Printer(
        (
            NAME,
            Column("AddressType", description="IPv4, IPv6 or FQDN."),
            Column("Ports", description="Ports of the slice."),
            Column("Endpoints", description="Addresses of the endpoints in the slice."),
            AGE,
        ),
        _endpointslice_cells,
    ),
}

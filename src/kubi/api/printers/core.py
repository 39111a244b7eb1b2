"""Table printers for the core (`v1`) group, apart from pods and events.

Each printer reproduces the columns of upstream's server-side printer for
that kind and the same fillers in the same places (`<none>`, `<unset>`,
`<pending>`, `<unknown>`). A few fields that the API always defaults (service
type and port protocol, controller replicas) fall back to those defaults
here, so an object stored without them still prints as upstream would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubi.api.printers._common import (
    AGE,
    NAME,
    NONE,
    UNKNOWN,
    UNSET,
    Column,
    Obj,
    Printer,
    access_modes,
    age,
    container_cells,
    format_labels,
    int_field,
    items,
    metadata,
    name_of,
    quantity_text,
    section,
    template_containers,
    wide,
)

# --- namespaces, configmaps, secrets, serviceaccounts -------------------------


def _namespace_cells(obj: Obj, now: datetime) -> list[Any]:
    return [name_of(obj), section(obj, "status").get("phase") or "", age(obj, now)]


def _configmap_cells(obj: Obj, now: datetime) -> list[Any]:
    count = len(section(obj, "data")) + len(section(obj, "binaryData"))
    return [name_of(obj), count, age(obj, now)]


def _secret_cells(obj: Obj, now: datetime) -> list[Any]:
    return [name_of(obj), obj.get("type") or "", len(section(obj, "data")), age(obj, now)]


def _serviceaccount_cells(obj: Obj, now: datetime) -> list[Any]:
    return [name_of(obj), len(items(obj, "secrets")), age(obj, now)]


# --- replicationcontrollers --------------------------------------------------

_CONTAINERS = wide("Containers", "Names of the containers in the pod template.")
_IMAGES = wide("Images", "Images of the containers in the pod template.")


def _rc_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = section(obj, "spec"), section(obj, "status")
    names, images = container_cells(template_containers(obj))
    return [
        name_of(obj),
        int_field(spec, "replicas", 1),
        int_field(status, "replicas"),
        int_field(status, "readyReplicas"),
        age(obj, now),
        names,
        images,
        format_labels(section(spec, "selector")),
    ]


# --- services and endpoints ---------------------------------------------------


def _load_balancer_addresses(service: Obj) -> list[str]:
    found = set()
    for ingress in items(section(section(service, "status"), "loadBalancer"), "ingress"):
        address = ingress.get("ip") or ingress.get("hostname")
        if address:
            found.add(address)
    return sorted(found)


def _external_ip(service: Obj) -> str:
    spec = section(service, "spec")
    service_type = spec.get("type") or "ClusterIP"
    external_ips = [ip for ip in items(spec, "externalIPs") if isinstance(ip, str)]
    if service_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) or NONE
    if service_type == "LoadBalancer":
        # The server prints wide, so load balancer addresses are never clipped.
        addresses = _load_balancer_addresses(service) + external_ips
        return ",".join(addresses) or "<pending>"
    if service_type == "ExternalName":
        return spec.get("externalName") or ""
    return UNKNOWN


def _port_string(ports: list[Obj]) -> str:
    pieces = []
    for port in ports:
        protocol = port.get("protocol") or "TCP"
        node_port = int_field(port, "nodePort")
        if node_port > 0:
            pieces.append(f"{int_field(port, 'port')}:{node_port}/{protocol}")
        else:
            pieces.append(f"{int_field(port, 'port')}/{protocol}")
    return ",".join(pieces)


def _service_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = section(obj, "spec")
    cluster_ips = items(spec, "clusterIPs")
    return [
        name_of(obj),
        spec.get("type") or "ClusterIP",
        cluster_ips[0] if cluster_ips else NONE,
        _external_ip(obj),
        _port_string(items(spec, "ports")) or NONE,
        age(obj, now),
        format_labels(section(spec, "selector")),
    ]


def _host_port(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(endpoints: Obj, limit: int = 3) -> str:
    """Up to three `ip:port` pairs over all subsets, then ` + N more...`."""
    subsets = items(endpoints, "subsets")
    if not subsets:
        return NONE
    shown: list[str] = []
    total = 0
    for subset in subsets:
        addresses = [address.get("ip") or "" for address in items(subset, "addresses")]
        ports = items(subset, "ports")
        # A headless service may publish addresses without any port.
        groups = [addresses]
        if ports:
            groups = [[_host_port(ip, int_field(p, "port")) for ip in addresses] for p in ports]
        for group in groups:
            total += len(group)
            shown.extend(group[: max(0, limit - len(shown))])
    text = ",".join(shown)
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text


def _endpoints_cells(obj: Obj, now: datetime) -> list[Any]:
    return [name_of(obj), format_endpoints(obj), age(obj, now)]


# --- nodes ----------------------------------------------------------------------

_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"


def node_roles(node: Obj) -> list[str]:
    roles = set()
    for key, value in section(metadata(node), "labels").items():
        if key.startswith(_ROLE_PREFIX) and len(key) > len(_ROLE_PREFIX):
            roles.add(key.removeprefix(_ROLE_PREFIX))
        elif key == _ROLE_LABEL and value:
            roles.add(value)
    return sorted(roles)


def node_status(node: Obj) -> str:
    ready = None
    for condition in items(section(node, "status"), "conditions"):
        if condition.get("type") == "Ready":
            ready = condition
    # Only the last Ready condition counts, as upstream keys conditions by type.
    if ready is None:
        states = ["Unknown"]
    else:
        states = ["Ready" if ready.get("status") == "True" else "NotReady"]
    if section(node, "spec").get("unschedulable"):
        states.append("SchedulingDisabled")
    return ",".join(states)


def _node_address(node: Obj, kind: str) -> str:
    for address in items(section(node, "status"), "addresses"):
        if address.get("type") == kind:
            return address.get("address") or ""
    return NONE


def _node_cells(obj: Obj, now: datetime) -> list[Any]:
    info = section(section(obj, "status"), "nodeInfo")
    return [
        name_of(obj),
        node_status(obj),
        ",".join(node_roles(obj)) or NONE,
        age(obj, now),
        info.get("kubeletVersion") or "",
        _node_address(obj, "InternalIP"),
        _node_address(obj, "ExternalIP"),
        info.get("osImage") or UNKNOWN,
        info.get("kernelVersion") or UNKNOWN,
        info.get("containerRuntimeVersion") or UNKNOWN,
    ]


# --- resourcequotas -------------------------------------------------------------


def _quota_cells(obj: Obj, now: datetime) -> list[Any]:
    status = section(obj, "status")
    hard, used = section(status, "hard"), section(status, "used")
    requests: list[str] = []
    limits: list[str] = []
    for resource in sorted(hard):
        target = limits if resource.split(".")[0] == "limits" and "." in resource else requests
        usage = f"{quantity_text(used.get(resource))}/{quantity_text(hard[resource])}"
        target.append(f"{resource}: {usage}")
    return [name_of(obj), ", ".join(requests), ", ".join(limits), age(obj, now)]


# --- persistentvolumes and claims -----------------------------------------------

_BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def _storage_class(obj: Obj) -> str:
    annotations = section(metadata(obj), "annotations")
    if _BETA_CLASS_ANNOTATION in annotations:
        return str(annotations[_BETA_CLASS_ANNOTATION])
    return section(obj, "spec").get("storageClassName") or ""


def _phase(obj: Obj) -> str:
    if metadata(obj).get("deletionTimestamp") is not None:
        return "Terminating"
    return section(obj, "status").get("phase") or ""


def _pv_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = section(obj, "spec")
    claim = ""
    if spec.get("claimRef") is not None:
        ref = section(spec, "claimRef")
        claim = f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"
    return [
        name_of(obj),
        quantity_text(section(spec, "capacity").get("storage")),
        access_modes(items(spec, "accessModes")),
        spec.get("persistentVolumeReclaimPolicy") or "",
        _phase(obj),
        claim,
        _storage_class(obj),
        spec.get("volumeAttributesClassName") or UNSET,
        section(obj, "status").get("reason") or "",
        age(obj, now),
        spec.get("volumeMode") or UNSET,
    ]


def _pvc_cells(obj: Obj, now: datetime) -> list[Any]:
    spec, status = section(obj, "spec"), section(obj, "status")
    volume = spec.get("volumeName") or ""
    capacity = modes = ""
    if volume:
        capacity = quantity_text(section(status, "capacity").get("storage"))
        modes = access_modes(items(status, "accessModes"))
    return [
        name_of(obj),
        _phase(obj),
        volume,
        capacity,
        modes,
        _storage_class(obj),
        spec.get("volumeAttributesClassName") or UNSET,
        age(obj, now),
        spec.get("volumeMode") or UNSET,
    ]


PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "namespaces"): Printer(
        (NAME, Column("Status", description="Lifecycle phase of the namespace."), AGE),
        _namespace_cells,
    ),
    ("", "configmaps"): Printer(
        (NAME, Column("Data", description="Number of data and binaryData entries."), AGE),
        _configmap_cells,
    ),
    ("", "secrets"): Printer(
        (
            NAME,
            Column("Type", description="Type of the secret's content."),
            Column("Data", description="Number of data entries."),
            AGE,
        ),
        _secret_cells,
    ),
    ("", "serviceaccounts"): Printer(
        (NAME, Column("Secrets", description="Number of secrets listed."), AGE),
        _serviceaccount_cells,
    ),
    ("", "replicationcontrollers"): Printer(
        (
            NAME,
            Column("Desired", "integer", "Requested number of replicas."),
            Column("Current", "integer", "Number of replicas that exist."),
            Column("Ready", "integer", "Number of ready replicas."),
            AGE,
            _CONTAINERS,
            _IMAGES,
            wide("Selector", "Label query over the pods the controller manages."),
        ),
        _rc_cells,
    ),
    ("", "services"): Printer(
        (
            NAME,
            Column("Type", description="How the service is exposed."),
            Column("Cluster-IP", description="Virtual IP inside the cluster."),
            Column("External-IP", description="Addresses reachable from outside the cluster."),
            Column("Port(s)", description="Ports the service exposes."),
            AGE,
            wide("Selector", "Label query over the pods behind the service."),
        ),
        _service_cells,
    ),
    ("", "endpoints"): Printer(
        (NAME, Column("Endpoints", description="Ready addresses and ports."), AGE),
        _endpoints_cells,
    ),
    ("", "nodes"): Printer(
        (
            NAME,
            Column("Status", description="Readiness and schedulability of the node."),
            Column("Roles", description="Roles taken from node-role labels."),
            AGE,
            Column("Version", description="Kubelet version."),
            wide("Internal-IP", "First internal address of the node."),
            wide("External-IP", "First external address of the node."),
            wide("OS-Image", "Operating system image."),
            wide("Kernel-Version", "Kernel version."),
            wide("Container-Runtime", "Container runtime and version."),
        ),
        _node_cells,
    ),
    ("", "resourcequotas"): Printer(
        (
            NAME,
            Column("Request", description="Usage against hard limits of non-limit resources."),
            Column("Limit", description="Usage against hard limits of `limits.*` resources."),
            AGE,
        ),
        _quota_cells,
    ),
    ("", "persistentvolumes"): Printer(
        (
            NAME,
            Column("Capacity", description="Storage capacity of the volume."),
            Column("Access Modes", description="Ways the volume can be mounted."),
            Column("Reclaim Policy", description="What happens to the volume once released."),
            Column("Status", description="Lifecycle phase of the volume."),
            Column("Claim", description="Claim the volume is bound to."),
            Column("StorageClass", description="Storage class of the volume."),
            Column("VolumeAttributesClass", description="Volume attributes class of the volume."),
            Column("Reason", description="Reason for a failed phase."),
            AGE,
            wide("VolumeMode", "Filesystem or Block."),
        ),
        _pv_cells,
    ),
    ("", "persistentvolumeclaims"): Printer(
        (
            NAME,
            Column("Status", description="Lifecycle phase of the claim."),
            Column("Volume", description="Volume bound to the claim."),
            Column("Capacity", description="Capacity of the bound volume."),
            Column("Access Modes", description="Access modes of the bound volume."),
            Column("StorageClass", description="Storage class of the claim."),
            Column("VolumeAttributesClass", description="Volume attributes class of the claim."),
            AGE,
            wide("VolumeMode", "Filesystem or Block."),
        ),
        _pvc_cells,
    ),
}

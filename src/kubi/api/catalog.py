"""The resource catalog: every API resource kubi serves, described once.

Each `ResourceType` carries what discovery, routing, storage and printing need
to know about a resource: group, version, kind, plural and singular names,
scope, short names, categories and subresources, all as upstream v1.33 has
them. Everything else in kubi looks resources up here, by plural (routing), by
kind (decoding a body), or by short name (never: kubectl resolves those itself
from discovery).
"""

from __future__ import annotations

from dataclasses import dataclass, field

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# Subresources and the verbs upstream lists for them in discovery.
_SUB_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "binding": ("create",),
    "eviction": ("create",),
    "log": ("get",),
    "exec": ("create", "get"),
    "attach": ("create", "get"),
    "portforward": ("create", "get"),
    "proxy": ("create", "delete", "get", "patch", "update"),
    "finalize": ("update",),
    "ephemeralcontainers": ("get", "patch", "update"),
    "resize": ("get", "patch", "update"),
    "token": ("create",),
}

# The kind a subresource answers with, where it differs from the parent's kind.
_SUB_KIND: dict[str, tuple[str, str, str]] = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "log": ("", "", ""),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
    "proxy": ("", "v1", "PodProxyOptions"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    # Kinds whose spec changes bump metadata.generation (upstream's strategies).
    has_generation: bool = False
    # The key under /registry/ where objects live (shared by two API views of events).
    storage_name: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, or `pods` for the core group: the form errors use."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def storage_prefix(self) -> str:
        return f"/registry/{self.storage_name or self.plural}/"

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.storage_prefix}{namespace}/{name}"
        return f"{self.storage_prefix}{name}"

    def sub_verbs(self, sub: str) -> tuple[str, ...]:
        return _SUB_VERBS[sub]

    def sub_kind(self, sub: str) -> tuple[str, str, str]:
        """(group, version, kind) that the subresource answers with."""
        if sub in _SUB_KIND:
            return _SUB_KIND[sub]
        return ("", "", self.kind)


def _rt(group: str, version: str, kind: str, plural: str, namespaced: bool = True, **kw) -> ResourceType:
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, **kw)


RESOURCES: tuple[ResourceType, ...] = (
    # core/v1
    _rt("", "v1", "Namespace", "namespaces", False, short_names=("ns",),
        subresources=("finalize", "status")),
    _rt("", "v1", "Pod", "pods", short_names=("po",), categories=("all",),
        subresources=("attach", "binding", "ephemeralcontainers", "eviction", "exec", "log",
                      "portforward", "proxy", "resize", "status")),
    _rt("", "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",),
        categories=("all",), subresources=("scale", "status"), has_generation=True),
    _rt("", "v1", "Service", "services", short_names=("svc",), categories=("all",),
        subresources=("proxy", "status")),
    _rt("", "v1", "Endpoints", "endpoints", short_names=("ep",)),
    _rt("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _rt("", "v1", "Secret", "secrets"),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",),
        subresources=("token",)),
    _rt("", "v1", "PersistentVolume", "persistentvolumes", False, short_names=("pv",),
        subresources=("status",)),
    _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",),
        subresources=("status",)),
    _rt("", "v1", "Node", "nodes", False, short_names=("no",), subresources=("proxy", "status")),
    _rt("", "v1", "Event", "events", short_names=("ev",)),
    _rt("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",),
        subresources=("status",)),
    _rt("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    # apps/v1
    _rt("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=("all",),
        subresources=("scale", "status"), has_generation=True),
    _rt("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=("all",),
        subresources=("scale", "status"), has_generation=True),
    _rt("apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=("all",),
        subresources=("scale", "status"), has_generation=True),
    _rt("apps", "v1", "ControllerRevision", "controllerrevisions"),
    # events.k8s.io/v1 is a second view over the core events in storage.
    _rt("events.k8s.io", "v1", "Event", "events", short_names=("ev",), storage_name="events"),
    # storage.k8s.io/v1
    _rt("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, short_names=("sc",)),
    _rt("storage.k8s.io", "v1", "CSIDriver", "csidrivers", False),
    _rt("storage.k8s.io", "v1", "CSINode", "csinodes", False),
    # coordination.k8s.io/v1
    _rt("coordination.k8s.io", "v1", "Lease", "leases"),
    # discovery.k8s.io/v1
    _rt("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
)

# Group order for discovery, as upstream's aggregated discovery lists them.
GROUP_ORDER: tuple[str, ...] = (
    "",
    "apps",
    "events.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "storage.k8s.io",
)

_BY_PLURAL: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_KIND: dict[tuple[str, str], ResourceType] = {(r.api_version, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PLURAL.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def groups() -> dict[str, list[str]]:
    """Group name → its served versions, in preference order."""
    out: dict[str, list[str]] = {}
    for group in GROUP_ORDER:
        for r in RESOURCES:
            if r.group == group and r.version not in out.setdefault(group, []):
                out[group].append(r.version)
    return out


def resources_of(group: str, version: str) -> list[ResourceType]:
    return [r for r in RESOURCES if r.group == group and r.version == version]

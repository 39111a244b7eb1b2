"""The empty object a create is compared against.

Upstream records a create as an update from the kind's Go zero value, and that
value is not `{}`: struct-valued fields are always serialized (`spec`,
`spec.template`, `spec.strategy`, a container's `resources`), and fields
without `omitempty` appear as null or zero (`spec.containers: null`,
`metadata.creationTimestamp: null`). What is already present there is not
"added" by the create, so it gets no `.` entry of its own in managedFields:
a Deployment's creator owns `f:spec: {f:strategy: {f:rollingUpdate: {.: {},
...}}}` but not `f:spec: {.: {}}`. The table below is that zero value's JSON
shape for the built-in kinds; custom resources start from nothing at all,
which is why their managedFields show `f:spec: {.: {}}`.
"""

from __future__ import annotations

from typing import Any

_META: dict[str, Any] = {"creationTimestamp": None}
_POD_TEMPLATE: dict[str, Any] = {"metadata": _META, "spec": {"containers": None}}
_ROLE_REF: dict[str, Any] = {"roleRef": {"apiGroup": "", "kind": "", "name": ""}}
_HPA_SPEC: dict[str, Any] = {"scaleTargetRef": {"kind": "", "name": ""}, "maxReplicas": 0}
_NAMES: dict[str, Any] = {"plural": "", "kind": ""}

# Beyond `metadata`, which every built-in kind has; kinds absent here have only that.
_ZERO: dict[tuple[str, str], dict[str, Any]] = {
    ("v1", "Event"): {
        "involvedObject": {},
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": None,
        "reportingComponent": "",
        "reportingInstance": "",
    },
    ("v1", "LimitRange"): {"spec": {"limits": None}},
    ("v1", "Namespace"): {"spec": {}, "status": {}},
    ("v1", "Node"): {
        "spec": {},
        "status": {
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": "",
                "osImage": "",
                "containerRuntimeVersion": "",
                "kubeletVersion": "",
                "kubeProxyVersion": "",
                "operatingSystem": "",
                "architecture": "",
            },
        },
    },
    ("v1", "PersistentVolume"): {"spec": {}, "status": {}},
    ("v1", "PersistentVolumeClaim"): {"spec": {"resources": {}}, "status": {}},
    ("v1", "Pod"): {"spec": {"containers": None}, "status": {}},
    ("v1", "PodTemplate"): {"template": _POD_TEMPLATE},
    ("v1", "ReplicationController"): {"spec": {}, "status": {"replicas": 0}},
    ("v1", "ResourceQuota"): {"spec": {}, "status": {}},
    ("v1", "Service"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("apps/v1", "ControllerRevision"): {"revision": 0},
    ("apps/v1", "DaemonSet"): {
        "spec": {"selector": None, "template": _POD_TEMPLATE, "updateStrategy": {}},
        "status": {
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        },
    },
    ("apps/v1", "Deployment"): {
        "spec": {"selector": None, "template": _POD_TEMPLATE, "strategy": {}},
        "status": {},
    },
    ("apps/v1", "ReplicaSet"): {
        "spec": {"selector": None, "template": _POD_TEMPLATE},
        "status": {"replicas": 0},
    },
    ("apps/v1", "StatefulSet"): {
        "spec": {
            "selector": None,
            "template": _POD_TEMPLATE,
            "serviceName": "",
            "updateStrategy": {},
        },
        "status": {"replicas": 0, "availableReplicas": 0},
    },
    ("autoscaling/v1", "HorizontalPodAutoscaler"): {
        "spec": _HPA_SPEC,
        "status": {"currentReplicas": 0, "desiredReplicas": 0},
    },
    ("autoscaling/v2", "HorizontalPodAutoscaler"): {
        "spec": _HPA_SPEC,
        "status": {"desiredReplicas": 0, "currentMetrics": None},
    },
    ("batch/v1", "CronJob"): {
        "spec": {
            "schedule": "",
            "jobTemplate": {"metadata": _META, "spec": {"template": _POD_TEMPLATE}},
        },
        "status": {},
    },
    ("batch/v1", "Job"): {"spec": {"template": _POD_TEMPLATE}, "status": {}},
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): {"spec": {}, "status": {}},
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): {"spec": {}},
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): {
        "spec": {"group": "", "names": _NAMES, "scope": "", "versions": None},
        "status": {"conditions": None, "acceptedNames": _NAMES, "storedVersions": None},
    },
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): {
        "spec": {"request": None, "signerName": ""},
        "status": {},
    },
    ("coordination.k8s.io/v1", "Lease"): {"spec": {}},
    ("discovery.k8s.io/v1", "EndpointSlice"): {"addressType": "", "endpoints": None, "ports": None},
    ("events.k8s.io/v1", "Event"): {
        "eventTime": None,
        "regarding": {},
        "deprecatedSource": {},
        "deprecatedFirstTimestamp": None,
        "deprecatedLastTimestamp": None,
    },
    ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"): {
        "spec": {"priorityLevelConfiguration": {"name": ""}, "matchingPrecedence": 0},
        "status": {},
    },
    ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration"): {
        "spec": {"type": ""},
        "status": {},
    },
    ("networking.k8s.io/v1", "IPAddress"): {"spec": {}},
    ("networking.k8s.io/v1", "Ingress"): {"spec": {}, "status": {"loadBalancer": {}}},
    ("networking.k8s.io/v1", "IngressClass"): {"spec": {}},
    ("networking.k8s.io/v1", "NetworkPolicy"): {"spec": {"podSelector": {}}},
    ("networking.k8s.io/v1", "ServiceCIDR"): {"spec": {}, "status": {}},
    ("node.k8s.io/v1", "RuntimeClass"): {"handler": ""},
    ("policy/v1", "PodDisruptionBudget"): {
        "spec": {},
        "status": {
            "disruptionsAllowed": 0,
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "expectedPods": 0,
        },
    },
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): {"rules": None},
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _ROLE_REF,
    ("rbac.authorization.k8s.io/v1", "Role"): {"rules": None},
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _ROLE_REF,
    ("scheduling.k8s.io/v1", "PriorityClass"): {"value": 0},
    ("storage.k8s.io/v1", "CSIDriver"): {"spec": {}},
    ("storage.k8s.io/v1", "CSINode"): {"spec": {"drivers": None}},
    ("storage.k8s.io/v1", "CSIStorageCapacity"): {"storageClassName": ""},
    ("storage.k8s.io/v1", "StorageClass"): {"provisioner": ""},
    ("storage.k8s.io/v1", "VolumeAttachment"): {
        "spec": {"attacher": "", "source": {}, "nodeName": ""},
        "status": {"attached": False},
    },
}

# Groups served by built-in Go types; any other group is a custom resource.
_BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
        "internal.apiserver.k8s.io",
    }
)

_METADATA_ONLY: dict[str, Any] = {"metadata": _META}
_NOTHING: dict[str, Any] = {}
_cache: dict[tuple[str, str], dict[str, Any]] = {}


def empty_object(api_version: str, kind: str) -> dict[str, Any]:
    """The kind's zero value as JSON. Shared: callers must not modify it."""
    key = (api_version, kind)
    found = _cache.get(key)
    if found is None:
        group = api_version.rpartition("/")[0]
        extra = _ZERO.get(key)
        if extra is not None:
            found = {"metadata": _META, **extra}
        elif group in _BUILTIN_GROUPS:
            found = _METADATA_ONLY
        else:
            found = _NOTHING
        _cache[key] = found
    return found

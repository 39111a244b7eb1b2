"""core/v1 Node, Event, ResourceQuota and LimitRange: defaults and the exact
upstream validation messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubi.api import hooks

hooks.load()


def write(obj: dict, old: dict | None = None, sub: str = "") -> list[str]:
    hooks.apply_defaults(obj)
    hooks.prepare(obj, old)
    return [str(e) for e in hooks.validate(obj, old, sub)]


def node(**fields: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, **fields}


# -- Node ----------------------------------------------------------------------------


def test_node_defaults_allocatable_and_pod_cidr() -> None:
    n = node(spec={"podCIDR": "10.42.1.0/24"}, status={"capacity": {"cpu": "4", "pods": "110"}})
    assert write(n) == []
    assert n["spec"]["podCIDRs"] == ["10.42.1.0/24"]
    assert n["status"]["allocatable"] == {"cpu": "4", "pods": "110"}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"spec": {"taints": [{"key": "a", "effect": "Sometimes"}]}},
            [
                (
                    'metadata.taints[0].effect: Unsupported value: "Sometimes": supported values: '
                    '"NoSchedule", "PreferNoSchedule", "NoExecute"'
                )
            ],
        ),
        ({"spec": {"taints": [{"key": "a"}]}}, ["metadata.taints[0].effect: Required value"]),
        (
            {
                "spec": {
                    "taints": [
                        {"key": "a", "effect": "NoSchedule"},
                        {"key": "a", "effect": "NoSchedule"},
                    ]
                }
            },
            [
                (
                    'metadata.taints[1]: Duplicate value: core.Taint{Key:"a", Value:"", '
                    'Effect:"NoSchedule", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and '
                    "effect pair"
                )
            ],
        ),
        (
            {"spec": {"podCIDRs": ["10.42.0.0/24", "10.43.0.0/24"]}},
            [
                (
                    'spec.podCIDRs: Invalid value: []string{"10.42.0.0/24", "10.43.0.0/24"}: '
                    "may specify no more than one CIDR for each IP family"
                )
            ],
        ),
        (
            {"spec": {"podCIDRs": ["10.42.0.0/33"]}},
            [
                (
                    'spec.podCIDRs[0]: Invalid value: "10.42.0.0/33": must be a valid CIDR value, '
                    "(e.g. 10.9.8.0/24 or 2001:db8::/64)"
                )
            ],
        ),
        (
            {"status": {"capacity": {"pods": "1500m"}}},
            [
                'status.capacity.pods: Invalid value: "1500m": must be an integer',
                'status.allocatable.pods: Invalid value: "1500m": must be an integer',
            ],
        ),
        (
            {"status": {"capacity": {"cpu": "-1"}, "allocatable": {"cpu": "1"}}},
            ['status.capacity.cpu: Invalid value: "-1": must be greater than or equal to 0'],
        ),
    ],
)
def test_node_validation(fields: dict, errors: list[str]) -> None:
    assert write(node(**fields)) == errors


def test_node_update_rules() -> None:
    old = node(spec={"podCIDRs": ["10.42.1.0/24"], "providerID": "kubi://n1"})
    write(old)
    new = copy.deepcopy(old)
    new["spec"]["podCIDRs"] = ["10.42.2.0/24"]
    new["spec"]["providerID"] = "kubi://n2"
    new["status"] = {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}] * 2}
    assert write(new, old) == [
        (
            'status.addresses[1]: Duplicate value: core.NodeAddress{Type:"InternalIP", '
            'Address:"10.0.0.1"}'
        ),
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid',
        'spec.providerID: Forbidden: node updates may not change providerID except from "" to valid',
    ]


def test_node_pod_cidr_may_be_set_once() -> None:
    old = node()
    write(old)
    new = copy.deepcopy(old)
    new["spec"]["podCIDRs"] = ["10.42.3.0/24"]
    assert write(new, old) == []
    assert new["spec"]["podCIDR"] == "10.42.3.0/24"


# -- Event (core/v1) -----------------------------------------------------------------


def event(**fields: Any) -> dict:
    meta = {"name": "web.17a", "namespace": "default"}
    return {"apiVersion": "v1", "kind": "Event", "metadata": meta, **fields}


def test_core_event_shape_defaults() -> None:
    ev = event(
        involvedObject={"kind": "Pod", "name": "p", "namespace": "default"}, reason="Started"
    )
    assert write(ev) == []
    assert ev["firstTimestamp"] is None and ev["eventTime"] is None
    assert ev["reportingComponent"] == "" and ev["source"] == {}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"involvedObject": {"namespace": "other"}},
            ['involvedObject.namespace: Invalid value: "other": does not match event.namespace'],
        ),
        (
            {
                "eventTime": "2024-01-01T00:00:00.000000Z",
                "involvedObject": {"namespace": "default"},
            },
            [
                "reportingController: Required value",
                'reportingController: Invalid value: "": name part must be non-empty',
                (
                    'reportingController: Invalid value: "": name part must consist of alphanumeric '
                    "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
                    "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
                ),
                "reportingInstance: Required value",
                "action: Required value",
                "reason: Required value",
            ],
        ),
        (
            {
                "eventTime": "2024-01-01T00:00:00.000000Z",
                "involvedObject": {"namespace": "default"},
                "reportingComponent": "kubelet",
                "reportingInstance": "n1",
                "action": "Pull",
                "reason": "x" * 129,
            },
            ['reason: Invalid value: "": can have at most 128 characters'],
        ),
    ],
)
def test_core_event_legacy_validation(fields: dict, errors: list[str]) -> None:
    assert write(event(**fields)) == errors


# -- ResourceQuota -------------------------------------------------------------------


def quota(**spec: Any) -> dict:
    meta = {"name": "q", "namespace": "default"}
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        ({"hard": {"pods": "10", "requests.cpu": "2", "count/deployments.apps": "3"}}, []),
        (
            {"hard": {"widgets": "1"}},
            [
                (
                    'spec.hard[widgets]: Invalid value: "widgets": must be a standard resource type or '
                    "fully qualified"
                ),
                'spec.hard[widgets]: Invalid value: "widgets": must be a standard resource for quota',
            ],
        ),
        (
            {"hard": {"pods": "1.5"}},
            ['spec.hard[pods]: Invalid value: "1500m": must be an integer'],
        ),
        (
            {"hard": {"services": "1"}, "scopes": ["BestEffort"]},
            [
                (
                    'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort"}: '
                    "unsupported scope applied to resource"
                )
            ],
        ),
        (
            {"hard": {"pods": "1"}, "scopes": ["BestEffort", "NotBestEffort"]},
            [
                (
                    'spec.scopes: Invalid value: []core.ResourceQuotaScope{"BestEffort", '
                    '"NotBestEffort"}: conflicting scopes'
                )
            ],
        ),
    ],
)
def test_resource_quota_validation(spec: dict, errors: list[str]) -> None:
    assert write(quota(**spec)) == errors


def test_resource_quota_scopes_are_immutable() -> None:
    old = quota(hard={"pods": "1"}, scopes=["BestEffort"])
    write(old)
    new = copy.deepcopy(old)
    new["spec"]["scopes"] = []
    assert write(new, old) == [
        "spec.scopes: Invalid value: []core.ResourceQuotaScope{}: field is immutable"
    ]


# -- LimitRange ----------------------------------------------------------------------


def limit_range(*limits: dict) -> dict:
    meta = {"name": "lr", "namespace": "default"}
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": meta,
        "spec": {"limits": list(limits)},
    }


def test_limit_range_container_defaults() -> None:
    lr = limit_range({"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}})
    assert write(lr) == []
    item = lr["spec"]["limits"][0]
    assert item["default"] == {"cpu": "2"}
    assert item["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}


@pytest.mark.parametrize(
    ("limits", "errors"),
    [
        (
            [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}],
            [
                'spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1',
                (
                    'spec.limits[0].defaultRequest[cpu]: Invalid value: "1": min value 2 is greater than '
                    "default request value 1"
                ),
                (
                    'spec.limits[0].default[cpu]: Invalid value: "2": min value 2 is greater than default '
                    "value 1"
                ),
            ],
        ),
        (
            [{"type": "Pod", "default": {"cpu": "1"}}],
            ["spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'"],
        ),
        (
            [{"type": "PersistentVolumeClaim"}],
            [
                (
                    "spec.limits[0].limits: Required value: either minimum or maximum storage value is "
                    "required, but neither was provided"
                )
            ],
        ),
        (
            [{"type": "Gizmo"}],
            [
                'spec.limits[0].type: Invalid value: "Gizmo": must be a standard limit type or fully qualified'
            ],
        ),
        (
            [{"type": "Container", "max": {"storage": "1Gi"}}],
            [
                (
                    'spec.limits[0].max[storage]: Invalid value: "storage": must be a standard resource '
                    "for containers"
                ),
                (
                    'spec.limits[0].default[storage]: Invalid value: "storage": must be a standard '
                    "resource for containers"
                ),
                (
                    'spec.limits[0].defaultRequest[storage]: Invalid value: "storage": must be a standard '
                    "resource for containers"
                ),
            ],
        ),
        (
            [
                {
                    "type": "Container",
                    "min": {"cpu": "100m"},
                    "max": {"cpu": "200m"},
                    "maxLimitRequestRatio": {"cpu": "3"},
                }
            ],
            [
                (
                    'spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "3": ratio 3 is greater '
                    "than max/min = 2.000000"
                )
            ],
        ),
    ],
)
def test_limit_range_validation(limits: list[dict], errors: list[str]) -> None:
    assert write(limit_range(*limits)) == errors

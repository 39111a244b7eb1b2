"""Lease, EndpointSlice and events.k8s.io/v1 Event: defaults, validation and
the conversion between the two shapes of an Event."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubi.api import hooks
from kubi.api.kinds.misc import core_event_to_events_v1, events_v1_to_core_event

hooks.load()


def write(obj: dict, old: dict | None = None, sub: str = "") -> list[str]:
    hooks.apply_defaults(obj)
    hooks.prepare(obj, old)
    return [str(e) for e in hooks.validate(obj, old, sub)]


# -- Lease -----------------------------------------------------------------------------


def lease(**spec: Any) -> dict:
    meta = {"name": "kube-scheduler", "namespace": "kube-system"}
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "errors"),
    [
        ({"holderIdentity": "a", "leaseDurationSeconds": 15, "leaseTransitions": 0}, []),
        (
            {"leaseDurationSeconds": 0},
            ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"],
        ),
        (
            {"leaseTransitions": -1},
            ["spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {"strategy": "Newest"},
            [
                (
                    'spec.strategy.strategy: Unsupported value: "Newest": supported values: '
                    '"OldestEmulationVersion"'
                )
            ],
        ),
        (
            {"preferredHolder": "b"},
            ["spec.preferredHolder: Forbidden: may only be specified if `strategy` is defined"],
        ),
    ],
)
def test_lease_validation(spec: dict, errors: list[str]) -> None:
    assert write(lease(**spec)) == errors


def test_lease_update_checks_spec_again() -> None:
    old = lease(holderIdentity="a")
    write(old)
    new = copy.deepcopy(old)
    new["spec"]["leaseDurationSeconds"] = -5
    assert write(new, old) == [
        "spec.leaseDurationSeconds: Invalid value: -5: must be greater than 0"
    ]


# -- EndpointSlice ---------------------------------------------------------------------


def slice_(**fields: Any) -> dict:
    meta = {"name": "web-abcde", "namespace": "default"}
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta,
        **fields,
    }


def test_endpoint_slice_defaults_and_generation() -> None:
    es = slice_(addressType="IPv4", endpoints=[{"addresses": ["10.42.0.5"]}], ports=[{"port": 80}])
    assert write(es) == []
    assert es["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    assert es["metadata"]["generation"] == 1
    new = copy.deepcopy(es)
    new["endpoints"][0]["addresses"] = ["10.42.0.6"]
    assert write(new, es) == []
    assert new["metadata"]["generation"] == 2


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({}, ["addressType: Required value"]),
        (
            {"addressType": "IP"},
            ['addressType: Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"'],
        ),
        (
            {"addressType": "IPv4", "endpoints": [{"addresses": []}]},
            ["endpoints[0].addresses: Required value: must contain at least 1 address"],
        ),
        (
            {"addressType": "IPv4", "endpoints": [{"addresses": ["fd00::1"]}]},
            ['endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address'],
        ),
        (
            {"addressType": "FQDN", "endpoints": [{"addresses": ["localhost"]}]},
            [
                (
                    'endpoints[0].addresses[0]: Invalid value: "localhost": should be a domain with at '
                    "least two segments separated by dots"
                )
            ],
        ),
        (
            {
                "addressType": "IPv4",
                "ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}],
            },
            ['ports[1].name: Duplicate value: "a"'],
        ),
    ],
)
def test_endpoint_slice_validation(fields: dict, errors: list[str]) -> None:
    assert write(slice_(**fields)) == errors


def test_endpoint_slice_address_type_is_immutable() -> None:
    old = slice_(addressType="IPv4")
    write(old)
    new = copy.deepcopy(old)
    new["addressType"] = "IPv6"
    assert write(new, old) == ['addressType: Invalid value: "IPv6": field is immutable']


# -- Event conversion and events.k8s.io/v1 validation ------------------------------------

CORE_EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "web.1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
    "reason": "Pulled",
    "message": "pulled the image",
    "source": {"component": "kubelet", "host": "n1"},
    "firstTimestamp": "2024-01-01T00:00:00Z",
    "lastTimestamp": "2024-01-01T00:01:00Z",
    "count": 2,
    "type": "Normal",
    "eventTime": None,
    "reportingComponent": "kubelet",
    "reportingInstance": "n1",
}


def test_core_to_events_v1_maps_renamed_fields() -> None:
    out = core_event_to_events_v1(CORE_EVENT)
    assert out["apiVersion"] == "events.k8s.io/v1"
    assert out["regarding"] == CORE_EVENT["involvedObject"]
    assert out["note"] == "pulled the image"
    assert out["deprecatedSource"] == {"component": "kubelet", "host": "n1"}
    assert out["deprecatedFirstTimestamp"] == "2024-01-01T00:00:00Z"
    assert out["deprecatedLastTimestamp"] == "2024-01-01T00:01:00Z"
    assert out["deprecatedCount"] == 2
    assert out["reportingController"] == "kubelet"
    assert out["eventTime"] is None
    assert "message" not in out and "involvedObject" not in out


def test_event_conversion_round_trips() -> None:
    back = events_v1_to_core_event(core_event_to_events_v1(CORE_EVENT))
    assert back == CORE_EVENT


def test_events_v1_create_is_strict() -> None:
    ev = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.2", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Started",
        "type": "Odd",
        "deprecatedCount": 3,
    }
    assert write(ev) == [
        "eventTime: Required value",
        'type: Invalid value: "": has invalid value: Odd',
        'count: Invalid value: "": needs to be unset',
    ]


def test_events_v1_update_keeps_fields_frozen() -> None:
    ev = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.3", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "kubi.io/kubelet",
        "reportingInstance": "n1",
        "action": "Pull",
        "reason": "Pulled",
        "type": "Normal",
    }
    assert write(ev) == []
    new = copy.deepcopy(ev)
    new["note"] = "changed"
    assert write(new, ev) == ['message: Invalid value: "changed": field is immutable']

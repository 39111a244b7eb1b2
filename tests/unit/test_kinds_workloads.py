"""Workloads: ReplicationController, ReplicaSet, Deployment, StatefulSet, DaemonSet,
ControllerRevision defaults and validation."""

from __future__ import annotations

import copy

import pytest

from kubi.api import hooks

hooks.load()

MISMATCH = 'spec.template.metadata.labels: Invalid value: map[string]string{"app":"nginx"}: `selector` does not match template `labels`'


def workload(kind: str, api_version: str = "apps/v1", **spec: object) -> dict:
    body: dict = {
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]},
        },
    }
    body.update(spec)
    obj = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "web", "namespace": "default"},
        "spec": body,
    }
    hooks.apply_defaults(obj)
    return obj


def messages(obj: dict, old: dict | None = None, sub: str = "") -> list[str]:
    return [str(e) for e in hooks.validate(obj, old, sub)]


def test_deployment_defaults() -> None:
    spec = workload("Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    template = spec["template"]
    assert template["metadata"]["creationTimestamp"] is None
    assert template["spec"]["restartPolicy"] == "Always"
    assert template["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    # Pod-only defaults stay out of templates.
    assert "enableServiceLinks" not in template["spec"]
    assert "requests" not in template["spec"]["containers"][0]["resources"]


def test_recreate_strategy_gets_no_rolling_update() -> None:
    spec = workload("Deployment", strategy={"type": "Recreate"})["spec"]
    assert spec["strategy"] == {"type": "Recreate"}


def test_valid_workloads() -> None:
    for kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        assert messages(workload(kind)) == [], kind


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_selector_must_match_template(kind: str) -> None:
    obj = workload(kind, selector={"matchLabels": {"app": "other"}})
    assert messages(obj) == [MISMATCH]


def test_missing_selector_reports_both_errors() -> None:
    obj = workload("Deployment")
    del obj["spec"]["selector"]
    assert messages(obj) == ["spec.selector: Required value", MISMATCH]


def test_empty_selector() -> None:
    obj = workload("Deployment", selector={})
    assert messages(obj) == [
        (
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
        )
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"replicas": -1},
            ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            {
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0},
                }
            },
            [
                (
                    'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: '
                    "may not be 0 when `maxSurge` is 0"
                )
            ],
        ),
        (
            {
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25", "maxUnavailable": "150%"},
                }
            },
            [
                (
                    'spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"25"}: '
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
                    "regex used for validation is '[0-9]+%')"
                ),
                (
                    'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: '
                    "must not be greater than 100%"
                ),
            ],
        ),
        (
            {"strategy": {"type": "Recreate", "rollingUpdate": {}}},
            [
                "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
            ],
        ),
        (
            {"progressDeadlineSeconds": 5, "minReadySeconds": 10},
            [
                "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds"
            ],
        ),
    ],
)
def test_deployment_errors(spec: dict, expected: list[str]) -> None:
    assert messages(workload("Deployment", **spec)) == expected


def test_template_restart_policy_and_pod_spec() -> None:
    obj = workload("Deployment")
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    del obj["spec"]["template"]["spec"]["containers"][0]["image"]
    assert messages(obj) == [
        "spec.template.spec.containers[0].image: Required value",
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_apps_selector_is_immutable(kind: str) -> None:
    old = workload(kind)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "nginx", "tier": "web"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    assert messages(new, old) == [
        (
            'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx", "tier":"web"}, '
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        )
    ]


def test_replication_controller_defaults_from_template() -> None:
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "rc", "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
        },
    }
    hooks.apply_defaults(rc)
    assert rc["spec"]["selector"] == {"app": "nginx"}
    assert rc["metadata"]["labels"] == {"app": "nginx"}
    assert rc["spec"]["replicas"] == 1
    assert messages(rc) == []
    rc["spec"]["selector"] = {"app": "other"}
    assert messages(rc) == [MISMATCH]


def test_statefulset_defaults() -> None:
    claim = {
        "metadata": {"name": "www"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    spec = workload("StatefulSet", serviceName="nginx", volumeClaimTemplates=[claim])["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert spec["revisionHistoryLimit"] == 10
    vct = spec["volumeClaimTemplates"][0]
    assert vct["apiVersion"] == "v1" and vct["kind"] == "PersistentVolumeClaim"
    assert vct["spec"]["volumeMode"] == "Filesystem"
    assert vct["status"] == {"phase": "Pending"}


def test_statefulset_update_rules() -> None:
    old = workload("StatefulSet", serviceName="nginx")
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert messages(new, old) == []
    new["spec"]["serviceName"] = "other"
    assert messages(new, old) == [
        (
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
            "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        )
    ]


def test_statefulset_names_are_dns_labels_and_policies_checked() -> None:
    obj = workload("StatefulSet", podManagementPolicy="Sometimes")
    obj["metadata"]["name"] = "web.v1"
    assert messages(obj) == [
        'metadata.name: Invalid value: "web.v1": must not contain dots',
        "spec.podManagementPolicy: Invalid value: \"Sometimes\": must be 'OrderedReady' or 'Parallel'",
    ]


def test_daemonset_defaults_and_strategy() -> None:
    ds = workload("DaemonSet")
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    ds["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 0}
    assert messages(ds) == [
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
    ]


def test_status_subresource_checks_counts() -> None:
    old = workload("ReplicaSet")
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "readyReplicas": 2}
    assert messages(new, old, "status") == [
        "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"
    ]


def test_controller_revision() -> None:
    rev = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "r", "namespace": "d"},
        "revision": -1,
    }
    assert messages(rev) == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0",
    ]

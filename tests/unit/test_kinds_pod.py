"""Pods and PodTemplates: defaults, creation-time preparation, validation and updates."""

from __future__ import annotations

import copy

import pytest

from kubi.api import hooks
from kubi.api.kinds.pod import UPDATABLE_FIELDS, compute_qos_class
from kubi.api.kinds.podspec_defaults import image_tag

hooks.load()


def make_pod(**spec: object) -> dict:
    base = {"containers": [{"name": "app", "image": "nginx"}]}
    base.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": base,
    }


def created(pod: dict) -> dict:
    hooks.apply_defaults(pod)
    hooks.prepare(pod, None)
    return pod


def messages(obj: dict, old: dict | None = None, sub: str = "") -> list[str]:
    return [str(e) for e in hooks.validate(obj, old, sub)]


def test_pod_spec_defaults() -> None:
    pod = created(
        make_pod(volumes=[{"name": "cache"}, {"name": "cfg", "configMap": {"name": "c"}}])
    )
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    # The ServiceAccount and Priority admission plugins' fields.
    assert not {"serviceAccountName", "priority", "preemptionPolicy"} & set(spec)
    assert spec["volumes"] == [
        {"name": "cache", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
    ]
    ctr = spec["containers"][0]
    assert ctr["imagePullPolicy"] == "Always"
    assert ctr["terminationMessagePath"] == "/dev/termination-log"
    assert ctr["terminationMessagePolicy"] == "File"
    assert ctr["resources"] == {}
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_container_details_defaults() -> None:
    ctr = {
        "name": "app",
        "image": "nginx:1.25",
        "ports": [{"containerPort": 80}],
        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        "readinessProbe": {"httpGet": {"port": 80}},
        "resources": {"limits": {"cpu": "0.5", "memory": "1.5Gi"}},
    }
    pod = created(make_pod(containers=[ctr]))
    ctr = pod["spec"]["containers"][0]
    assert ctr["imagePullPolicy"] == "IfNotPresent"
    assert ctr["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert ctr["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert ctr["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    # Requests come from limits on Pods, and quantities are stored canonically.
    assert ctr["resources"] == {
        "limits": {"cpu": "500m", "memory": "1536Mi"},
        "requests": {"cpu": "500m", "memory": "1536Mi"},
    }
    assert pod["status"]["qosClass"] == "Guaranteed"


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("nginx", "latest"),
        ("nginx:latest", "latest"),
        ("nginx:1.25", "1.25"),
        ("localhost:5000/app", "latest"),
        ("registry.k8s.io/pause:3.9", "3.9"),
        ("busybox@sha256:" + "a" * 64, ""),
        ("Nginx", ""),
    ],
)
def test_image_tag(image: str, tag: str) -> None:
    assert image_tag(image) == tag


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ([{}], "BestEffort"),
        ([{"requests": {"cpu": "100m"}}], "Burstable"),
        (
            [{"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}],
            "Guaranteed",
        ),
        (
            [
                {
                    "limits": {"cpu": "1", "memory": "1Gi"},
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                }
            ],
            "Burstable",
        ),
        ([{"limits": {"cpu": "1", "memory": "1Gi"}}, {}], "Burstable"),
    ],
)
def test_qos_class(resources: list[dict], qos: str) -> None:
    containers = [{"name": f"c{i}", "image": "x", "resources": r} for i, r in enumerate(resources)]
    assert compute_qos_class({"spec": {"containers": containers}}) == qos


def test_scheduling_gated_condition() -> None:
    pod = created(make_pod(schedulingGates=[{"name": "example.com/wait"}]))
    assert pod["status"]["conditions"][0]["reason"] == "SchedulingGated"


def test_valid_pod_has_no_errors() -> None:
    assert messages(created(make_pod())) == []


SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"containers": []}, ["spec.containers: Required value"]),
        ({"containers": [{"name": "app"}]}, ["spec.containers[0].image: Required value"]),
        (
            {"containers": [{"name": "app", "image": "x"}, {"name": "app", "image": "y"}]},
            ['spec.containers[1].name: Duplicate value: "app"'],
        ),
        (
            {
                "containers": [
                    {
                        "name": "app",
                        "image": "x",
                        "volumeMounts": [{"name": "foo", "mountPath": "/d"}],
                    }
                ]
            },
            ['spec.containers[0].volumeMounts[0].name: Not found: "foo"'],
        ),
        (
            {"containers": [{"name": "app", "image": "x", "ports": [{"containerPort": 70000}]}]},
            [
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
            ],
        ),
        (
            {"volumes": [{"name": "v", "hostPath": {"path": "/x", "type": "Folder"}}]},
            [
                (
                    'spec.volumes[0].hostPath.type: Unsupported value: "Folder": supported values: "", '
                    '"BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"'
                )
            ],
        ),
        (
            {"volumes": [{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}]},
            ["spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type"],
        ),
        (
            {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]},
            ['spec.volumes[1].name: Duplicate value: "v"'],
        ),
        (
            {"volumes": [{"name": "v", "persistentVolumeClaim": {}}]},
            ["spec.volumes[0].persistentVolumeClaim.claimName: Required value"],
        ),
        (
            {"volumes": [{"name": "v", "configMap": {"name": "c", "defaultMode": 1000}}]},
            [
                "spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive"
            ],
        ),
        (
            {"restartPolicy": "Sometimes"},
            [
                'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
            ],
        ),
        (
            {"dnsPolicy": "Auto"},
            [
                'spec.dnsPolicy: Unsupported value: "Auto": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"'
            ],
        ),
        (
            {"activeDeadlineSeconds": 0},
            [
                "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"
            ],
        ),
        (
            {"tolerations": [{"operator": "Equal", "value": "x"}]},
            [
                'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which means "match all values and all keys"'
            ],
        ),
        (
            {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]},
            [
                "spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'"
            ],
        ),
        (
            {"tolerations": [{"key": "k", "tolerationSeconds": 5, "effect": "NoSchedule"}]},
            [
                "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"
            ],
        ),
        (
            {"hostname": "Web"},
            [
                (
                    'spec.hostname: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case '
                    "alphanumeric characters or '-', and must start and end with an alphanumeric character "
                    "(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
                )
            ],
        ),
    ],
)
def test_pod_spec_errors(spec: dict, expected: list[str]) -> None:
    assert messages(created(make_pod(**spec))) == expected


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        (
            {"resources": {"limits": {"cpu": "100m"}, "requests": {"cpu": "200m"}}},
            [
                'spec.containers[0].resources.requests: Invalid value: "200m": must be less than or equal to cpu limit of 100m'
            ],
        ),
        (
            {"resources": {"requests": {"example.com/gpu": "1"}}},
            [
                "spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"
            ],
        ),
        (
            {"resources": {"requests": {"cpu": "lots"}}},
            [
                (
                    'spec.containers[0].resources.requests[cpu]: Invalid value: "lots": quantities must match '
                    "the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
                )
            ],
        ),
        (
            {"resources": {"requests": {"pods": "1"}}},
            [
                'spec.containers[0].resources.requests[pods]: Invalid value: "pods": must be a standard resource for containers'
            ],
        ),
        (
            {"env": [{"name": "A", "valueFrom": {}}]},
            [
                'spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`'
            ],
        ),
        (
            {
                "env": [
                    {
                        "name": "A",
                        "value": "x",
                        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                    }
                ]
            },
            [
                'spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty'
            ],
        ),
        (
            {"env": [{"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}]},
            [
                (
                    'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: "status.phase": '
                    'supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", '
                    '"spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"'
                )
            ],
        ),
        (
            {"envFrom": [{"prefix": "A=", "configMapRef": {"name": "c"}}]},
            [
                (
                    'spec.containers[0].envFrom[0].prefix: Invalid value: "A=": a valid environment variable '
                    "name must consist only of printable ASCII characters other than '='"
                )
            ],
        ),
        (
            {"livenessProbe": {}},
            ["spec.containers[0].livenessProbe: Required value: must specify a handler type"],
        ),
        (
            {"livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}},
            ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"],
        ),
        (
            {"imagePullPolicy": "Sometimes"},
            [
                'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"'
            ],
        ),
    ],
)
def test_container_errors(container: dict, expected: list[str]) -> None:
    ctr = {"name": "app", "image": "nginx", **container}
    assert messages(created(make_pod(containers=[ctr]))) == expected


def test_bad_name_and_missing_namespace() -> None:
    pod = created(make_pod())
    pod["metadata"] = {"name": "Web"}
    assert messages(pod) == [
        f'metadata.name: Invalid value: "Web": {SUBDOMAIN}',
        "metadata.namespace: Required value",
    ]


def stored(**spec: object) -> dict:
    pod = created(make_pod(**spec))
    pod["metadata"].update(uid="u1", resourceVersion="1")
    return pod


def test_update_may_change_image_and_add_tolerations() -> None:
    old = stored(tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    new["spec"]["tolerations"].append({"key": "b", "operator": "Exists"})
    assert messages(new, old) == []


def test_update_of_other_fields_is_forbidden() -> None:
    old = stored()
    new = copy.deepcopy(old)
    new["spec"]["restartPolicy"] = "Never"
    got = messages(new, old)
    assert len(got) == 1
    first = got[0].split("\n")[0]
    assert first == "spec: Forbidden: pod updates may not change fields other than " + ",".join(
        UPDATABLE_FIELDS
    )
    assert "RestartPolicy" in got[0]


def test_update_rules_for_containers_and_deadline() -> None:
    old = stored(activeDeadlineSeconds=10)
    new = copy.deepcopy(old)
    new["spec"]["activeDeadlineSeconds"] = 20
    assert messages(new, old) == [
        "spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value"
    ]
    new = copy.deepcopy(old)
    new["spec"]["containers"].append({"name": "b", "image": "x"})
    assert "spec.containers: Forbidden: pod updates may not add or remove containers" in messages(
        new, old
    )


def test_removing_a_toleration_is_forbidden() -> None:
    old = stored(tolerations=[{"key": "a", "operator": "Exists"}])
    new = copy.deepcopy(old)
    new["spec"]["tolerations"] = []
    assert (
        "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        in messages(new, old)
    )


def test_status_update_keeps_qos_class() -> None:
    old = stored()
    new = copy.deepcopy(old)
    new["status"]["qosClass"] = "Guaranteed"
    assert messages(new, old, "status") == [
        'status.qosClass: Invalid value: "Guaranteed": field is immutable'
    ]


def test_pod_template_kind() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "t", "namespace": "default"},
        "template": {"spec": {"containers": [{"name": "c"}]}},
    }
    hooks.apply_defaults(obj)
    assert obj["template"]["metadata"] == {"creationTimestamp": None}
    assert "enableServiceLinks" not in obj["template"]["spec"]
    assert messages(obj) == ["template.spec.containers[0].image: Required value"]

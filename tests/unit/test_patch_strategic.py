"""Strategic merge patch: applying, and creating as kubectl apply does.

The two apply patches at the end are the ones kubectl sent on the wire
(shared/reference/kubectl-wire.md, appendix A31) for the same manifests.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubi.api import schema
from kubi.api.patch import GENERIC_UNPROCESSABLE
from kubi.api.patch.strategic import (
    StrategicPatchError,
    apply_strategic_merge_patch,
    create_three_way_strategic_patch,
    create_two_way_strategic_patch,
)

DEPLOYMENT = schema.for_kind("apps", "v1", "Deployment")
POD = schema.for_kind("", "v1", "Pod")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1", "args": ["--x", "--y"],
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                {"name": "sidecar", "image": "envoy"},
            ],
            "tolerations": [{"key": "k1"}, {"key": "k2"}],
            **spec,
        },
    }


def apply(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    return apply_strategic_merge_patch(doc, patch, POD)


def containers(doc: dict[str, Any]) -> list[Any]:
    return doc["spec"]["containers"]


# ---- applying ---------------------------------------------------------------------------


def test_merge_list_elements_by_key() -> None:
    out = apply(pod(), {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}})
    assert [c["name"] for c in containers(out)] == ["app", "sidecar"]
    assert containers(out)[0]["image"] == "nginx:2"
    assert containers(out)[0]["env"] == pod()["spec"]["containers"][0]["env"]


def test_new_element_goes_first_without_an_order() -> None:
    out = apply(pod(), {"spec": {"containers": [{"name": "debug", "image": "busybox"}]}})
    assert [c["name"] for c in containers(out)] == ["debug", "app", "sidecar"]


def test_lists_without_merge_strategy_are_replaced() -> None:
    out = apply(pod(), {"spec": {"tolerations": [{"key": "k3", "effect": None}],
                                 "containers": [{"name": "app", "args": ["--z"]}]}})
    assert out["spec"]["tolerations"] == [{"key": "k3"}]
    assert containers(out)[0]["args"] == ["--z"]


def test_null_deletes_a_key() -> None:
    out = apply(pod(), {"metadata": {"labels": {"app": None}},
                        "spec": {"containers": [{"name": "app", "args": None}]}})
    assert out["metadata"]["labels"] == {}
    assert "args" not in containers(out)[0]


def test_rollout_restart_annotation() -> None:
    when = "2024-05-01T10:00:00Z"
    patch = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": when}}}}}
    base = {"spec": {"template": {"metadata": {"labels": {"app": "web"}}}}}
    out = apply_strategic_merge_patch(base, patch, DEPLOYMENT)
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": when}}


def test_delete_directive_in_a_list() -> None:
    out = apply(pod(), {"spec": {"containers": [
        {"name": "app", "env": [{"name": "A", "$patch": "delete"}],
         "ports": [{"containerPort": 80, "$patch": "delete"}]},
        {"name": "sidecar", "$patch": "delete"},
    ]}})
    assert containers(out) == [{"name": "app", "image": "nginx:1", "args": ["--x", "--y"],
                                "env": [{"name": "B", "value": "2"}], "ports": []}]


def test_replace_directive_in_a_list_and_a_map() -> None:
    out = apply(pod(), {
        "metadata": {"labels": {"$patch": "replace", "new": "1"}},
        "spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]},
    })
    assert out["metadata"]["labels"] == {"new": "1"}
    assert containers(out) == [{"name": "only", "image": "x"}]


def test_delete_directive_on_a_map() -> None:
    out = apply(pod(securityContext={"runAsUser": 1}),
                {"spec": {"securityContext": {"$patch": "delete"}}})
    assert out["spec"]["securityContext"] == {}


def test_merge_directive_is_refused_as_upstream_does() -> None:
    with pytest.raises(StrategicPatchError) as failure:
        apply(pod(), {"spec": {"containers": [{"$patch": "merge"}]}})
    assert "merging lists cannot yet be specified" in str(failure.value)
    assert failure.value.code == 500
    with pytest.raises(StrategicPatchError) as failure:
        apply(pod(), {"spec": {"$patch": "merge"}})
    assert "unknown patch type: merge" in str(failure.value)


def test_primitive_merge_list_is_a_set() -> None:
    out = apply(pod(), {"metadata": {"finalizers": ["c", "a"]}})
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]
    out = apply(pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "zz"]}})
    assert out["metadata"]["finalizers"] == ["b"]


def test_set_element_order_keeps_server_only_items_in_place() -> None:
    # Live [app, injected, sidecar]; the patch wants sidecar before app. The
    # server-only `injected` keeps its place relative to what the live list had
    # after it (sidecar), so it lands first.
    live = pod()
    containers(live).insert(1, {"name": "injected", "image": "mesh"})
    patch = {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                      "containers": [{"name": "app", "image": "nginx:3"}]}}
    out = apply(live, patch)
    assert [c["name"] for c in containers(out)] == ["injected", "sidecar", "app"]
    assert containers(out)[2]["image"] == "nginx:3"
    patch["spec"]["$setElementOrder/containers"].reverse()
    out = apply(live, patch)
    assert [c["name"] for c in containers(out)] == ["app", "injected", "sidecar"]


def test_order_after_deleting_and_adding_matches_upstream() -> None:
    # Upstream merges into the live list's storage in place and reads it back
    # as the server's order: live [a, b, c]; delete a and add d gives storage
    # [b, c, d], so the server-only c stays ahead of the new d.
    live = {"spec": {"containers": [{"name": "a"}, {"name": "b", "image": "1"},
                                    {"name": "c", "image": "2"}]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "d"}],
                      "containers": [{"name": "d"}, {"name": "a", "$patch": "delete"}]}}
    out = apply(live, patch)
    assert [c["name"] for c in containers(out)] == ["b", "c", "d"]


def test_retain_keys_clears_other_keys() -> None:
    live = {"spec": {"strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(StrategicPatchError) as failure:
        apply_strategic_merge_patch(
            live, {"spec": {"strategy": {"$retainKeys": ["type"], "paused": True}}}, DEPLOYMENT)
    assert failure.value.code == 400
    assert str(failure.value) == "invalid patch format of retainKeys"


def test_bad_directive_formats_are_400() -> None:
    for patch in ({"metadata": {"$setElementOrder": ["a"]}},
                  {"metadata": {"$deleteFromPrimitiveList": ["a"]}}):
        with pytest.raises(StrategicPatchError) as failure:
            apply(pod(), patch)
        assert failure.value.code == 400


def test_missing_merge_key_is_an_error() -> None:
    with pytest.raises(StrategicPatchError) as failure:
        apply(pod(), {"spec": {"containers": [{"image": "x"}]}})
    assert str(failure.value) == "map: map[image:x] does not contain declared merge key: name"


def test_lists_of_lists_are_422() -> None:
    with pytest.raises(StrategicPatchError) as failure:
        apply({"metadata": {"finalizers": [["a"]]}}, {"metadata": {"finalizers": [["b"]]}})
    assert failure.value.code == 422 and failure.value.message == GENERIC_UNPROCESSABLE


def test_without_a_schema_it_is_a_merge_patch() -> None:
    out = apply_strategic_merge_patch({"spec": {"replicas": 1, "list": [1, 2]}},
                                      {"spec": {"replicas": 2, "list": [3]}}, None)
    assert out == {"spec": {"replicas": 2, "list": [3]}}


def test_inputs_are_not_mutated() -> None:
    live, patch = pod(), {"spec": {"containers": [{"name": "new", "env": [{"name": "X"}]}],
                                   "$setElementOrder/containers": [{"name": "new"}]}}
    live_before, patch_before = copy.deepcopy(live), copy.deepcopy(patch)
    apply(live, patch)
    assert live == live_before and patch == patch_before


# ---- creating --------------------------------------------------------------------------


def test_two_way_patch_round_trips() -> None:
    original = pod()
    modified = copy.deepcopy(original)
    containers(modified)[0]["image"] = "nginx:2"
    containers(modified)[0]["env"] = [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    del containers(modified)[1]
    modified["metadata"]["finalizers"] = ["b"]
    modified["spec"]["tolerations"] = [{"key": "k2"}]
    patch = create_two_way_strategic_patch(original, modified, POD)
    assert patch["metadata"] == {"$deleteFromPrimitiveList/finalizers": ["a"],
                                 "$setElementOrder/finalizers": ["b"]}
    assert patch["spec"]["tolerations"] == [{"key": "k2"}]
    assert patch["spec"]["containers"][-1] == {"name": "sidecar", "$patch": "delete"}
    assert apply(original, patch) == modified
    assert create_two_way_strategic_patch(original, original, POD) == {}


def a31_manifests() -> tuple[dict[str, Any], dict[str, Any]]:
    smp1 = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "smp", "namespace": "default",
                     "labels": {"app": "smp", "extra": "1"},
                     "finalizers": ["example.com/a", "example.com/b"]},
        "spec": {
            "selector": {"matchLabels": {"app": "smp"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "smp"}}, "spec": {
                "containers": [
                    {"name": "a", "image": "nginx:1", "args": ["--one", "--two"],
                     "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                     "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                    {"name": "b", "image": "busybox"},
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
            }},
        },
    }
    smp2 = copy.deepcopy(smp1)
    del smp2["metadata"]["labels"]["extra"]
    smp2["metadata"]["finalizers"] = ["example.com/a"]
    smp2["spec"]["strategy"] = {"type": "Recreate"}
    pod_spec = smp2["spec"]["template"]["spec"]
    pod_spec["volumes"] = [{"name": "data", "configMap": {"name": "cfg"}}]
    pod_spec["containers"] = [{"name": "a", "image": "nginx:2", "args": ["--one"],
                               "env": [{"name": "Y", "value": "2"}],
                               "ports": [{"containerPort": 80}]}]
    return smp1, smp2


def applied(manifest: dict[str, Any], annotation: str) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    out["metadata"]["annotations"] = {LAST_APPLIED: annotation}
    return out


def live_object(manifest: dict[str, Any]) -> dict[str, Any]:
    """The object as the server holds it: annotated, defaulted, with status."""
    live = applied(manifest, "v1")
    live["metadata"].update(uid="u1", resourceVersion="7", generation=1)
    live["spec"].update(replicas=1, revisionHistoryLimit=10, progressDeadlineSeconds=600)
    pod_spec = live["spec"]["template"]["spec"]
    pod_spec.update(restartPolicy="Always", dnsPolicy="ClusterFirst")
    for container in pod_spec["containers"]:
        container.update(imagePullPolicy="IfNotPresent", resources={})
        for port in container.get("ports", []):
            port["protocol"] = "TCP"
    live["status"] = {"replicas": 1}
    return live


A31_FORWARD = {
    "metadata": {
        "$deleteFromPrimitiveList/finalizers": ["example.com/b"],
        "$setElementOrder/finalizers": ["example.com/a"],
        "annotations": {LAST_APPLIED: "v2"},
        "labels": {"extra": None},
    },
    "spec": {
        "strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"},
        "template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "$setElementOrder/volumes": [{"name": "data"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "Y"}],
                 "$setElementOrder/ports": [{"containerPort": 80}],
                 "args": ["--one"], "env": [{"$patch": "delete", "name": "X"}],
                 "image": "nginx:2", "name": "a",
                 "ports": [{"$patch": "delete", "containerPort": 443}]},
                {"$patch": "delete", "name": "b"},
            ],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"},
                         "emptyDir": None, "name": "data"}],
        }},
    },
}

A31_BACK = {
    "metadata": {
        "$setElementOrder/finalizers": ["example.com/a", "example.com/b"],
        "annotations": {LAST_APPLIED: "v3"},
        "finalizers": ["example.com/b"],
        "labels": {"extra": "1"},
    },
    "spec": {
        "strategy": {"$retainKeys": ["rollingUpdate", "type"],
                     "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                     "type": "RollingUpdate"},
        "template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "$setElementOrder/volumes": [{"name": "data"}],
            "containers": [
                {"$setElementOrder/env": [{"name": "X"}, {"name": "Y"}],
                 "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 443}],
                 "args": ["--one", "--two"], "env": [{"name": "X", "value": "1"}],
                 "image": "nginx:1", "name": "a", "ports": [{"containerPort": 443}]},
                {"image": "busybox", "name": "b"},
            ],
            "volumes": [{"$retainKeys": ["emptyDir", "name"], "configMap": None,
                         "emptyDir": {}, "name": "data"}],
        }},
    },
}


def test_kubectl_apply_patches_are_reproduced_and_applied() -> None:
    smp1, smp2 = a31_manifests()
    live = live_object(smp1)
    forward = create_three_way_strategic_patch(
        applied(smp1, "v1"), applied(smp2, "v2"), live, DEPLOYMENT)
    assert forward == A31_FORWARD

    after = apply_strategic_merge_patch(live, forward, DEPLOYMENT)
    assert after["metadata"]["labels"] == {"app": "smp"}
    assert after["metadata"]["finalizers"] == ["example.com/a"]
    assert after["spec"]["strategy"] == {"type": "Recreate"}
    assert after["spec"]["replicas"] == 1  # server-side defaults survive
    pod_spec = after["spec"]["template"]["spec"]
    assert pod_spec["volumes"] == [{"name": "data", "configMap": {"name": "cfg"}}]
    assert pod_spec["containers"] == [{
        "name": "a", "image": "nginx:2", "args": ["--one"], "env": [{"name": "Y", "value": "2"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "imagePullPolicy": "IfNotPresent", "resources": {},
    }]

    back = create_three_way_strategic_patch(
        applied(smp2, "v2"), applied(smp1, "v3"), after, DEPLOYMENT)
    assert back == A31_BACK

    restored = apply_strategic_merge_patch(after, back, DEPLOYMENT)
    pod_spec = restored["spec"]["template"]["spec"]
    assert restored["metadata"]["finalizers"] == ["example.com/a", "example.com/b"]
    assert restored["spec"]["strategy"] == smp1["spec"]["strategy"]
    assert [c["name"] for c in pod_spec["containers"]] == ["a", "b"]
    assert [e["name"] for e in pod_spec["containers"][0]["env"]] == ["X", "Y"]
    assert [p["containerPort"] for p in pod_spec["containers"][0]["ports"]] == [80, 443]
    assert pod_spec["volumes"] == [{"name": "data", "emptyDir": {}}]

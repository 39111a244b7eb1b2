"""managedFields: the fieldsV1 set algebra and ownership tracking on ordinary writes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubi.api.errors import Invalid
from kubi.api.managed import (
    FieldsError,
    FieldSet,
    default_manager,
    empty_object,
    update_managed_fields,
    validate_field_manager,
    validate_managed_fields,
)
from kubi.api.managed.entries import decode, encode

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:05:00Z"
T2 = "2024-05-01T10:10:00Z"


@dataclass(eq=False)
class N:
    """A stand-in for kubi.api.schema.Node."""

    type: str
    properties: dict[str, N] = field(default_factory=dict)
    additional: N | None = None
    items: N | None = None
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    map_type: str | None = None
    patch_merge_key: str | None = None
    patch_strategy: tuple[str, ...] = ()

    def child(self, name: str) -> N | None:
        return self.properties.get(name) or self.additional


S = N("string")
I = N("integer")
PORT = N("object", {"containerPort": I, "protocol": S, "name": S})
CONTAINER = N(
    "object",
    {
        "name": S,
        "image": S,
        "args": N("array", items=S),
        "ports": N(
            "array", items=PORT, list_type="map", list_map_keys=("containerPort", "protocol")
        ),
        "env": N(
            "array",
            items=N("object", {"name": S, "value": S}),
            patch_merge_key="name",
            patch_strategy=("merge",),
        ),
        "resources": N("object", {"limits": N("object", additional=S)}),
    },
)
META = N(
    "object",
    {
        "name": S,
        "namespace": S,
        "uid": S,
        "resourceVersion": S,
        "generation": I,
        "creationTimestamp": S,
        "labels": N("object", additional=S),
        "annotations": N("object", additional=S),
        "finalizers": N("array", items=S, list_type="set"),
        "managedFields": N("array", items=N("object", {})),
    },
)
KIND = N(
    "object",
    {
        "apiVersion": S,
        "kind": S,
        "metadata": META,
        "spec": N(
            "object",
            {
                "replicas": I,
                "selector": N(
                    "object", {"matchLabels": N("object", additional=S)}, map_type="atomic"
                ),
                "containers": N("array", items=CONTAINER, list_type="map", list_map_keys=("name",)),
                "extra": N("any"),
            },
        ),
        "status": N("object", {"ready": I}),
    },
)


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "uid": "u-1"},
        "spec": spec,
    }


# ---- the fieldsV1 encoding -----------------------------------------------------------


def test_decode_and_encode_round_trip_in_upstream_order():
    raw = {
        "f:spec": {
            "f:containers": {
                'k:{"name":"web"}': {".": {}, "f:name": {}, "f:image": {}},
                'k:{"name":"db"}': {".": {}, "f:name": {}},
            }
        },
        "f:metadata": {"f:labels": {"f:b": {}, ".": {}, "f:a": {}}},
    }
    wire = FieldSet.from_json(raw).to_json()
    assert list(wire) == ["f:metadata", "f:spec"]
    assert list(wire["f:metadata"]["f:labels"]) == [".", "f:a", "f:b"]
    assert list(wire["f:spec"]["f:containers"]) == ['k:{"name":"db"}', 'k:{"name":"web"}']
    assert list(wire["f:spec"]["f:containers"]['k:{"name":"web"}']) == [".", "f:image", "f:name"]


def test_keys_and_values_order_as_values_not_text():
    wire = FieldSet.from_json(
        {
            'k:{"port":10}': {},
            'k:{"port":9}': {},
            'v:"b"': {},
            "v:2": {},
            "f:z": {},
            "i:3": {},
        }
    ).to_json()
    assert list(wire) == ["f:z", 'k:{"port":9}', 'k:{"port":10}', "v:2", 'v:"b"', "i:3"]


def test_decode_normalizes_what_upstream_normalizes():
    decoded = FieldSet.from_json(
        {
            "f:a": {".": {}},  # a dot alone is just membership
            'k:{ "protocol": "TCP", "containerPort": 80 }': {},  # keys are re-spelled canonically
            "x:future": {},  # unknown element kinds are dropped
        }
    )
    assert decoded.to_json() == {"f:a": {}, 'k:{"containerPort":80,"protocol":"TCP"}': {}}


@pytest.mark.parametrize("raw", [{"f": {}}, {"fx": {}}, {"f:a": 3}, {'k:{"a"': {}}, []])
def test_malformed_fields_are_rejected(raw):
    with pytest.raises(FieldsError):
        FieldSet.from_json(raw)


def test_set_operations_follow_member_semantics():
    a = FieldSet.from_json({"f:labels": {".": {}, "f:app": {}}, "f:spec": {"f:x": {}}})
    b = FieldSet.from_json({"f:labels": {"f:app": {}, "f:tier": {}}, "f:spec": {}})
    assert a.union(b).to_json() == {
        "f:labels": {".": {}, "f:app": {}, "f:tier": {}},
        "f:spec": {".": {}, "f:x": {}},
    }
    # Removing a child leaves the parent; removing a parent leaves the children.
    assert a.difference(b).to_json() == {"f:labels": {}, "f:spec": {"f:x": {}}}
    assert a.intersection(b).to_json() == {"f:labels": {"f:app": {}}}
    assert a.recursive_difference(FieldSet.from_json({"f:spec": {}})).to_json() == {
        "f:labels": {".": {}, "f:app": {}},
    }
    assert a.leaves().to_json() == {"f:labels": {"f:app": {}}, "f:spec": {"f:x": {}}}
    assert a.difference(a).empty()


def test_paths_print_as_upstream_prints_them():
    fs = FieldSet.from_json(
        {
            "f:spec": {
                "f:replicas": {},
                "f:containers": {'k:{"name":"web"}': {"f:image": {}}},
                "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {}},
            },
            "f:metadata": {"f:finalizers": {'v:"x"': {}}},
        }
    )
    assert fs.strings() == [
        '.metadata.finalizers[="x"]',
        ".spec.replicas",
        '.spec.containers[name="web"].image',
        '.spec.ports[containerPort=80,protocol="TCP"]',
    ]
    assert fs.has(["f:spec", "f:replicas"])
    assert not fs.has(["f:spec"])


# ---- what an object sets -------------------------------------------------------------


def test_from_object_owns_leaves_items_and_map_keys_but_not_struct_fields():
    obj = widget(
        replicas=2,
        selector={"matchLabels": {"app": "w"}},
        containers=[
            {
                "name": "web",
                "image": "nginx",
                "ports": [{"containerPort": 80}],
                "env": [{"name": "A", "value": "1"}],
                "resources": {},
            }
        ],
        extra={"free": {"form": 1}},
    )
    obj["metadata"]["labels"] = {"app": "w"}
    obj["metadata"]["finalizers"] = ["a", "b"]
    assert FieldSet.from_object(obj, KIND).to_json() == {
        "f:apiVersion": {},
        "f:kind": {},
        "f:metadata": {
            "f:finalizers": {'v:"a"': {}, 'v:"b"': {}},
            "f:labels": {"f:app": {}},
            "f:name": {},
            "f:namespace": {},
            "f:uid": {},
        },
        "f:spec": {
            "f:containers": {
                'k:{"name":"web"}': {
                    ".": {},
                    "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {
                        'k:{"containerPort":80,"protocol":"TCP"}': {
                            ".": {},
                            "f:containerPort": {},
                        }
                    },
                    "f:resources": {},
                }
            },
            # No schema below `extra`: maps are owned key by key, as for untyped values.
            "f:extra": {"f:free": {".": {}, "f:form": {}}},
            "f:replicas": {},
            "f:selector": {},
        },
    }


def test_untyped_values_own_map_keys_one_by_one():
    obj = widget(extra={"a": {"b": 1}})
    assert FieldSet.from_object(obj, None).to_json()["f:spec"] == {
        ".": {},
        "f:extra": {".": {}, "f:a": {".": {}, "f:b": {}}},
    }


# ---- update tracking -----------------------------------------------------------------


def create(
    obj: dict[str, Any],
    manager: str = "kubectl-create",
    node: Any = KIND,
    api_version: str = "example.com/v1",
) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["managedFields"] = update_managed_fields(
        None, obj, manager=manager, api_version=api_version, now=T0, node=node
    )
    return out


def update(
    live: dict[str, Any],
    new: dict[str, Any],
    manager: str,
    now: str = T1,
    subresource: str = "",
    node: Any = KIND,
) -> list[dict[str, Any]]:
    return update_managed_fields(
        live,
        new,
        manager=manager,
        subresource=subresource,
        api_version="example.com/v1",
        now=now,
        node=node,
    )


def by_manager(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in entries}


def test_create_of_a_custom_resource_owns_everything_it_set():
    obj = widget(replicas=1, containers=[{"name": "web", "image": "nginx"}])
    entries = create(obj)["metadata"]["managedFields"]
    assert entries == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "example.com/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:spec": {
                    ".": {},
                    "f:containers": {
                        ".": {},
                        'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}},
                    },
                    "f:replicas": {},
                }
            },
        }
    ]


def test_another_updater_takes_the_fields_it_changes():
    live = create(widget(replicas=1, containers=[{"name": "web", "image": "nginx"}]))
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 3
    entries = by_manager(update(live, new, "kubectl-scale"))
    assert entries["kubectl-scale"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert entries["kubectl-scale"]["time"] == T1
    assert "f:replicas" not in entries["kubectl-create"]["fieldsV1"]["f:spec"]
    assert entries["kubectl-create"]["time"] == T0


def test_removed_fields_leave_every_manager_and_empty_entries_go():
    live = create(widget(replicas=1))
    live["metadata"]["managedFields"][0]["fieldsV1"] = {"f:spec": {"f:replicas": {}}}
    new = copy.deepcopy(live)
    del new["spec"]["replicas"]
    assert update(live, new, "kubectl-edit") == []


def test_a_custom_resource_creator_keeps_owning_spec_itself():
    live = create(widget(replicas=1))
    new = copy.deepcopy(live)
    del new["spec"]["replicas"]
    (entry,) = update(live, new, "kubectl-edit")
    assert entry["manager"] == "kubectl-create"
    assert entry["fieldsV1"] == {"f:spec": {}}


def test_same_manager_merges_into_its_entry_and_keeps_time_without_changes():
    live = create(widget(replicas=1))
    new = copy.deepcopy(live)
    new["spec"]["containers"] = [{"name": "web", "image": "nginx"}]
    live["metadata"]["managedFields"] = update(live, new, "kubectl-create", now=T1)
    (entry,) = live["metadata"]["managedFields"]
    assert entry["time"] == T1
    assert set(entry["fieldsV1"]["f:spec"]) == {".", "f:containers", "f:replicas"}
    same = copy.deepcopy(live)
    same["metadata"]["resourceVersion"] = "99"
    (again,) = update(live, same, "kubectl-create", now=T2)
    assert again["time"] == T1


def test_status_is_reset_on_the_main_resource_and_tracked_on_status():
    live = create(widget(replicas=1))
    new = copy.deepcopy(live)
    new["status"] = {"ready": 1}
    assert by_manager(update(live, new, "ctl")).keys() == {"kubectl-create"}
    entries = by_manager(update(live, new, "ctl", subresource="status"))
    assert entries["ctl"]["subresource"] == "status"
    assert entries["ctl"]["fieldsV1"] == {"f:status": {".": {}, "f:ready": {}}}


def test_objects_without_managed_fields_stay_untracked_on_update():
    live = widget(replicas=1)
    new = widget(replicas=2)
    assert update(live, new, "ctl") == []


def test_client_sent_entries_are_honoured_and_empty_list_resets():
    live = create(widget(replicas=1))
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = []
    assert update(live, new, "ctl") == []
    edited = copy.deepcopy(live)
    edited["metadata"]["managedFields"][0]["manager"] = "renamed"
    assert [e["manager"] for e in update(live, edited, "ctl")] == ["renamed"]


def test_undecodable_entries_fall_back_to_the_live_ones():
    live = create(widget(replicas=1))
    new = copy.deepcopy(live)
    new["metadata"]["managedFields"] = [{"manager": "x", "operation": "Delete"}]
    assert [e["manager"] for e in update(live, new, "ctl")] == ["kubectl-create"]


def test_update_managers_are_capped_into_ancient_changes():
    live = create(widget(replicas=0))
    for i in range(12):
        new = copy.deepcopy(live)
        new["spec"][f"f{i}"] = i
        new["metadata"]["managedFields"] = update(
            live, new, f"m{i:02d}", now=f"2024-05-01T11:{i:02d}:00Z", node=None
        )
        live = new
    entries = live["metadata"]["managedFields"]
    names = [e["manager"] for e in entries]
    assert len(names) == 10 and "ancient-changes" in names
    ancient = by_manager(entries)["ancient-changes"]
    assert set(ancient["fieldsV1"]["f:spec"]) >= {"f:replicas", "f:f0", "f:f1", "f:f2"}


def test_a_list_item_without_its_key_drops_tracking_instead_of_failing():
    live = create(widget(containers=[{"name": "a"}]))
    new = copy.deepcopy(live)
    new["spec"]["containers"] = [{"image": "x"}]
    assert update(live, new, "ctl") == []


def test_entries_sort_by_operation_then_time_then_manager():
    raw = [
        {
            "manager": "b",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:a": {}},
        },
        {
            "manager": "a",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:b": {}},
        },
        {
            "manager": "z",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:c": {}},
        },
        {
            "manager": "c",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:d": {}},
            "subresource": "status",
        },
    ]
    assert [e["manager"] for e in encode(decode(raw))] == ["z", "c", "a", "b"]


# ---- the real schema -------------------------------------------------------------------


def deployment() -> dict[str, Any]:
    labels = {"app": "nginx"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "nginx",
            "namespace": "default",
            "labels": labels,
            "uid": "u-1",
            "creationTimestamp": T0,
            "generation": 1,
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.14.2",
                            "resources": {},
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent",
                        }
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "securityContext": {},
                    "schedulerName": "default-scheduler",
                },
            },
        },
        "status": {},
    }


def test_deployment_create_matches_what_kubectl_shows():
    from kubi.api import schema

    node = schema.for_kind("apps", "v1", "Deployment")
    (entry,) = update_managed_fields(
        None, deployment(), manager="kubectl-create", api_version="apps/v1", now=T0, node=node
    )
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {
            "f:progressDeadlineSeconds": {},
            "f:replicas": {},
            "f:revisionHistoryLimit": {},
            "f:selector": {},
            "f:strategy": {
                "f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}},
                "f:type": {},
            },
            "f:template": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:containers": {
                        'k:{"name":"nginx"}': {
                            ".": {},
                            "f:image": {},
                            "f:imagePullPolicy": {},
                            "f:name": {},
                            "f:ports": {
                                ".": {},
                                'k:{"containerPort":80,"protocol":"TCP"}': {
                                    ".": {},
                                    "f:containerPort": {},
                                    "f:protocol": {},
                                },
                            },
                            "f:resources": {},
                            "f:terminationMessagePath": {},
                            "f:terminationMessagePolicy": {},
                        }
                    },
                    "f:dnsPolicy": {},
                    "f:restartPolicy": {},
                    "f:schedulerName": {},
                    "f:securityContext": {},
                    "f:terminationGracePeriodSeconds": {},
                },
            },
        },
    }


def test_configmap_create_owns_each_data_key():
    from kubi.api import schema

    node = schema.for_kind("", "v1", "ConfigMap")
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "uid": "u"},
        "data": {"b": "2", "a": "1"},
    }
    (entry,) = update_managed_fields(
        None, cm, manager="kubectl-create", api_version="v1", now=T0, node=node
    )
    assert entry["fieldsV1"] == {"f:data": {".": {}, "f:a": {}, "f:b": {}}}
    assert list(entry["fieldsV1"]["f:data"]) == [".", "f:a", "f:b"]


def test_zero_values_of_builtin_and_custom_kinds():
    assert empty_object("apps/v1", "Deployment")["spec"]["strategy"] == {}
    assert empty_object("v1", "ConfigMap") == {"metadata": {"creationTimestamp": None}}
    assert empty_object("example.com/v1", "Widget") == {}


# ---- manager names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_agent, expected",
    [
        ("kubectl/v1.33.0 (linux/amd64) kubernetes/abc", "kubectl"),
        ("Go-http-client/1.1", "Go-http-client"),
        ("", ""),
        ("a\x07b/1", "ab"),
        ("x" * 200, "x" * 128),
    ],
)
def test_default_manager_is_the_user_agent_product(user_agent, expected):
    assert default_manager(user_agent) == expected


def test_apply_requires_a_field_manager():
    with pytest.raises(Invalid) as caught:
        validate_field_manager("", apply=True)
    assert caught.value.code == 422
    assert caught.value.message == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
        "is required for apply patch"
    )


def test_field_manager_length_and_characters():
    with pytest.raises(Invalid) as caught:
        validate_field_manager("m" * 129)
    assert caught.value.message.endswith("fieldManager: Too long: may not be more than 128 bytes")
    with pytest.raises(Invalid) as caught:
        validate_field_manager("ok", force=True)
    assert "force: Forbidden: may not be specified for non-apply patch" in caught.value.message
    validate_field_manager("kubectl", apply=True, force=False)
    errors = validate_managed_fields([{"manager": "m", "operation": "Delete"}])
    assert [str(e) for e in errors] == [
        'metadata.managedFields[0].operation: Invalid value: "Delete": must be `Apply` or `Update`',
    ]

"""Server-side apply: merging, pruning, ownership and conflicts, as upstream v1.33."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubi.api.errors import BadRequest, StatusError
from kubi.api.managed import LAST_APPLIED, server_side_apply, update_managed_fields

API = "example.com/v1"
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


def config(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def bare() -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Widget", "metadata": {"name": "w"}}


def apply(
    live: dict[str, Any] | None,
    cfg: dict[str, Any],
    manager: str = "ci",
    force: bool = False,
    now: str = T1,
    **kw: Any,
) -> dict[str, Any]:
    return server_side_apply(
        live,
        cfg,
        manager=manager,
        force=force,
        api_version=API,
        now=now,
        node=kw.pop("node", KIND),
        **kw,
    )


def owners(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in obj["metadata"]["managedFields"]}


def updated(live: dict[str, Any], manager: str, change, now: str = T1) -> dict[str, Any]:
    """`live` after a plain update by `manager` (as a PUT or PATCH would record it)."""
    new = copy.deepcopy(live)
    change(new)
    new["metadata"]["managedFields"] = update_managed_fields(
        live, new, manager=manager, api_version=API, now=now, node=KIND
    )
    return new


def created(**spec: Any) -> dict[str, Any]:
    obj = apply(None, config(**spec), now=T0)
    obj["metadata"].update(namespace="default", uid="u-1", creationTimestamp=T0)
    return obj


# ---- create and re-apply -------------------------------------------------------------


def test_apply_creates_the_object_with_one_apply_entry():
    cfg = config(replicas=2, containers=[{"name": "web", "image": "nginx"}])
    obj = apply(None, cfg, now=T0)
    assert obj["spec"] == cfg["spec"]
    assert obj["metadata"]["managedFields"] == [
        {
            "manager": "ci",
            "operation": "Apply",
            "apiVersion": API,
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:spec": {
                    "f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}},
                    "f:replicas": {},
                }
            },
        }
    ]
    obj["spec"]["containers"][0]["image"] = "changed"
    assert cfg["spec"]["containers"][0]["image"] == "nginx"


def test_reapplying_the_same_configuration_changes_nothing_not_even_the_time():
    obj = created(replicas=2)
    again = apply(obj, config(replicas=2), now=T2)
    assert again["spec"] == {"replicas": 2}
    assert owners(again)["ci"]["time"] == T0


def test_equal_values_are_shared_not_conflicts():
    obj = created(replicas=2)
    shared = apply(obj, config(replicas=2), manager="other", now=T2)
    entries = owners(shared)
    assert entries["ci"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert entries["other"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    # Nothing changed, so the newcomer's entry carries no time.
    assert "time" not in entries["other"]


def test_a_null_in_the_configuration_owns_the_field_and_clears_it():
    obj = apply(created(replicas=2), config(replicas=None))
    assert "replicas" not in obj["spec"]
    assert owners(obj)["ci"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


# ---- conflicts -----------------------------------------------------------------------


def test_changing_a_field_another_manager_owns_is_a_conflict():
    obj = updated(created(replicas=2), "kubectl-edit", lambda o: o["spec"].update(replicas=5))
    with pytest.raises(StatusError) as caught:
        apply(obj, config(replicas=2), now=T2)
    err = caught.value
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using example.com/v1: '
        ".spec.replicas"
    )
    assert err.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "kubectl-edit" using example.com/v1',
                "field": ".spec.replicas",
            }
        ]
    }


def test_several_conflicts_are_grouped_by_manager():
    obj = created(replicas=2, containers=[{"name": "web", "image": "a"}])
    obj = updated(obj, "m1", lambda o: o["spec"].update(replicas=5))
    obj = updated(obj, "m2", lambda o: o["spec"]["containers"][0].update(image="b"))
    obj = updated(obj, "m1", lambda o: o["spec"]["containers"][0].update(args=["x"]), now=T2)
    cfg = config(replicas=1, containers=[{"name": "web", "image": "c", "args": ["y"]}])
    with pytest.raises(StatusError) as caught:
        apply(obj, cfg, now=T2)
    assert caught.value.message == (
        'Apply failed with 3 conflicts: conflicts with "m1" using example.com/v1:\n'
        "- .spec.replicas\n"
        '- .spec.containers[name="web"].args\n'
        'conflicts with "m2" using example.com/v1:\n'
        '- .spec.containers[name="web"].image'
    )
    assert [c["field"] for c in caught.value.details["causes"]] == [
        ".spec.replicas",
        '.spec.containers[name="web"].args',
        '.spec.containers[name="web"].image',
    ]


def test_force_takes_the_field_from_the_other_manager():
    obj = updated(
        created(replicas=2, containers=[{"name": "web", "image": "a"}]),
        "kubectl-edit",
        lambda o: o["spec"].update(replicas=5),
    )
    forced = apply(
        obj, config(replicas=3, containers=[{"name": "web", "image": "a"}]), force=True, now=T2
    )
    assert forced["spec"]["replicas"] == 3
    assert "kubectl-edit" not in owners(forced)
    assert owners(forced)["ci"]["time"] == T2


def test_status_subresource_conflicts_name_the_subresource():
    obj = created(replicas=1)
    new = copy.deepcopy(obj)
    new["status"] = {"ready": 1}
    new["metadata"]["managedFields"] = update_managed_fields(
        obj, new, manager="kubelet", subresource="status", api_version=API, now=T1, node=KIND
    )
    status_cfg = {**config(), "status": {"ready": 2}}
    with pytest.raises(StatusError) as caught:
        apply(new, status_cfg, subresource="status")
    assert caught.value.message.endswith(
        'conflict with "kubelet" with subresource "status" using example.com/v1: .status.ready'
    )


def test_objects_never_applied_to_get_a_before_first_apply_owner():
    plain = {
        "apiVersion": API,
        "kind": "Widget",
        "metadata": {"name": "w", "uid": "u-1"},
        "spec": {"replicas": 2},
    }
    with pytest.raises(StatusError) as caught:
        apply(plain, config(replicas=3))
    assert 'conflict with "before-first-apply" using example.com/v1' in caught.value.message
    shared = apply(plain, config(replicas=2))
    assert set(owners(shared)) == {"before-first-apply", "ci"}


# ---- pruning -------------------------------------------------------------------------


def test_fields_dropped_from_the_configuration_are_removed():
    obj = created(replicas=2, containers=[{"name": "web", "image": "a"}, {"name": "db"}])
    pruned = apply(obj, config(containers=[{"name": "web", "image": "a"}]), now=T2)
    assert pruned["spec"] == {"containers": [{"name": "web", "image": "a"}]}
    assert owners(pruned)["ci"]["fieldsV1"] == {
        "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}
    }


def test_dropped_fields_another_manager_owns_stay():
    obj = created(replicas=2)
    obj = apply(obj, config(replicas=2), manager="other", now=T1)
    kept = apply(obj, bare(), now=T2)
    assert kept["spec"] == {"replicas": 2}
    assert set(owners(kept)) == {"other"}


def test_fields_set_by_updaters_survive_the_appliers_pruning():
    obj = created(replicas=2)
    obj = updated(
        obj, "kubectl-label", lambda o: o["metadata"].setdefault("labels", {}).update(a="b")
    )
    kept = apply(obj, bare(), now=T2)
    assert kept["metadata"]["labels"] == {"a": "b"}
    assert "spec" not in kept
    assert set(owners(kept)) == {"kubectl-label"}


def test_applying_an_empty_map_owns_the_map():
    obj = apply(created(replicas=2), config(), now=T2)
    assert "spec" not in obj
    assert owners(obj)["ci"]["fieldsV1"] == {"f:spec": {}}


# ---- merging lists -------------------------------------------------------------------


def test_list_items_merge_by_key_in_the_configurations_order():
    obj = created(containers=[{"name": "a"}, {"name": "b"}, {"name": "c"}])
    obj = apply(
        obj, config(containers=[{"name": "a"}, {"name": "b"}, {"name": "c"}]), manager="other"
    )
    merged = apply(obj, config(containers=[{"name": "c", "image": "x"}, {"name": "a"}]), force=True)
    assert merged["spec"]["containers"] == [
        {"name": "b"},
        {"name": "c", "image": "x"},
        {"name": "a"},
    ]


def test_new_items_follow_the_live_ones():
    obj = created(containers=[{"name": "a"}, {"name": "b"}])
    obj = apply(obj, config(containers=[{"name": "a"}, {"name": "b"}]), manager="other")
    merged = apply(obj, config(containers=[{"name": "b"}, {"name": "x"}]))
    assert [c["name"] for c in merged["spec"]["containers"]] == ["a", "b", "x"]


def test_sets_merge_by_value():
    live = created()
    live["metadata"]["finalizers"] = ["one"]
    live = updated(live, "ctl", lambda o: o["metadata"]["finalizers"].append("two"))
    cfg = config()
    cfg["metadata"]["finalizers"] = ["three", "one"]
    merged = apply(live, cfg)
    assert merged["metadata"]["finalizers"] == ["three", "one", "two"]
    assert owners(merged)["ci"]["fieldsV1"]["f:metadata"] == {
        "f:finalizers": {'v:"one"': {}, 'v:"three"': {}}
    }


def test_list_map_keys_take_their_defaults():
    obj = apply(
        None,
        config(containers=[{"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
        manager="other",
    )
    merged = apply(obj, config(containers=[{"name": "web", "ports": [{"containerPort": 80}]}]))
    assert merged["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


# ---- client-side apply upgrade -------------------------------------------------------


def csa_created(replicas: int) -> dict[str, Any]:
    cfg = config(replicas=replicas)
    cfg["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(cfg) + "\n"}
    obj = copy.deepcopy(cfg)
    obj["metadata"].update(namespace="default", uid="u-1")
    obj["metadata"]["managedFields"] = update_managed_fields(
        None, obj, manager="kubectl-client-side-apply", api_version=API, now=T0, node=KIND
    )
    return obj


def test_kubectl_takes_over_fields_client_side_apply_set():
    obj = csa_created(2)
    upgraded = apply(obj, config(replicas=3), manager="kubectl", now=T2)
    assert upgraded["spec"]["replicas"] == 3
    annotation = upgraded["metadata"]["annotations"][LAST_APPLIED]
    assert annotation == (
        '{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},'
        '"spec":{"replicas":3}}\n'
    )
    with pytest.raises(StatusError):
        apply(obj, config(replicas=3), manager="ci", now=T2)


def test_fields_changed_since_the_last_client_side_apply_still_conflict():
    obj = updated(csa_created(2), "kubectl-edit", lambda o: o["spec"].update(replicas=4))
    with pytest.raises(StatusError) as caught:
        apply(obj, config(replicas=3), manager="kubectl", now=T2)
    assert 'conflict with "kubectl-edit"' in caught.value.message


# ---- refusals ------------------------------------------------------------------------


def test_a_configuration_of_another_kind_is_refused():
    with pytest.raises(BadRequest) as caught:
        apply(created(), {"apiVersion": "apps/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert caught.value.message == "invalid object type: apps/v1, Kind=Widget"


def test_managed_fields_in_the_configuration_are_refused():
    cfg = config()
    cfg["metadata"]["managedFields"] = []
    with pytest.raises(BadRequest) as caught:
        apply(None, cfg)
    assert caught.value.message == "metadata.managedFields must be nil"


def test_duplicate_list_keys_fail_as_upstream_does():
    cfg = config(containers=[{"name": "web"}, {"name": "web"}])
    cfg["metadata"]["namespace"] = "default"
    with pytest.raises(StatusError) as caught:
        apply(None, cfg)
    assert caught.value.code == 500
    assert caught.value.message == (
        "failed to create typed patch object (default/w; example.com/v1, Kind=Widget): "
        '.spec.containers: duplicate entries for key [name="web"]'
    )


def test_an_item_without_its_key_fails_as_upstream_does():
    with pytest.raises(StatusError) as caught:
        apply(None, config(containers=[{"image": "x"}]))
    assert caught.value.message.endswith(
        ".spec.containers: element 0: associative list with keys has an element that omits "
        'key field "name" (and doesn\'t have default value)'
    )


# ---- the real schema -------------------------------------------------------------------


def test_deployment_replicas_conflict_with_client_side_apply():
    from kubi.api import schema

    node = schema.for_kind("apps", "v1", "Deployment")
    labels = {"app": "web"}
    live = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        }
                    ]
                },
            },
        },
    }
    live["metadata"]["managedFields"] = update_managed_fields(
        None, live, manager="kubectl-client-side-apply", api_version="apps/v1", now=T0, node=node
    )
    cfg = copy.deepcopy(live)
    del cfg["metadata"]["managedFields"], cfg["metadata"]["uid"]
    cfg["spec"]["replicas"] = 3
    cfg["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    with pytest.raises(StatusError) as caught:
        server_side_apply(
            live, cfg, manager="ci", force=False, api_version="apps/v1", now=T1, node=node
        )
    assert caught.value.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
        "apps/v1: .spec.replicas"
    )
    done = server_side_apply(
        live, cfg, manager="ci", force=True, api_version="apps/v1", now=T1, node=node
    )
    assert done["spec"]["replicas"] == 3
    assert done["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "protocol": "TCP"}
    ]
    entries = owners(done)
    assert "f:replicas" not in entries["kubectl-client-side-apply"]["fieldsV1"]["f:spec"]
    assert entries["ci"]["fieldsV1"]["f:spec"]["f:replicas"] == {}

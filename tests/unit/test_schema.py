"""The API schema: lookups, patch metadata, and the decode-time checks."""

from __future__ import annotations

import copy

import pytest

from kubi.api import schema
from kubi.api.schema import godecode


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx",
                            "ports": [{"containerPort": 80}],
                            "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                        }
                    ]
                },
            },
        },
    }


DEPLOYMENT = schema.for_kind("apps", "v1", "Deployment")


# ---- lookups and node attributes -----------------------------------------------------


def test_kinds_resolve_to_upstream_definitions() -> None:
    assert DEPLOYMENT is not None and DEPLOYMENT.name == "io.k8s.api.apps.v1.Deployment"
    assert schema.definition_name("", "v1", "Event") == "io.k8s.api.core.v1.Event"
    assert schema.definition_name("events.k8s.io", "v1", "Event") == "io.k8s.api.events.v1.Event"
    assert schema.definition_name("apps", "v1", "DeploymentList") == (
        "io.k8s.api.apps.v1.DeploymentList"
    )
    assert schema.for_kind("apps", "v1", "NoSuchKind") is None
    assert schema.definition("io.k8s.api.core.v1.Pod") is schema.for_kind("", "v1", "Pod")
    with pytest.raises(KeyError):
        schema.definition("io.k8s.api.core.v1.Nope")


def test_struct_and_map_children() -> None:
    assert DEPLOYMENT is not None
    spec = DEPLOYMENT.child("spec")
    assert spec is not None and spec.type == "object"
    assert "replicas" in spec.properties and spec.additional is None
    assert spec.required == ("selector", "template")
    labels = DEPLOYMENT.child("metadata").child("labels")
    assert labels.type == "object" and labels.properties == {}
    assert labels.additional is not None and labels.additional.type == "string"
    assert labels.child("anything") is labels.additional
    assert spec.child("replicas").format == "int32"
    assert spec.child("nope") is None


def test_patch_metadata_comes_from_the_field() -> None:
    assert DEPLOYMENT is not None
    spec = DEPLOYMENT.child("spec")
    assert spec.child("strategy").patch_strategy == ("retainKeys",)
    pod = spec.child("template").child("spec")
    containers = pod.child("containers")
    assert containers.type == "array"
    assert containers.patch_merge_key == "name"
    assert containers.patch_strategy == ("merge",)
    assert containers.list_type == "map" and containers.list_map_keys == ("name",)
    assert containers.items is not None and containers.items.name == "io.k8s.api.core.v1.Container"
    assert pod.child("volumes").patch_strategy == ("merge", "retainKeys")
    assert pod.child("tolerations").patch_strategy == ()
    ports = containers.items.child("ports")
    assert ports.patch_merge_key == "containerPort"
    finalizers = DEPLOYMENT.child("metadata").child("finalizers")
    assert finalizers.patch_strategy == ("merge",) and finalizers.list_type == "set"
    assert spec.child("selector").map_type == "atomic"


def test_special_types() -> None:
    container = schema.definition("io.k8s.api.core.v1.Container")
    limits = container.child("resources").child("limits")
    assert limits.additional.type == "string" and limits.additional.format == "quantity"
    surge = schema.definition("io.k8s.api.apps.v1.RollingUpdateDeployment").child("maxSurge")
    assert surge.type == "int-or-string"
    created = schema.definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta").child(
        "creationTimestamp")
    assert created.type == "string" and created.format == "date-time"
    revision = schema.for_kind("apps", "v1", "ControllerRevision")
    assert revision is not None and revision.child("data").preserve_unknown
    secret_data = schema.for_kind("", "v1", "Secret").child("data")
    assert secret_data.additional.format == "byte"


def test_recursive_definitions_link_lazily() -> None:
    props = schema.definition(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
    deep = props.child("properties").additional.child("properties").additional
    assert deep is props


def test_gvks_are_kept() -> None:
    assert DEPLOYMENT is not None
    assert DEPLOYMENT.gvks == ({"group": "apps", "kind": "Deployment", "version": "v1"},)


# ---- unknown fields ----------------------------------------------------------------------


def test_known_object_has_no_unknown_fields() -> None:
    assert DEPLOYMENT is not None
    assert schema.find_unknown_fields(DEPLOYMENT, deployment()) == []


def test_unknown_fields_are_named_by_path() -> None:
    assert DEPLOYMENT is not None
    obj = deployment()
    obj["metadata"]["bogus"] = 1
    obj["spec"]["foo"] = {"x": 1}
    obj["spec"]["template"]["spec"]["containers"][0]["imagex"] = "nginx"
    obj["spec"]["template"]["spec"]["containers"].append({"name": "b", "Image": "x"})
    obj["extra"] = True
    # In document order: `spec.foo` was added after `spec.template`.
    assert schema.find_unknown_fields(DEPLOYMENT, obj) == [
        "metadata.bogus",
        "spec.template.spec.containers[0].imagex",
        "spec.template.spec.containers[1].Image",
        "spec.foo",
        "extra",
    ]


def test_unknown_fields_are_reported_once_and_capped() -> None:
    node = schema.for_kind("", "v1", "ConfigMap")
    assert node is not None
    obj = {"metadata": {"name": "x"}, **{f"f{i}": i for i in range(150)}}
    found = schema.find_unknown_fields(node, obj)
    assert len(found) == schema.MAX_UNKNOWN and found[0] == "f0"


def test_maps_and_opaque_values_take_any_key() -> None:
    node = schema.for_kind("apps", "v1", "ControllerRevision")
    assert node is not None
    obj = {"metadata": {"name": "r", "annotations": {"any.key/x": "v"}},
           "data": {"spec": {"whatever": {"deep": 1}}}, "revision": 1}
    assert schema.find_unknown_fields(node, obj) == []


def test_prune_unknown_drops_only_unknown_fields() -> None:
    assert DEPLOYMENT is not None
    obj = deployment()
    expected = copy.deepcopy(obj)
    obj["spec"]["foo"] = 1
    obj["spec"]["template"]["spec"]["containers"][0]["imagex"] = "x"
    schema.prune_unknown(DEPLOYMENT, obj)
    assert obj == expected


# ---- type checks -------------------------------------------------------------------------


def with_change(path: list, value: object) -> dict:
    obj = deployment()
    target = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return obj


CONTAINER = ["spec", "template", "spec", "containers", 0]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["spec", "replicas"], "3",
         ("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
         "of type int32")),
        (["spec", "replicas"], 2.5,
         ("json: cannot unmarshal number 2.5 into Go struct field DeploymentSpec.spec.replicas "
         "of type int32")),
        (["spec", "replicas"], 2**31,
         ("json: cannot unmarshal number 2147483648 into Go struct field "
         "DeploymentSpec.spec.replicas of type int32")),
        (["spec", "paused"], "yes",
         ("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused "
         "of type bool")),
        (["spec", "template", "spec", "containers"], "nginx",
         ("json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec."
         "containers of type []v1.Container")),
        ([*CONTAINER, "args"], [1],
         ("json: cannot unmarshal number into Go struct field Container.spec.template.spec."
         "containers.args of type string")),
        ([*CONTAINER, "image"], {"name": "x"},
         ("json: cannot unmarshal object into Go struct field Container.spec.template.spec."
         "containers.image of type string")),
        ([*CONTAINER, "imagePullPolicy"], 1,
         ("json: cannot unmarshal number into Go struct field Container.spec.template.spec."
         "containers.imagePullPolicy of type v1.PullPolicy")),
        (["metadata", "labels"], ["a"],
         ("json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels "
         "of type map[string]string")),
        (["metadata", "labels", "app"], 5,
         ("json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels "
         "of type string")),
        (["metadata", "creationTimestamp"], 5,
         ("json: cannot unmarshal number into Go struct field ObjectMeta.metadata."
         "creationTimestamp of type string")),
        (["spec", "strategy", "rollingUpdate", "maxSurge"], True,
         ("json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec."
         "strategy.rollingUpdate.maxSurge of type int32")),
        (["spec", "strategy", "rollingUpdate", "maxSurge"], 1.5,
         ("json: cannot unmarshal number 1.5 into Go struct field RollingUpdateDeployment.spec."
         "strategy.rollingUpdate.maxSurge of type int32")),
        (["spec", "template"], "x",
         ("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.template "
         "of type v1.PodTemplateSpec")),
        ([*CONTAINER, "resources", "limits", "cpu"], "1x", godecode.QUANTITY_FORMAT_ERROR),
        ([*CONTAINER, "resources", "limits", "cpu"], "1Qi", godecode.QUANTITY_FORMAT_ERROR),
        ([*CONTAINER, "resources", "limits", "cpu"], "1ee", godecode.QUANTITY_SUFFIX_ERROR),
        (["metadata", "creationTimestamp"], "yesterday",
         ('parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" '
         'as "2006"')),
    ],
)
def test_type_mismatches_give_the_go_decoder_error(path: list, value: object,
                                                   message: str) -> None:
    assert DEPLOYMENT is not None
    assert schema.check_types(DEPLOYMENT, with_change(path, value)) == message


def test_well_typed_values_pass() -> None:
    assert DEPLOYMENT is not None
    obj = deployment()
    obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z"
    obj["metadata"]["labels"]["nothing"] = None
    obj["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 1, "maxUnavailable": "10%"}
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 2
    obj["spec"]["minReadySeconds"] = None
    assert schema.check_types(DEPLOYMENT, obj) is None


def test_first_type_error_in_document_order_wins() -> None:
    assert DEPLOYMENT is not None
    obj = deployment()
    obj["metadata"]["generation"] = "1"
    obj["spec"]["replicas"] = "2"
    assert "ObjectMeta.metadata.generation" in (schema.check_types(DEPLOYMENT, obj) or "")


def test_a_failing_quantity_stops_decoding_at_once() -> None:
    # Values with their own parser abort the decode, so their error wins even
    # over an earlier plain type mismatch.
    assert DEPLOYMENT is not None
    obj = with_change([*CONTAINER, "resources", "limits", "cpu"], "lots")
    obj["spec"]["replicas"] = "2"
    assert schema.check_types(DEPLOYMENT, obj) == godecode.QUANTITY_FORMAT_ERROR


def test_root_mismatch_has_no_field_context() -> None:
    assert DEPLOYMENT is not None
    assert schema.check_types(DEPLOYMENT, []) == (
        "json: cannot unmarshal array into Go value of type v1.Deployment")


def test_secret_data_must_be_base64() -> None:
    secret = schema.for_kind("", "v1", "Secret")
    assert secret is not None
    assert schema.check_types(secret, {"data": {"a": "aGVsbG8="}}) is None
    assert schema.check_types(secret, {"data": {"a": "hello!"}}) == (
        "illegal base64 data at input byte 5")


# ---- Go decoders -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offset"),
    [("aGVsbG8=", None), ("aGk=", None), ("", None), ("aGVs\nbG8=", None),
     ("aGVsbG8", 4), ("a", 0), ("a===", 1), ("aGVs!G8=", 4), ("aGVsbG8=x", 8), ("ab=", 3)],
)
def test_base64_errors_name_the_offset(text: str, offset: int | None) -> None:
    expected = None if offset is None else f"illegal base64 data at input byte {offset}"
    assert godecode.base64_error(text) == expected


@pytest.mark.parametrize("good", ["1", "0.5", "500m", "1Gi", "128974848", "129e6", "1E",
                                  "+1k", "-2Mi", ".5", "1.5e-3", " 2 ", 3, 0.25])
def test_valid_quantities(good: object) -> None:
    assert godecode.quantity_error(good) is None


@pytest.mark.parametrize(("bad", "message"), [
    ("", godecode.QUANTITY_FORMAT_ERROR),
    ("abc", godecode.QUANTITY_FORMAT_ERROR),
    ("1.2.3", godecode.QUANTITY_FORMAT_ERROR),
    (True, godecode.QUANTITY_FORMAT_ERROR),
    ({"a": 1}, godecode.QUANTITY_FORMAT_ERROR),
    ("1Mb", godecode.QUANTITY_FORMAT_ERROR),
    ("1mi", godecode.QUANTITY_SUFFIX_ERROR),
    ("5KK", godecode.QUANTITY_SUFFIX_ERROR),
])
def test_invalid_quantities(bad: object, message: str) -> None:
    assert godecode.quantity_error(bad) == message


@pytest.mark.parametrize(("text", "micro", "message"), [
    ("2024-01-02T03:04:05Z", False, None),
    ("2024-01-02T03:04:05.123Z", False, None),
    ("2024-01-02T03:04:05+05:30", False, None),
    ("2024-02-29T00:00:00Z", False, None),
    ("2024-01-02T03:04:05.000001Z", True, None),
    ("2023-02-29T00:00:00Z", False, 'parsing time "2023-02-29T00:00:00Z": day out of range'),
    ("2024-13-01T00:00:00Z", False, 'parsing time "2024-13-01T00:00:00Z": month out of range'),
    ("2024-01-02 03:04:05Z", False,
     ('parsing time "2024-01-02 03:04:05Z" as "2006-01-02T15:04:05Z07:00": '
     'cannot parse " 03:04:05Z" as "T"')),
    ("2024-01-02T03:04:05", False,
     ('parsing time "2024-01-02T03:04:05" as "2006-01-02T15:04:05Z07:00": '
     'cannot parse "" as "Z07:00"')),
    ("2024-01-02T03:04:05Zjunk", False, ('parsing time "2024-01-02T03:04:05Zjunk": extra text: '
     '"junk"')),
    ("2024-01-02T03:04:05Z", True,
     ('parsing time "2024-01-02T03:04:05Z" as "2006-01-02T15:04:05.000000Z07:00": '
     'cannot parse "Z" as ".000000"')),
])
def test_time_errors(text: str, micro: bool, message: str | None) -> None:
    assert godecode.time_error(text, micro=micro) == message

"""The OpenAPI documents: what kubectl looks for in them, and their integrity."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from kubi.api import catalog, openapi


def v3(path: str) -> dict[str, Any]:
    found = openapi.openapi_v3_group_version(path)
    assert found is not None
    return orjson.loads(found[0])


def refs(node: Any) -> list[str]:
    """Every `$ref` anywhere in a JSON value."""
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        for value in node.values():
            found += refs(value)
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in refs(item)]
    return []


def supports_field_validation(doc: dict[str, Any], gvk: dict[str, str]) -> bool:
    """What kubectl checks before sending `fieldValidation=Strict`: the first PATCH
    operation tagged with the kind lists the query parameter."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op and op.get("x-kubernetes-group-version-kind") == gvk:
            return any(p.get("name") == "fieldValidation" and p.get("in") == "query"
                       for p in op.get("parameters", []))
    return False


def test_root_lists_every_group_version_with_its_hash() -> None:
    root = orjson.loads(openapi.openapi_v3_root())
    expected = {"api/v1"} | {f"apis/{g}/{v}" for g, vs in catalog.groups().items() if g
                             for v in vs}
    assert set(root["paths"]) == expected
    for path, entry in root["paths"].items():
        body, digest = openapi.openapi_v3_group_version(path)
        assert digest == hashlib.sha512(body).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={digest}"


def test_documents_are_built_once() -> None:
    assert openapi.openapi_v3_group_version("apis/apps/v1") is openapi.openapi_v3_group_version(
        "/apis/apps/v1/")
    assert openapi.openapi_v2() is openapi.openapi_v2()
    assert openapi.openapi_v3_group_version("apis/batch/v1") is None


def test_every_kind_supports_server_side_field_validation() -> None:
    for rt in catalog.RESOURCES:
        doc = v3("api/v1" if not rt.group else f"apis/{rt.group}/{rt.version}")
        gvk = {"group": rt.group, "kind": rt.kind, "version": rt.version}
        assert supports_field_validation(doc, gvk), rt.kind


def test_explain_finds_kinds_through_get_operations() -> None:
    doc = v3("apis/apps/v1")
    listing = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert listing["get"]["x-kubernetes-group-version-kind"] == {
        "group": "apps", "kind": "Deployment", "version": "v1"}
    assert listing["get"]["x-kubernetes-action"] == "list"
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert {"get", "put", "patch", "delete"} <= set(item)
    assert item["patch"]["operationId"] == "patchAppsV1NamespacedDeployment"
    assert item["patch"]["x-kubernetes-action"] == "patch"
    assert "application/strategic-merge-patch+json" in item["patch"]["requestBody"]["content"]
    cluster = v3("api/v1")["paths"]["/api/v1/namespaces/{name}"]
    assert cluster["get"]["operationId"] == "readCoreV1Namespace"
    schemas = doc["components"]["schemas"]
    assert schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]


def test_subresources_are_described() -> None:
    paths = v3("apis/apps/v1")["paths"]
    scale = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "kind": "Scale", "version": "v1"}
    status = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]
    assert status["get"]["operationId"] == "readAppsV1NamespacedDeploymentStatus"
    core = v3("api/v1")["paths"]
    assert core["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["get"][
        "x-kubernetes-action"] == "connect"
    assert "/api/v1/pods" in core  # list across namespaces


def test_components_hold_every_referenced_schema() -> None:
    for path in openapi.openapi_v3_paths():
        doc = v3(path)
        schemas = doc["components"]["schemas"]
        for ref in refs(doc):
            assert ref.startswith("#/components/schemas/")
            assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_v3_schemas_carry_types_and_patch_extensions() -> None:
    schemas = v3("apis/apps/v1")["components"]["schemas"]
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["properties"]["replicas"] == {"format": "int32", "type": "integer"}
    assert spec["properties"]["strategy"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}],
        "x-kubernetes-patch-strategy": "retainKeys",
    }
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert "oneOf" in schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"][
        "x-kubernetes-int-or-string"] is True
    assert not any("description" in s for s in schemas.values())


def test_swagger_v2_document() -> None:
    body, digest = openapi.openapi_v2()
    assert digest == hashlib.sha512(body).hexdigest().upper()
    doc = orjson.loads(body)
    assert doc["swagger"] == "2.0"
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert {"name": "fieldValidation", "in": "query", "type": "string",
            "uniqueItems": True} in patch["parameters"]
    for ref in refs(doc):
        assert ref.removeprefix("#/definitions/") in doc["definitions"], ref
    strategy = doc["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy == {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy",
                        "x-kubernetes-patch-strategy": "retainKeys"}
    assert doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "format": "int-or-string", "type": "string"}

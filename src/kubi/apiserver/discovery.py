"""Discovery documents, built once from the catalog.

kubectl asks `/api` and `/apis` for the aggregated form
(`apidiscovery.k8s.io/v2 APIGroupDiscoveryList`) and falls back to the legacy
documents (`APIVersions`, `APIGroupList`, one `APIResourceList` per group
version) when the answer is not that; both are served. Which one is chosen
depends on the Accept header, and the Content-Type of the answer says which
one it is, as client-go decides by it.
"""

from __future__ import annotations

import functools
import hashlib

import orjson

from kubi import KUBERNETES_VERSION
from kubi.api import catalog

AGGREGATED_CT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_CT_BETA = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str | None) -> str | None:
    """The aggregated discovery version the client prefers, if any."""
    for clause in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in clause.split(";")[1:] if "=" in p)
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io":
            if params.get("v") in ("v2", "v2beta1"):
                return params["v"]
    return None


def _resource_discovery(rt: catalog.ResourceType) -> dict:
    entry: dict = {
        "resource": rt.plural,
        "responseKind": {"group": "", "version": "", "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources:
        group, version, kind = rt.sub_kind(sub)
        item: dict = {"subresource": sub, "verbs": list(rt.sub_verbs(sub))}
        if kind:
            item["responseKind"] = {"group": group, "version": version, "kind": kind}
        subs.append(item)
    if subs:
        entry["subresources"] = subs
    return entry


@functools.cache
def aggregated(core: bool, version: str = "v2") -> bytes:
    items = []
    for group, versions in catalog.groups().items():
        if (group == "") != core:
            continue
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [
                {
                    "version": v,
                    "resources": [_resource_discovery(r) for r in catalog.resources_of(group, v)],
                    "freshness": "Current",
                }
                for v in versions
            ],
        })
    return orjson.dumps({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    })


@functools.cache
def api_versions() -> bytes:
    return orjson.dumps({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })


def _group_entry(group: str, versions: list[str]) -> dict:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


@functools.cache
def api_group_list() -> bytes:
    groups = [_group_entry(g, vs) for g, vs in catalog.groups().items() if g]
    return orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})


def api_group(group: str) -> bytes | None:
    versions = catalog.groups().get(group)
    if not versions or not group:
        return None
    return orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)})


@functools.cache
def resource_list(group: str, version: str) -> bytes | None:
    resources = catalog.resources_of(group, version)
    if not resources:
        return None
    out = []
    for rt in resources:
        item: dict = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            item["shortNames"] = list(rt.short_names)
        if rt.categories:
            item["categories"] = list(rt.categories)
        item["storageVersionHash"] = _storage_hash(rt)
        out.append(item)
        for sub in rt.subresources:
            sub_group, sub_version, sub_kind = rt.sub_kind(sub)
            entry: dict = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub_kind or rt.kind,
                "verbs": list(rt.sub_verbs(sub)),
            }
            if sub_group:
                entry["group"] = sub_group
            if sub_version and sub_group:
                entry["version"] = sub_version
            out.append(entry)
    gv = f"{group}/{version}" if group else version
    return orjson.dumps({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                         "resources": out})


def _storage_hash(rt: catalog.ResourceType) -> str:
    import base64

    digest = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


@functools.cache
def version() -> bytes:
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    return orjson.dumps({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(int(minor) - 1),
        "gitVersion": f"{KUBERNETES_VERSION}-kubi",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "python",
        "compiler": "kubi",
        "platform": "linux/amd64",
    }, option=orjson.OPT_INDENT_2)

"""A FakeAPI that deletes the way the API server does, for lifecycle controller tests.

On top of `FakeAPI` it honours DELETE preconditions (uid, resourceVersion),
propagationPolicy (adding the `orphan` or `foregroundDeletion` finalizer),
finalizers (an object with finalizers only gets a deletionTimestamp and goes
once the last one is patched away), held objects (deletion starts but the
object stays, as a pod does in its grace period, until `finish` is called),
merge-patch resourceVersion preconditions, strategic merges of single
ownerReference fields, and the namespace `finalize` subresource.
"""

from __future__ import annotations

import copy
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.meta import now_rfc3339
from kubi.client.client import Resource
from tests.unit.controllers_fakeapi import FakeAPI


def _conflict(plural: str, name: str, message: str) -> StatusError:
    return StatusError(409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": '
                       f"{message}")


class LifecycleFakeAPI(FakeAPI):
    def __init__(self) -> None:
        super().__init__()
        self.held: set[tuple[str, str]] = set()  # (plural, name) whose deletion waits
        self.deletes: list[tuple[str, str, str | None, dict[str, Any] | None]] = []

    def obj(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, namespace, name))

    async def delete(self, res: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: dict[str, Any] | None = None, **_: Any) -> dict:
        self.calls.append(("delete", res.plural, name))
        self._check("delete", res, None)
        current = self._existing(res, namespace, name)
        md = current["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != md["uid"]:
            raise _conflict(res.plural, name, "Precondition failed: UID mismatch")
        if pre.get("resourceVersion") and pre["resourceVersion"] != md["resourceVersion"]:
            raise _conflict(res.plural, name, "Precondition failed: ResourceVersion mismatch")
        self.deletes.append((res.plural, name, propagation_policy, preconditions))
        finalizers = list(md.get("finalizers") or [])
        if propagation_policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if propagation_policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if propagation_policy in ("Background", "Foreground"):
            finalizers = [f for f in finalizers if f != "orphan"]
        if propagation_policy in ("Background", "Orphan"):
            finalizers = [f for f in finalizers if f != "foregroundDeletion"]
        held = (res.plural, name) in self.held
        pending_ns = res.plural == "namespaces" and (current.get("spec") or {}).get("finalizers")
        key = self._key(res, namespace, name)
        if not finalizers and not held and not pending_ns:
            del self.objects[key]
            return self._record("DELETED", res, current)
        updated = copy.deepcopy(current)
        updated["metadata"]["finalizers"] = finalizers
        if not finalizers:
            updated["metadata"].pop("finalizers")
        updated["metadata"].setdefault("deletionTimestamp", now_rfc3339())
        if res.plural == "namespaces":
            updated.setdefault("status", {})["phase"] = "Terminating"
        if updated == current:
            return copy.deepcopy(current)
        self.objects[key] = updated
        return self._record("MODIFIED", res, updated)

    async def create(self, res: Resource, obj: dict, namespace: str | None = None,
                     **kw: Any) -> dict:
        ns_name = namespace or (obj.get("metadata") or {}).get("namespace") or ""
        ns = self.objects.get(("namespaces", "", ns_name))
        if res.namespaced and ns is not None and ns["metadata"].get("deletionTimestamp"):
            raise StatusError(403, "Forbidden", "unable to create new content in namespace "
                              f"{ns_name} because it is being terminated",
                              {"causes": [{"reason": "NamespaceTerminating"}]})
        return await super().create(res, obj, namespace, **kw)

    async def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Any:
        """Only what controllers send raw: DELETE of a namespaced collection."""
        parts = path.strip("/").split("/")
        if method != "DELETE" or "namespaces" not in parts:
            raise NotImplementedError(f"{method} {path}")
        namespace, plural = parts[parts.index("namespaces") + 1], parts[-1]
        group = "" if parts[0] == "api" else parts[1]
        version = parts[1] if parts[0] == "api" else parts[2]
        res = Resource(group, version, plural, True)
        self.calls.append(("deletecollection", plural, namespace))
        self._check("deletecollection", res, None)
        for (p, ns, name) in list(self.objects):
            if p == plural and ns == namespace and (p, ns, name) in self.objects:
                await self.delete(res, name, namespace,
                                  propagation_policy=(body or {}).get("propagationPolicy"))
        return {"items": []}

    async def finish(self, res: Resource, name: str, namespace: str | None = None) -> None:
        """The grace period of a held object is over: remove it."""
        self.held.discard((res.plural, name))
        key = self._key(res, namespace, name)
        obj = self.objects.pop(key)
        self._record("DELETED", res, obj)

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    *, patch_type: str = "merge", subresource: str = "", **kw: Any) -> dict:
        current = self._existing(res, namespace, name)
        md_patch = dict((patch or {}).get("metadata") or {})
        want_rv = md_patch.pop("resourceVersion", None)
        if want_rv and want_rv != current["metadata"]["resourceVersion"]:
            raise _conflict(res.plural, name, "the object has been modified")
        refs = md_patch.get("ownerReferences")
        if patch_type == "strategic" and refs is not None:
            md_patch["ownerReferences"] = self._merged_refs(current, refs)
        patch = {**patch, "metadata": md_patch} if "metadata" in (patch or {}) else patch
        updated = await super().patch(res, name, patch, namespace, patch_type=patch_type,
                                      subresource=subresource, **kw)
        return self._maybe_remove(res, namespace, updated)

    @staticmethod
    def _merged_refs(current: dict[str, Any], refs: list[dict[str, Any]]) -> list:
        """Strategic merge by uid: a partial entry updates the existing one's fields."""
        existing = {r.get("uid"): r for r in current["metadata"].get("ownerReferences") or []}
        out = []
        for item in refs:
            if item.get("$patch") == "delete" or item.get("uid") not in existing:
                out.append(item)
            else:
                out.append({**existing[item["uid"]], **item})
        return out

    async def replace(self, res: Resource, obj: dict, *, subresource: str = "",
                      **kw: Any) -> dict:
        if subresource != "finalize":
            updated = await super().replace(res, obj, subresource=subresource, **kw)
            return self._maybe_remove(res, obj["metadata"].get("namespace"), updated)
        md = obj["metadata"]
        self.calls.append(("replace/finalize", res.plural, md["name"]))
        current = self._existing(res, None, md["name"])
        updated = copy.deepcopy(current)
        updated.setdefault("spec", {})["finalizers"] = list(
            (obj.get("spec") or {}).get("finalizers") or [])
        if not updated["spec"]["finalizers"]:
            updated["spec"].pop("finalizers")
        self.objects[self._key(res, None, md["name"])] = updated
        recorded = self._record("MODIFIED", res, updated)
        return self._maybe_remove(res, None, recorded)

    def _maybe_remove(self, res: Resource, namespace: str | None,
                      obj: dict[str, Any]) -> dict[str, Any]:
        md = obj["metadata"]
        pending_ns = res.plural == "namespaces" and (obj.get("spec") or {}).get("finalizers")
        if md.get("deletionTimestamp") and not md.get("finalizers") and not pending_ns \
                and (res.plural, md["name"]) not in self.held:
            key = self._key(res, namespace, md["name"])
            if key in self.objects:
                gone = self.objects.pop(key)
                self._record("DELETED", res, gone)
        return obj

"""An in-memory stand-in for `kubi.client.Client`, for controller unit tests.

It keeps objects per resource with one global resourceVersion, honours
generateName, resourceVersion preconditions (409 Conflict), the status
subresource, merge and strategic patches of the kind controllers send
(ownerReferences merged by uid, `$patch: delete`), and serves list+watch so
real Informers run against it. Tests can hold watch delivery, inject
failures per verb and resource, and read every request made.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.meta import generate_name, now_rfc3339
from kubi.client.client import Resource

Failure = Callable[[str, Resource, dict[str, Any] | None], StatusError | Exception | None]


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif key == "ownerReferences" and isinstance(value, list):
            result[key] = _merge_owner_refs(result.get(key) or [], value)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _merge_owner_refs(current: list[dict[str, Any]], patch: list[dict[str, Any]]) -> list:
    refs = [dict(r) for r in current]
    for item in patch:
        refs = [r for r in refs if r.get("uid") != item.get("uid")]
        if item.get("$patch") != "delete":
            refs.append(dict(item))
    return refs


class FakeAPI:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.history: list[tuple[int, str, str, dict[str, Any]]] = []
        self.calls: list[tuple[str, str, str]] = []
        self.failures: list[Failure] = []
        self._rv = itertools.count(1)
        self.rv = 0
        self._changed = asyncio.Event()
        self.watch_open = asyncio.Event()
        self.watch_open.set()

    # ---- test controls

    def fail(self, failure: Failure) -> None:
        self.failures.append(failure)

    def hold_watches(self) -> None:
        self.watch_open.clear()

    def release_watches(self) -> None:
        self.watch_open.set()

    def items(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (p, ns, _), o in sorted(self.objects.items())
                if p == plural and (namespace is None or ns == namespace)]

    def count(self, verb: str, plural: str) -> int:
        return sum(1 for v, p, _ in self.calls if v == verb and p == plural)

    # ---- plumbing

    def _check(self, verb: str, res: Resource, obj: dict[str, Any] | None) -> None:
        for failure in list(self.failures):
            err = failure(verb, res, obj)
            if err is not None:
                raise err

    def _record(self, kind: str, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv = next(self._rv)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, kind, res.plural, copy.deepcopy(obj)))
        self._changed.set()
        self._changed = asyncio.Event()
        return copy.deepcopy(obj)

    def _key(self, res: Resource, namespace: str | None, name: str) -> tuple[str, str, str]:
        return (res.plural, (namespace or "") if res.namespaced else "", name)

    def _existing(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.objects.get(self._key(res, namespace, name))
        if obj is None:
            raise StatusError(404, "NotFound", f'{res.plural} "{name}" not found')
        return obj

    # ---- the Client surface

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict:
        self.calls.append(("get", res.plural, name))
        self._check("get", res, None)
        return copy.deepcopy(self._existing(res, namespace, name))

    async def list(self, res: Resource, namespace: str | None = None, **_: Any) -> dict:
        self.calls.append(("list", res.plural, ""))
        items = [copy.deepcopy(o) for (p, ns, _), o in self.objects.items()
                 if p == res.plural and (namespace is None or ns == namespace)]
        return {"items": items, "metadata": {"resourceVersion": str(self.rv)}}

    async def create(self, res: Resource, obj: dict, namespace: str | None = None,
                     **_: Any) -> dict:
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        if res.namespaced:
            md["namespace"] = namespace or md.get("namespace") or "default"
        if not md.get("name") and md.get("generateName"):
            md["name"] = generate_name(md["generateName"])
        self.calls.append(("create", res.plural, md.get("name", "")))
        self._check("create", res, obj)
        key = self._key(res, md.get("namespace"), md["name"])
        if key in self.objects:
            raise StatusError(409, "AlreadyExists", f'{res.plural} "{md["name"]}" already exists')
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = now_rfc3339()
        if "spec" in obj and res.kind not in ("Pod", "Lease"):
            md["generation"] = 1
        self.objects[key] = obj
        return self._record("ADDED", res, obj)

    async def replace(self, res: Resource, obj: dict, *, subresource: str = "", **_: Any) -> dict:
        md = obj["metadata"]
        self.calls.append(("replace" + (f"/{subresource}" if subresource else ""), res.plural,
                           md["name"]))
        self._check("replace", res, obj)
        current = self._existing(res, md.get("namespace"), md["name"])
        if md.get("resourceVersion") and md["resourceVersion"] != \
                current["metadata"]["resourceVersion"]:
            raise StatusError(409, "Conflict", f'Operation cannot be fulfilled on {res.plural} '
                              f'"{md["name"]}": the object has been modified; please apply '
                              "your changes to the latest version and try again")
        updated = copy.deepcopy(current)
        if subresource == "status":
            updated["status"] = copy.deepcopy(obj.get("status"))
        else:
            for field, value in obj.items():
                if field not in ("metadata", "status"):
                    updated[field] = copy.deepcopy(value)
            for field in ("labels", "annotations", "ownerReferences"):
                if field in md:
                    updated["metadata"][field] = copy.deepcopy(md[field])
            if updated.get("spec") != current.get("spec") and "generation" in updated["metadata"]:
                updated["metadata"]["generation"] += 1
        self.objects[self._key(res, md.get("namespace"), md["name"])] = updated
        return self._record("MODIFIED", res, updated)

    async def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None,
                    *, patch_type: str = "merge", subresource: str = "", **_: Any) -> dict:
        self.calls.append(("patch", res.plural, name))
        self._check("patch", res, patch)
        current = self._existing(res, namespace, name)
        want_uid = (patch.get("metadata") or {}).get("uid")
        if want_uid and want_uid != current["metadata"]["uid"]:
            raise StatusError(409, "Conflict", "Precondition failed: UID mismatch")
        updated = _merge(current, patch)
        updated["metadata"]["uid"] = current["metadata"]["uid"]
        self.objects[self._key(res, namespace, name)] = updated
        return self._record("MODIFIED", res, updated)

    async def delete(self, res: Resource, name: str, namespace: str | None = None,
                     **_: Any) -> dict:
        self.calls.append(("delete", res.plural, name))
        self._check("delete", res, None)
        obj = self._existing(res, namespace, name)
        del self.objects[self._key(res, namespace, name)]
        return self._record("DELETED", res, obj)

    async def watch(self, res: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None,
                    **_: Any) -> AsyncIterator[tuple[str, dict]]:
        position = int(resource_version or 0)
        while True:
            await self.watch_open.wait()
            fresh = [(rv, kind, obj) for rv, kind, plural, obj in self.history
                     if rv > position and plural == res.plural
                     and (namespace is None or obj["metadata"].get("namespace") == namespace)]
            if fresh:
                for rv, kind, obj in fresh:
                    await self.watch_open.wait()
                    position = rv
                    yield kind, copy.deepcopy(obj)
                continue
            position = max(position, self.rv)  # nothing of ours up to here
            await self._changed.wait()

    async def close(self) -> None:
        return None

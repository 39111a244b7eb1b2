"""The generic REST storage: create, read, update, patch and delete of any
resource in the catalog, with upstream's semantics.

Every write runs the same pipeline, as upstream's generic registry does:
decode → namespace and name checks → defaults → prepare (server-owned fields)
→ validate → managedFields → compare-and-swap in the store → wait until the
watch cache has the new revision → answer with the cached object. Reads come
from the watch cache. Kind-specific behaviour is reached only through
`kubi.api.hooks` and the few allocations below (service IPs), so this module
stays the same for every kind.

Updates go through `update_with()`: it reads the current object, hands a copy
to a mutation function and retries on a concurrent change, unless the client
gave a resourceVersion precondition, in which case a change is a 409.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from kubi.api import catalog, hooks, meta
from kubi.api.catalog import ResourceType
from kubi.api.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    StatusError,
    forbidden,
    go_repr,
)
from kubi.apiserver import admission, decoding
from kubi.apiserver.cache import Entry, WatchCache
from kubi.store import KeyExistsError, KeyNotFoundError, RevisionConflictError

log = logging.getLogger(__name__)

# How often, and for how long, an update without a client precondition is
# retried on a race. Each round lets one of the racing writers win, so this
# bounds how many concurrent writers of one object all succeed (upstream retries
# until the request's own 60 s timeout).
_MAX_RETRIES = 1000
_RETRY_SECONDS = 60.0


def _attempts() -> Iterator[int]:
    deadline = time.monotonic() + _RETRY_SECONDS
    for attempt in range(_MAX_RETRIES):
        if attempt and time.monotonic() > deadline:
            return
        yield attempt


# How many names a create with generateName tries before AlreadyExists.
_NAME_GENERATION_ATTEMPTS = 8

# Namespaces that always exist and may not be deleted.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class WriteOptions:
    """What a write request asked for beyond its body."""

    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str = "Strict"  # Strict | Warn | Ignore
    user_agent: str = ""
    force: bool = False
    warnings: list[str] = field(default_factory=list)

    def manager(self) -> str:
        if self.field_manager:
            return self.field_manager
        return decoding.default_field_manager(self.user_agent)


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None  # Background | Foreground | Orphan
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False


def _status_subresource(rt: ResourceType) -> bool:
    return "status" in rt.subresources


class Registry:
    """Generic storage of every resource, on a store and its watch cache."""

    def __init__(self, store, cache: WatchCache, *,
                 disabled_admission: Iterable[str] = ()) -> None:
        self.store = store
        self.cache = cache
        self.admission = admission.Admission(self._service_account,
                                             disabled=disabled_admission)
        # Imported here: the allocator needs the registry's cache.
        from kubi.apiserver.allocators import ServiceAllocator

        self.services = ServiceAllocator(cache)

    # ----------------------------------------------------------------- reads

    def get(self, rt: ResourceType, namespace: str, name: str) -> Entry:
        entry = self.cache.resource(rt).get(namespace if rt.namespaced else "", name)
        if entry is None:
            raise NotFound(rt.plural, name, rt.group)
        return entry

    def find(self, rt: ResourceType, namespace: str, name: str) -> Entry | None:
        return self.cache.resource(rt).get(namespace if rt.namespaced else "", name)

    def _service_account(self, namespace: str, name: str) -> dict | None:
        rt = catalog.lookup("", "v1", "serviceaccounts")
        entry = self.cache.resource(rt).get(namespace, name) if rt is not None else None
        return entry.obj if entry is not None else None

    # ---------------------------------------------------------------- create

    async def create(
        self,
        rt: ResourceType,
        namespace: str,
        obj: dict,
        opts: WriteOptions,
        track: Callable[[dict | None, dict], None] | None = None,
    ) -> Entry:
        self._check_type_meta(rt, obj)
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise BadRequest("metadata must be an object")
        self._set_namespace(rt, namespace, md)
        generated = not md.get("name") and bool(md.get("generateName"))
        if generated:
            md["name"] = meta.generate_name(md["generateName"])
        if rt.namespaced:
            self._check_namespace_open(md.get("namespace", ""), rt, md.get("name", ""))
        hooks.apply_defaults(obj)
        for key in ("uid", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "selfLink"):
            md.pop(key, None)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = meta.now_rfc3339()
        if rt.has_generation:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        if _status_subresource(rt) and rt.kind not in ("Node", "Pod"):
            obj["status"] = {}
        hooks.prepare(obj, None)
        # What admission adds is owned by no field manager, as upstream records
        # the request's fields before admission runs.
        requested = orjson.loads(orjson.dumps(obj)) if (
            track is None and self.admission.mutates(rt)) else obj
        await self.admission.admit_create(rt, obj)
        if rt.kind == "Service" and rt.group == "":
            self.services.allocate(obj, dry_run=opts.dry_run)
        errors = hooks.validate(obj, None, "")
        if errors:
            if rt.kind == "Service":
                self.services.release(obj)
            raise Invalid(rt.kind, md.get("name", ""), errors, rt.group)
        if track is not None:
            track(None, obj)
        else:
            self._track_fields(rt, None, requested, opts, "Update", "")
            if requested is not obj:
                obj["metadata"].pop("managedFields", None)
                if "managedFields" in requested["metadata"]:
                    obj["metadata"]["managedFields"] = requested["metadata"]["managedFields"]
        if opts.dry_run:
            if rt.kind == "Service":
                self.services.release(obj)
            return Entry(obj, 0)
        # A name made from generateName that is taken already is made again, up
        # to eight attempts in all, as upstream's API server does since 1.31.
        attempts = _NAME_GENERATION_ATTEMPTS if generated else 1
        for attempt in range(attempts):
            key = rt.key(md.get("namespace", ""), md["name"])
            try:
                rev = await self.store.create(key, self._encode(key, obj))
                break
            except KeyExistsError:
                if attempt + 1 < attempts:
                    md["name"] = meta.generate_name(md["generateName"])
                    continue
                if rt.kind == "Service":
                    self.services.release(obj)
                raise AlreadyExists(rt.plural, md["name"], rt.group) from None
        return await self._settled(rt, md.get("namespace", ""), md["name"], rev)

    # ---------------------------------------------------------------- update

    async def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: dict,
        opts: WriteOptions,
        subresource: str = "",
    ) -> tuple[Entry, bool]:
        """PUT: replace the object (or its status). Returns (entry, created)."""
        self._check_type_meta(rt, body)
        md = body.setdefault("metadata", {})
        if md.get("name") and md["name"] != name:
            raise BadRequest(
                f"the name of the object ({md['name']}) does not match the name on the URL ({name})"
            )
        md["name"] = name
        self._set_namespace(rt, namespace, md)
        wanted_rv = md.get("resourceVersion") or None
        current = self.find(rt, namespace, name)
        if current is None:
            if _allow_create_on_update(rt) and not subresource:
                md.pop("resourceVersion", None)
                return await self.create(rt, namespace, body, opts), True
            raise NotFound(rt.plural, name, rt.group)

        def replace(_: dict) -> dict:
            return orjson.loads(orjson.dumps(body))

        entry = await self.update_with(
            rt, namespace, name, replace, opts, subresource=subresource, precondition_rv=wanted_rv
        )
        return entry, False

    async def update_with(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        mutate: Callable[[dict], dict],
        opts: WriteOptions,
        *,
        subresource: str = "",
        precondition_rv: str | None = None,
        operation: str = "Update",
        track: Callable[[dict | None, dict], None] | None = None,
    ) -> Entry:
        """Read-modify-write with retries; `mutate` gets a copy of the current object."""
        for _ in _attempts():
            current = self.get(rt, namespace, name)
            if precondition_rv is not None and precondition_rv != str(current.rv):
                raise Conflict(rt.plural, name, rt.group)
            new = mutate(current.copy())
            if not isinstance(new, dict):
                raise BadRequest("the request body must be an object")
            self._check_type_meta(rt, new)
            new_md = new.setdefault("metadata", {})
            if new_md.get("name", name) != name:
                raise BadRequest(
                    f"the name of the object ({new_md.get('name')}) does not match the name on "
                    f"the URL ({name})"
                )
            result = self._prepare_update(rt, current.obj, new, subresource, opts, operation, track)
            if result is None:
                return current  # no change: no write, no new resourceVersion
            if opts.dry_run:
                return Entry(result, current.rv)
            key = rt.key(namespace if rt.namespaced else "", name)
            if _deletion_complete(rt, result):
                # The last finalizer is gone from an object being deleted: remove it.
                try:
                    rev, _ = await self.store.delete(key, expected_mod_revision=current.rv)
                except RevisionConflictError as err:
                    await self._catch_up(err)
                    continue
                await self.cache.wait_for(rev)
                return Entry(result, rev)
            try:
                rev = await self.store.update(key, self._encode(key, result),
                                             expected_mod_revision=current.rv)
            except RevisionConflictError as err:
                if precondition_rv is not None:
                    raise Conflict(rt.plural, name, rt.group) from None
                await self._catch_up(err)
                continue
            except KeyNotFoundError:
                raise NotFound(rt.plural, name, rt.group) from None
            return await self._settled(rt, namespace, name, rev)
        raise Conflict(rt.plural, name, rt.group)

    async def _catch_up(self, err: RevisionConflictError) -> None:
        """After losing a compare-and-swap, wait until the cache holds the version
        that won, so the next attempt starts from it rather than failing again
        on the same stale copy (concurrent writers without a resourceVersion
        must all succeed in turn, as upstream's guaranteed update makes them)."""
        if err.current is not None:
            try:
                await self.cache.wait_for(err.current.mod_revision)
            except TimeoutError:
                pass

    def _prepare_update(
        self,
        rt: ResourceType,
        old: dict,
        new: dict,
        subresource: str,
        opts: WriteOptions,
        operation: str,
        track: Callable[[dict | None, dict], None] | None,
    ) -> dict | None:
        old_md = old["metadata"]
        new_md = new["metadata"]
        if rt.namespaced:
            new_md["namespace"] = old_md.get("namespace", "")
        # Server-owned metadata is never taken from the client.
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "generation", "selfLink"):
            if key in old_md:
                new_md[key] = old_md[key]
            else:
                new_md.pop(key, None)
        new_md.pop("resourceVersion", None)
        if subresource == "status":
            # A status write keeps the stored spec (and whatever else is not
            # metadata or status); per kind, some metadata is kept too.
            for key in list(new):
                if key not in ("apiVersion", "kind", "metadata", "status"):
                    del new[key]
            for key, value in old.items():
                if key not in ("metadata", "status"):
                    new[key] = value
            for key in _STATUS_KEEPS_META.get(rt.kind, ()):
                if key in old_md:
                    new_md[key] = old_md[key]
                else:
                    new_md.pop(key, None)
        elif _status_subresource(rt) and subresource == "":
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        hooks.apply_defaults(new)
        if subresource == "finalize":
            from kubi.api.kinds.core import prepare_namespace_finalize

            prepare_namespace_finalize(new, old)
        else:
            hooks.prepare(new, old)
        if rt.has_generation and subresource in ("", "scale"):
            if _spec_changed(rt, old, new):
                new_md["generation"] = old_md.get("generation", 1) + 1
        if rt.kind == "Service" and rt.group == "" and subresource == "":
            self.services.keep_on_update(new, old)
        # A binding only sets what the binding rules allow; it is not a pod update.
        errors = hooks.validate(new, old, subresource) if subresource != "binding" else []
        if errors:
            raise Invalid(rt.kind, new_md.get("name", ""), errors, rt.group)
        if old_md.get("deletionTimestamp"):
            _check_finalizers_only_shrink(rt, old, new)
        if track is not None:
            track(old, new)
        elif subresource != "binding":
            # Upstream binds through storage directly: the pod's managedFields
            # stay as they were (nobody is recorded owning nodeName or the
            # PodScheduled condition).
            self._track_fields(rt, old, new, opts, operation, subresource)
        if _same(old, new):
            return None
        return new

    # ----------------------------------------------------------------- patch

    async def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes,
        opts: WriteOptions,
        subresource: str = "",
    ) -> tuple[Entry, bool]:
        from kubi.apiserver import patching

        if content_type == "application/apply-patch+yaml":
            return await patching.server_side_apply(
                self, rt, namespace, name, body, opts, subresource
            )
        patch = patching.parse_patch(content_type, body)
        precondition = patching.patch_resource_version(patch)

        touched = patching.touched_fields(content_type, patch)
        within = patching.touched_subfields(content_type, patch)

        unspent = [patch]

        def apply(current: dict) -> dict:
            # The parsed patch serves the first attempt; a retry after a lost
            # race parses the body again, as applying consumes the patch.
            own = unspent.pop() if unspent else patching.parse_patch(content_type, body)
            result = patching.apply_patch(rt, content_type, current, own, own_patch=True)
            patching.check_patched(rt, result, opts.field_validation, opts.warnings, touched,
                                   within)
            return result

        entry = await self.update_with(
            rt, namespace, name, apply, opts, subresource=subresource, precondition_rv=precondition
        )
        return entry, False

    # ---------------------------------------------------------------- delete

    async def delete(
        self, rt: ResourceType, namespace: str, name: str, options: DeleteOptions
    ) -> tuple[Entry, bool]:
        """Delete or start deleting. Returns (last state, removed now)."""
        for _ in _attempts():
            current = self.get(rt, namespace, name)
            obj = current.obj
            md = obj["metadata"]
            if options.precondition_uid and options.precondition_uid != md.get("uid"):
                raise Conflict(
                    rt.plural, name, rt.group,
                    f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                    f"UID in object meta: {md.get('uid')}",
                )
            if options.precondition_rv and options.precondition_rv != str(current.rv):
                raise Conflict(
                    rt.plural, name, rt.group,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{options.precondition_rv}, ResourceVersion in object meta: {current.rv}",
                )
            if rt.kind == "Namespace" and rt.group == "" and name in SYSTEM_NAMESPACES:
                raise Forbidden(
                    f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    {"name": name, "kind": "namespaces"},
                )
            new = self._deletion_state(rt, current, options)
            key = rt.key(namespace if rt.namespaced else "", name)
            if new is None:
                if options.dry_run:
                    return current, True
                try:
                    rev, _ = await self.store.delete(key, expected_mod_revision=current.rv)
                except RevisionConflictError as err:
                    await self._catch_up(err)
                    continue
                except KeyNotFoundError:
                    raise NotFound(rt.plural, name, rt.group) from None
                await self.cache.wait_for(rev)
                if rt.kind == "Service" and rt.group == "":
                    self.services.release(obj)
                gone = orjson.loads(current.json)
                gone["metadata"]["resourceVersion"] = str(rev)
                return Entry(gone, rev), True
            if _same(obj, new):
                return current, False
            if options.dry_run:
                return Entry(new, current.rv), False
            try:
                rev = await self.store.update(key, self._encode(key, new),
                                             expected_mod_revision=current.rv)
            except RevisionConflictError as err:
                await self._catch_up(err)
                continue
            return await self._settled(rt, namespace, name, rev), False
        raise Conflict(rt.plural, name, rt.group)

    def _deletion_state(
        self, rt: ResourceType, current: Entry, options: DeleteOptions
    ) -> dict | None:
        """The object as it should be stored while deletion is pending, or None
        when it is to be removed now."""
        obj = current.obj
        md = obj["metadata"]
        grace = self._grace_period(rt, obj, options)
        finalizers = list(md.get("finalizers") or [])
        policy = options.propagation
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy in ("Background", "Foreground"):
            finalizers = [f for f in finalizers if f != "orphan"]
        if policy in ("Background", "Orphan"):
            finalizers = [f for f in finalizers if f != "foregroundDeletion"]
        is_namespace = rt.kind == "Namespace" and rt.group == ""
        pending_ns = is_namespace and (obj.get("spec", {}).get("finalizers") or [])
        if not finalizers and not grace and not pending_ns:
            return None
        new = current.copy()
        new_md = new["metadata"]
        new_md.pop("resourceVersion", None)
        if finalizers:
            new_md["finalizers"] = finalizers
        if not new_md.get("deletionTimestamp"):
            new_md["deletionTimestamp"] = meta.format_time(_now() + (grace or 0))
            new_md["deletionGracePeriodSeconds"] = grace or 0
            if rt.has_generation and new_md.get("generation"):
                new_md["generation"] += 1
        elif grace is not None and grace < (md.get("deletionGracePeriodSeconds") or 0):
            # A second delete may only shorten the grace period.
            new_md["deletionTimestamp"] = meta.format_time(_now() + grace)
            new_md["deletionGracePeriodSeconds"] = grace
        if is_namespace:
            new.setdefault("status", {})["phase"] = "Terminating"
        return new

    @staticmethod
    def _grace_period(rt: ResourceType, obj: dict, options: DeleteOptions) -> int | None:
        """Graceful deletion applies to pods that run on a node, as upstream."""
        if not (rt.kind == "Pod" and rt.group == ""):
            return None
        if not obj.get("spec", {}).get("nodeName"):
            return None
        if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return None
        if options.grace_period is not None:
            grace = options.grace_period
        else:
            grace = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        if grace is None or grace <= 0:
            return None
        return int(grace)

    async def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        entries: list[Entry],
        options: DeleteOptions,
    ) -> list[Entry]:
        deleted = []
        for entry in entries:
            try:
                gone, _ = await self.delete(rt, entry.namespace, entry.name, options)
                deleted.append(gone)
            except NotFound:
                continue
        return deleted

    # --------------------------------------------------------------- helpers

    def _check_type_meta(self, rt: ResourceType, obj: dict) -> None:
        api_version = obj.get("apiVersion") or rt.api_version
        kind = obj.get("kind") or rt.kind
        if (api_version, kind) != (rt.api_version, rt.kind):
            raise BadRequest(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"] = api_version
        obj["kind"] = kind

    @staticmethod
    def _set_namespace(rt: ResourceType, namespace: str, md: dict) -> None:
        if not rt.namespaced:
            md.pop("namespace", None)
            return
        given = md.get("namespace")
        if given and namespace and given != namespace:
            raise BadRequest(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        md["namespace"] = namespace or given or ""

    def _check_namespace_open(self, namespace: str, rt: ResourceType, name: str) -> None:
        """NamespaceLifecycle admission: no new content in a missing or ending namespace."""
        if not namespace:
            return
        ns = self.cache.resource(catalog.lookup("", "v1", "namespaces")).get("", namespace)
        if ns is None:
            raise NotFound("namespaces", namespace)
        if ns.obj["metadata"].get("deletionTimestamp") and rt.kind != "Event":
            details: dict = {"name": name, "kind": rt.plural}
            if rt.group:
                details["group"] = rt.group
            details["causes"] = [{"reason": "NamespaceTerminating",
                                  "message": f"namespace {namespace} is being terminated",
                                  "field": "metadata.namespace"}]
            raise Forbidden(
                f'{rt.group_resource} "{name}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
                details,
            )

    def _track_fields(
        self,
        rt: ResourceType,
        old: dict | None,
        new: dict,
        opts: WriteOptions,
        operation: str,
        subresource: str,
    ) -> None:
        from kubi.apiserver import patching

        patching.track_update(rt, old, new, opts, subresource)

    def _encode(self, key: str, obj: dict) -> bytes:
        """The stored form of `obj`, which is handed to the watch cache as its
        decoded form: the registry never touches `obj` again once written."""
        raw = _encode(obj)
        self.cache.expect_write(key, raw, obj)
        return raw

    async def _settled(self, rt: ResourceType, namespace: str, name: str, rev: int) -> Entry:
        """The stored entry once the cache has applied `rev`."""
        await self.cache.wait_for(rev)
        entry = self.find(rt, namespace, name)
        if entry is None or entry.rv < rev:
            # Deleted or changed again in between: answer with what we wrote.
            raise StatusError(500, "InternalError", "object changed while it was being written")
        return entry


# ObjectMeta collections that upstream's encoding drops when empty (omitempty).
_OMIT_EMPTY_META = ("labels", "annotations", "finalizers", "ownerReferences", "managedFields")


# Metadata a status write may not change, beyond the server-owned fields
# (upstream's status strategies: Deployments keep their labels, pods their
# owner references).
_STATUS_KEEPS_META: dict[str, tuple[str, ...]] = {
    "Deployment": ("labels",),
    "Pod": ("ownerReferences",),
}


def _encode(obj: dict) -> bytes:
    md = obj["metadata"]
    for key in _OMIT_EMPTY_META:
        if key in md and not md[key]:
            del md[key]
    rv = md.pop("resourceVersion", None)
    raw = orjson.dumps(obj)
    if rv is not None:
        md["resourceVersion"] = rv
    return raw


def _now() -> float:
    return time.time()


def _same(old: dict, new: dict) -> bool:
    """True when an update changes nothing that is stored. Field ownership counts:
    an apply that only takes ownership is a change, while a write that changes no
    value leaves managedFields (and their times) as they were."""
    a_md = dict(old.get("metadata", {}))
    b_md = dict(new.get("metadata", {}))
    a_md.pop("resourceVersion", None)
    b_md.pop("resourceVersion", None)
    if a_md != b_md:
        return False
    return {k: v for k, v in old.items() if k != "metadata"} == {
        k: v for k, v in new.items() if k != "metadata"}


def _spec_changed(rt: ResourceType, old: dict, new: dict) -> bool:
    if old.get("spec") != new.get("spec"):
        return True
    if rt.kind == "Deployment":
        # Rollback and change-cause annotations also count for Deployments.
        return old["metadata"].get("annotations") != new["metadata"].get("annotations")
    return False


def _allow_create_on_update(rt: ResourceType) -> bool:
    return rt.kind in ("Endpoints", "Event", "Lease", "EndpointSlice") or (
        rt.kind == "LimitRange"
    )


def _deletion_complete(rt: ResourceType, obj: dict) -> bool:
    """An object being deleted, past its grace period, whose last finalizer (for
    a Namespace, also the last spec finalizer) is gone is removed from the store."""
    md = obj["metadata"]
    if not md.get("deletionTimestamp") or md.get("finalizers"):
        return False
    if md.get("deletionGracePeriodSeconds"):
        return False  # a pod in its grace period stays until its node deletes it
    if rt.kind == "Namespace" and rt.group == "":
        return not obj.get("spec", {}).get("finalizers")
    return True


def _check_finalizers_only_shrink(rt: ResourceType, old: dict, new: dict) -> None:
    before = set(old["metadata"].get("finalizers") or [])
    added = [f for f in new["metadata"].get("finalizers") or [] if f not in before]
    if added:
        detail = (
            "no new finalizers can be added if the object is being deleted, found new "
            f"finalizers {go_repr(added)}"
        )
        raise Invalid(
            rt.kind,
            new["metadata"].get("name", ""),
            [forbidden("metadata.finalizers", detail)],
            rt.group,
        )

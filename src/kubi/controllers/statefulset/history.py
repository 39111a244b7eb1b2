"""A StatefulSet's ControllerRevisions: listing, adopting, creating, renumbering, deleting.

Reads come from the ControllerRevision informer; writes go to the API server.
`current_and_update` is upstream's getStatefulSetRevisions: the update
revision is the set's template as it is now — the newest revision if that
already records it, an older equal revision renumbered to the top (a
rollback), or a new revision. Creating one whose name is taken by a revision
with other data counts a collision and tries the next name; the caller
stores the count in `status.collisionCount`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.selectors import LabelSelector
from kubi.client.client import Client, Resource
from kubi.controllers.informers import IndexedInformer
from kubi.controllers.ownership import adopt_patch, controller_of
from kubi.controllers.statefulset.identity import (
    controller_ref,
    labels_of,
    name_of,
    uid_of,
)
from kubi.controllers.statefulset.revisions import (
    equal_revision,
    new_revision,
    next_revision_number,
    renamed,
    revision_number,
    sort_revisions,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CONTROLLER_REVISIONS = Resource("apps", "v1", "controllerrevisions", True, "ControllerRevision")
UPDATE_RETRIES = 5
MAX_COLLISIONS = 100


class ControllerHistory:
    def __init__(self, client: Client, informer: IndexedInformer) -> None:
        self.client = client
        self.informer = informer

    def revisions_of(self, sts: Obj, selector: LabelSelector) -> list[Obj]:
        """Revisions the selector matches that the set controls or nobody does, sorted."""
        namespace = (sts.get("metadata") or {}).get("namespace", "")
        found = []
        for rev in self.informer.in_namespace(namespace):
            if not selector.matches(labels_of(rev)):
                continue
            ref = controller_of(rev)
            if ref is None or ref.get("uid") == uid_of(sts):
                found.append(rev)
        return sort_revisions(found)

    async def adopt_orphans(self, sts: Obj, revisions: list[Obj],
                            recheck: Callable[[], Awaitable[Any]]) -> list[Obj]:
        """Take ownership of the revisions no controller owns; returns the list, updated."""
        orphans = [i for i, rev in enumerate(revisions) if controller_of(rev) is None]
        if not orphans:
            return revisions
        await recheck()
        adopted = list(revisions)
        for i in orphans:
            rev = revisions[i]
            adopted[i] = await self.client.patch(
                CONTROLLER_REVISIONS, name_of(rev), adopt_patch(controller_ref(sts), uid_of(rev)),
                rev["metadata"].get("namespace"), patch_type="strategic")
        return adopted

    async def create(self, sts: Obj, revision: Obj, collision_count: int) -> tuple[Obj, int]:
        """Create `revision`, renaming it past name collisions; returns it and the count."""
        namespace = revision["metadata"]["namespace"]
        for _ in range(MAX_COLLISIONS):
            candidate = renamed(revision, sts, collision_count)
            try:
                return (await self.client.create(CONTROLLER_REVISIONS, candidate, namespace),
                        collision_count)
            except StatusError as err:
                if err.reason != "AlreadyExists":
                    raise
            existing = await self.client.get(CONTROLLER_REVISIONS, name_of(candidate), namespace)
            ref = controller_of(existing)
            if equal_revision(existing, candidate) and ref is not None \
                    and ref.get("uid") == uid_of(sts):
                return existing, collision_count
            collision_count += 1
        raise RuntimeError(f"no free ControllerRevision name for {namespace}/{name_of(sts)} "
                           f"after {MAX_COLLISIONS} collisions")

    async def renumber(self, revision: Obj, number: int) -> Obj:
        """Give an existing revision a new revision number, retrying on conflicts."""
        current = copy.deepcopy(revision)
        for attempt in range(UPDATE_RETRIES):
            if revision_number(current) == number:
                return current
            body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                    **current, "revision": number}
            try:
                return await self.client.replace(CONTROLLER_REVISIONS, body)
            except StatusError as err:
                if err.code != 409 or attempt == UPDATE_RETRIES - 1:
                    raise
            current = await self.client.get(CONTROLLER_REVISIONS, name_of(current),
                                            current["metadata"].get("namespace"))
        return current

    async def delete(self, revision: Obj) -> None:
        try:
            await self.client.delete(CONTROLLER_REVISIONS, name_of(revision),
                                     revision["metadata"].get("namespace"))
        except StatusError as err:
            if err.code != 404:
                raise

    async def current_and_update(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """(current revision, update revision, collision count) for `sts`.

        `revisions` must be sorted. The current revision is the one the status
        names; a set without one (its first sync) starts at the update revision.
        """
        collision_count = int((sts.get("status") or {}).get("collisionCount") or 0)
        wanted = new_revision(sts, next_revision_number(revisions), collision_count)
        equal = [rev for rev in revisions if equal_revision(rev, wanted)]
        if equal and equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            log.info("StatefulSet %s/%s returns to revision %s", sts["metadata"].get("namespace"),
                     name_of(sts), name_of(equal[-1]))
            update = await self.renumber(equal[-1], revision_number(wanted))
        else:
            update, collision_count = await self.create(sts, wanted, collision_count)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((rev for rev in revisions if name_of(rev) == current_name), update)
        return current, update, collision_count


"""Controller ownership of pods: who owns what, adoption and release by labels.

A controller owns the pods whose controller ownerReference carries its UID.
On every sync it claims pods as upstream's PodControllerRefManager does:
it keeps owned pods its selector still matches, releases owned pods that no
longer match (a patch deleting its ownerReference), adopts orphans that match
(a patch adding a controller ownerReference) and ignores everything else.
`claim_decision` is the pure rule; `claim_pods` applies it with the patches.
Before the first adoption of a sync the owner is re-read from the API server,
so a controller being deleted never adopts (upstream's #42639).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.selectors import LabelSelector

Obj = dict[str, Any]


class Claim(enum.Enum):
    KEEP = "keep"        # ours and still selected
    RELEASE = "release"  # ours but no longer selected
    ADOPT = "adopt"      # an orphan we select
    IGNORE = "ignore"    # someone else's, or not ours to touch now


def controller_of(obj: Obj) -> dict[str, Any] | None:
    """The ownerReference marked `controller: true`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Obj, *, api_version: str, kind: str) -> dict[str, Any]:
    md = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": md["name"],
        "uid": md["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def claim_decision(obj: Obj, *, owner: Obj, selector: LabelSelector) -> Claim:
    owner_md = owner["metadata"]
    md = obj.get("metadata") or {}
    owner_deleting = bool(owner_md.get("deletionTimestamp"))
    ref = controller_of(obj)
    if ref is not None:
        if ref.get("uid") != owner_md.get("uid"):
            return Claim.IGNORE
        if selector.matches(md.get("labels")):
            return Claim.KEEP
        # A controller being deleted leaves its pods to the garbage collector.
        return Claim.IGNORE if owner_deleting else Claim.RELEASE
    if owner_deleting or not selector.matches(md.get("labels")):
        return Claim.IGNORE
    if md.get("deletionTimestamp"):
        return Claim.IGNORE
    if owner_md.get("namespace") and owner_md.get("namespace") != md.get("namespace"):
        return Claim.IGNORE
    return Claim.ADOPT


def adopt_patch(controller_ref: dict[str, Any], obj_uid: str) -> dict[str, Any]:
    """Strategic merge patch adding the controller reference; the UID guards the target."""
    return {"metadata": {"ownerReferences": [controller_ref], "uid": obj_uid}}


def release_patch(owner_uid: str, obj_uid: str) -> dict[str, Any]:
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                         "uid": obj_uid}}


PatchFn = Callable[[Obj, dict[str, Any]], Awaitable[Any]]


class OwnerChanged(Exception):
    """The owner was deleted or replaced since it was read from the cache."""


async def claim_pods(pods: Iterable[Obj], *, owner: Obj, controller_ref: dict[str, Any],
                     selector: LabelSelector, recheck_owner: Callable[[], Awaitable[Obj]],
                     patch: PatchFn) -> tuple[list[Obj], list[Exception]]:
    """Claim `pods` for `owner`: the pods it now owns, and the errors met on the way."""
    claimed: list[Obj] = []
    errors: list[Exception] = []
    to_release: list[Obj] = []
    to_adopt: list[Obj] = []
    for pod in pods:
        decision = claim_decision(pod, owner=owner, selector=selector)
        if decision is Claim.KEEP:
            claimed.append(pod)
        elif decision is Claim.RELEASE:
            to_release.append(pod)
        elif decision is Claim.ADOPT:
            to_adopt.append(pod)

    async def release(pod: Obj) -> None:
        try:
            await patch(pod, release_patch(owner["metadata"]["uid"], pod["metadata"]["uid"]))
        except StatusError as err:
            # Gone, or refusing the patch because it is being deleted: released either way.
            if err.code not in (404, 422):
                errors.append(err)

    async def adopt(pod: Obj) -> None:
        try:
            await patch(pod, adopt_patch(controller_ref, pod["metadata"]["uid"]))
        except StatusError as err:
            if err.code != 404:
                errors.append(err)
            return
        claimed.append(pod)

    if to_release:
        await asyncio.gather(*(release(pod) for pod in to_release))
    if to_adopt:
        blocker = await _adoption_blocker(owner, recheck_owner)
        if blocker is None:
            await asyncio.gather(*(adopt(pod) for pod in to_adopt))
        else:
            errors.append(blocker)
    return claimed, errors


async def _adoption_blocker(owner: Obj,
                            recheck_owner: Callable[[], Awaitable[Obj]]) -> Exception | None:
    """Why the owner may not adopt right now (a fresh read says it is gone or going)."""
    md = owner["metadata"]
    try:
        fresh = (await recheck_owner())["metadata"]
    except Exception as exc:  # noqa: BLE001 - reported like any other claim error
        return exc
    if fresh.get("uid") != md["uid"]:
        return OwnerChanged(f"original {md.get('namespace')}/{md['name']} is gone: "
                            f"got uid {fresh.get('uid')}, wanted {md['uid']}")
    if fresh.get("deletionTimestamp"):
        return OwnerChanged(f"{md.get('namespace')}/{md['name']} has just been deleted at "
                            f"{fresh['deletionTimestamp']}")
    return None


# ---- informer indexes shared by controllers that own pods

CONTROLLER_UID_INDEX = "controller-uid"
ORPHANS_INDEX = "orphans-by-namespace"


def controller_uid_index(obj: Obj) -> tuple[str, ...]:
    """Index value: the UID of the object's controller, if it has one."""
    ref = controller_of(obj)
    return (ref["uid"],) if ref is not None and ref.get("uid") else ()


def orphan_index(obj: Obj) -> tuple[str, ...]:
    """Index value: the namespace of an object without a controller."""
    if controller_of(obj) is not None:
        return ()
    return ((obj.get("metadata") or {}).get("namespace", ""),)

"""Who owns a StatefulSet's claims: persistentVolumeClaimRetentionPolicy as ownerReferences.

The garbage collector carries out the policy through the claims' owners;
this module decides what they should be (see `updated_owner_refs`). A claim
whose reference to the set or pod carries another UID belongs to an earlier
incarnation and is left alone; a claim controlled by someone else keeps
only that controller. Claims are read through a name → claim lookup (the
informer's cache), so every decision here is pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubi.controllers.statefulset.identity import (
    API_VERSION,
    KIND,
    claim_name,
    claim_templates,
    claims_for_ordinal,
    in_ordinal_range,
    name_of,
    ordinal,
    spec,
    uid_of,
)

Obj = dict[str, Any]
ClaimLookup = Callable[[str], Obj | None]

RETAIN = "Retain"
DELETE = "Delete"
_POD = ("v1", "Pod")
_SET = (API_VERSION, KIND)


def policy(sts: Obj) -> tuple[str, str]:
    """(whenScaled, whenDeleted), Retain for whatever is unset."""
    raw = spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return raw.get("whenScaled") or RETAIN, raw.get("whenDeleted") or RETAIN


def _refs(claim: Obj) -> list[Obj]:
    return list((claim.get("metadata") or {}).get("ownerReferences") or [])


def _matches_ref(ref: Obj, obj: Obj, gvk: tuple[str, str]) -> bool:
    return (ref.get("apiVersion"), ref.get("kind")) == gvk and ref.get("name") == name_of(obj)


def has_owner_ref(claim: Obj, owner: Obj) -> bool:
    uid = uid_of(owner)
    return any(ref.get("uid") == uid for ref in _refs(claim))


def has_stale_owner_ref(claim: Obj, obj: Obj, gvk: tuple[str, str]) -> bool:
    """The claim names `obj` as owner, but with the UID of an earlier object of that name."""
    for ref in _refs(claim):
        if _matches_ref(ref, obj, gvk):
            return ref.get("uid") != uid_of(obj)
    return False


def has_unexpected_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """Under a deleting policy, something other than the set or pod controls the claim."""
    if policy(sts) == (RETAIN, RETAIN):
        return False
    for ref in _refs(claim):
        if _matches_ref(ref, sts, _SET):
            if ref.get("uid") != uid_of(sts):
                return True
            continue
        if _matches_ref(ref, pod, _POD):
            if ref.get("uid") != uid_of(pod):
                return True
            continue
        if ref.get("controller"):
            return True
    return False


def _has_non_controller_owner(claim: Obj, sts: Obj, pod: Obj) -> bool:
    return any(ref.get("uid") in (uid_of(sts), uid_of(pod)) and not ref.get("controller")
               for ref in _refs(claim))


def claim_owner_up_to_date(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """Whether the claim's ownerReferences already say what the policy asks."""
    if has_stale_owner_ref(claim, sts, _SET) or has_stale_owner_ref(claim, pod, _POD):
        return True  # an earlier set or pod manages it: hands off
    if has_unexpected_controller(claim, sts, pod):
        # Our references must go; with none left there is nothing to change.
        return not (has_owner_ref(claim, sts) or has_owner_ref(claim, pod))
    if _has_non_controller_owner(claim, sts, pod):
        return False
    scaled, deleted = policy(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    owned_by_set, owned_by_pod = has_owner_ref(claim, sts), has_owner_ref(claim, pod)
    if scaled == DELETE and deleted == DELETE:
        return owned_by_set != scaled_down and owned_by_pod == scaled_down
    if scaled == DELETE:
        return not owned_by_set and owned_by_pod == scaled_down
    if deleted == DELETE:
        return owned_by_set and not owned_by_pod
    return not owned_by_set and not owned_by_pod


def _controller_ref_to(owner: Obj, gvk: tuple[str, str]) -> Obj:
    return {"apiVersion": gvk[0], "kind": gvk[1], "name": name_of(owner), "uid": uid_of(owner),
            "controller": True, "blockOwnerDeletion": True}


def updated_owner_refs(claim: Obj, sts: Obj, pod: Obj) -> list[Obj]:
    """The claim's ownerReferences rewritten to follow the policy.

        whenScaled  whenDeleted  owner of an ordinal's claim
        Retain      Retain       nobody
        Retain      Delete       the set
        Delete      Retain       the pod, once its ordinal is scaled away
        Delete      Delete       the set while in range, the pod once scaled away
    """
    unexpected = has_unexpected_controller(claim, sts, pod)
    refs = [ref for ref in _refs(claim)
            if not (_matches_ref(ref, sts, _SET) or _matches_ref(ref, pod, _POD))]
    if unexpected:
        return refs
    scaled, deleted = policy(sts)
    scaled_down = not in_ordinal_range(pod, sts)
    wanted: list[tuple[Obj, tuple[str, str]]] = []
    if scaled == DELETE and scaled_down:
        wanted.append((pod, _POD))
    if deleted == DELETE and not (scaled == DELETE and scaled_down):
        wanted.append((sts, _SET))
    for owner, gvk in wanted:
        if not any(ref.get("uid") == uid_of(owner) for ref in refs):
            refs.append(_controller_ref_to(owner, gvk))
    return refs


def claims_match_policy(sts: Obj, pod: Obj, lookup: ClaimLookup) -> bool:
    """Every existing claim of the pod has the owners the policy asks for."""
    for template in claim_templates(sts):
        claim = lookup(claim_name(sts, template, ordinal(pod)))
        if claim is not None and not claim_owner_up_to_date(claim, sts, pod):
            return False
    return True


def pod_claim_is_stale(sts: Obj, pod: Obj, lookup: ClaimLookup) -> bool:
    """A claim still owned by an earlier pod of this ordinal blocks the new pod.

    Only under whenScaled=Delete: that claim is about to be garbage collected,
    and a pod created now would mount it just before it goes.
    """
    if policy(sts)[0] == RETAIN:
        return False
    for claim in claims_for_ordinal(sts, ordinal(pod)).values():
        existing = lookup(name_of(claim))
        if existing is not None and has_stale_owner_ref(existing, pod, _POD):
            return True
    return False

"""Tracking field ownership on ordinary writes (create, update, patch).

A write is recorded as upstream's field manager records it: compare the live
object with the new one, give every added or changed field to the writer (an
`Update` entry for its manager, apiVersion and subresource), take those fields
away from every other entry, and drop removed fields from all entries. Fields
that the strategy resets (status on the main resource, everything but status
on /status) and server-owned metadata never become owned. A create compares
against the kind's zero value (see `skeleton`). An object that has no
managedFields and is updated stays without them, as upstream only starts
tracking at creation or at the first apply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kubi.api.managed.entries import (
    UPDATE,
    Entry,
    Ident,
    ManagedFieldsError,
    cap_update_managers,
    decode,
    encode,
    ident,
)
from kubi.api.managed.fieldset import Tree, difference, recursive_difference, union, with_path
from kubi.api.managed.skeleton import empty_object
from kubi.api.managed.typed import PathError
from kubi.api.managed.walk import diff

# Fields no manager ever owns (the object's identity and server bookkeeping).
STRIP: Tree = {
    "f:apiVersion": {},
    "f:kind": {},
    "f:metadata": {
        ".": {},
        "f:name": {},
        "f:namespace": {},
        "f:creationTimestamp": {},
        "f:selfLink": {},
        "f:uid": {},
        "f:clusterName": {},
        "f:generation": {},
        "f:managedFields": {},
        "f:resourceVersion": {},
    },
}

Filter = Callable[[Tree], Tree]


def _only_status(tree: Tree) -> Tree:
    status = tree.get("f:status")
    return {"f:status": status} if status is not None else {}


_STATUS: Tree = {"f:status": {}}


def _without_status(tree: Tree) -> Tree:
    return recursive_difference(tree, _STATUS) if "f:status" in tree else tree


def reset_filter(
    subresource: str, reset_fields: Iterable[Sequence[str]] | None = None
) -> Filter | None:
    """What a write through `subresource` may own: all but the reset fields.

    `reset_fields` are field-name paths (`("status",)`); by default the main
    resource resets `status` and `/status` resets everything else.
    """
    if reset_fields is not None:
        excluded: Tree = {}
        for path in reset_fields:
            excluded = with_path(excluded, ["f:" + name for name in path])
        if not excluded:
            return None
        return lambda tree: recursive_difference(tree, excluded)
    if subresource == "status":
        return _only_status
    if subresource == "":
        return _without_status
    return None


def strip_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """A shallow view of `obj` without metadata.managedFields."""
    md = obj.get("metadata")
    if type(md) is dict and "managedFields" in md:
        return {**obj, "metadata": {k: v for k, v in md.items() if k != "managedFields"}}
    return obj


def record_update(
    managed: dict[Ident, Entry],
    live: dict[str, Any],
    new: dict[str, Any],
    *,
    manager: str,
    api_version: str,
    subresource: str,
    now: str,
    node: Any,
    keep: Filter | None,
) -> dict[Ident, Entry]:
    """The entries after `manager` changed `live` into `new` (views without managedFields)."""
    key = ident(manager or "unknown", UPDATE, api_version, subresource)
    changed, removed = diff(live, new, node)
    if keep is not None:
        changed = keep(changed)
        removed = keep(removed)
    out: dict[Ident, Entry] = {}
    for other, entry in managed.items():
        fields = difference(difference(entry.fields, changed), removed)
        if fields:
            out[other] = (
                entry
                if fields is entry.fields
                else Entry(entry.api_version, entry.applied, fields, entry.time)
            )
    own = difference(changed, STRIP)
    if own:
        previous = out.get(key)
        wire = None
        if previous is not None:
            own = union(own, previous.fields)
        before = managed.get(key)
        if before is not None and before.wire is not None and own == before.fields:
            # The usual repeated write (a kubelet's next status): the same fields,
            # so the encoded form already stored is still right.
            own, wire = before.fields, before.wire
        # Scale writes keep the entry's old time, as upstream's scale handler does.
        when = now if subresource != "scale" else (previous.time if previous else None)
        out[key] = Entry(api_version, False, own, when, wire)
    cap_update_managers(out)
    return out


def _is_reset(raw: Any) -> bool:
    if type(raw) is not list:
        return False
    if not raw:
        return True
    return len(raw) == 1 and type(raw[0]) is dict and not any(raw[0].values())


def _decode_or_empty(raw: Any, *, stored: bool = False) -> dict[Ident, Entry]:
    try:
        return decode(raw, stored=stored)
    except ManagedFieldsError:
        return {}


def _metadata(obj: dict[str, Any] | None) -> dict[str, Any]:
    md = obj.get("metadata") if obj is not None else None
    return md if type(md) is dict else {}


def update_managed_fields(
    live: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    operation: str = UPDATE,
    subresource: str = "",
    api_version: str,
    now: str,
    node: Any,
    reset_fields: Iterable[Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """The new `metadata.managedFields` after a non-apply write; [] means none.

    `live` is None for a create. Entries a client sent in `new` are honoured
    (that is how clients edit managedFields; `[]` clears them), except through a
    subresource, where the live object's entries are used.
    """
    if operation != UPDATE:
        raise ValueError("apply writes go through server_side_apply")
    live_raw = _metadata(live).get("managedFields")
    if subresource:
        managed = _decode_or_empty(live_raw, stored=True)
    else:
        new_raw = _metadata(new).get("managedFields")
        if _is_reset(new_raw):
            managed = {}
        elif new_raw is not None and new_raw == live_raw:
            # Sent back as read (the usual read-modify-write): the stored list.
            managed = _decode_or_empty(live_raw, stored=True)
        else:
            managed = (_decode_or_empty(new_raw)
                       or _decode_or_empty(live_raw, stored=True))
    if not managed and live is not None and _metadata(live).get("uid"):
        return []
    before = (
        strip_managed_fields(live)
        if live is not None
        else empty_object(str(new.get("apiVersion") or ""), str(new.get("kind") or ""))
    )
    try:
        result = record_update(
            managed,
            before,
            strip_managed_fields(new),
            manager=manager,
            api_version=api_version,
            subresource=subresource,
            now=now,
            node=node,
            keep=reset_filter(subresource, reset_fields),
        )
    except PathError:
        # Upstream stores such an object without managedFields rather than fail.
        return []
    return encode(result)

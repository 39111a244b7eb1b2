"""Strategic merge patch: JSON merge patch that knows how each list merges.

The schema says, per field, whether a list of objects merges element by
element on a merge key (`containers` by `name`, `ports` by `containerPort`),
whether a list of scalars merges as a set (`finalizers`), and whether a map
keeps only the keys the patch lists (`$retainKeys` on `strategy`, `volumes`).
Everything else behaves as in a JSON merge patch: maps merge, `null` deletes,
other lists are replaced. The patch may carry directives: `$patch: replace`
or `$patch: delete` on a map or a list element, `$setElementOrder/<list>`
(the order the result should have), `$deleteFromPrimitiveList/<list>` and
`$retainKeys`. Semantics, ordering and error statuses follow upstream's
implementation; with no schema (`node` None) the patch is a plain merge patch.
Creating patches (two- and three-way, as kubectl apply does) lives in
`_smp_diff`, merging in `_smp_merge`; this module is the public face of both.
"""

from __future__ import annotations

from typing import Any

from kubi.api.patch import copy_json, mergepatch
from kubi.api.patch._smp_common import BAD_JSON_DOC, StrategicPatchError, bad_request
from kubi.api.patch._smp_diff import (
    create_three_way_strategic_patch,
    create_two_way_strategic_patch,
)
from kubi.api.patch._smp_merge import APPLYING, merge_map
from kubi.api.schema import Node

__all__ = [
    "StrategicPatchError",
    "apply_strategic_merge_patch",
    "create_three_way_strategic_patch",
    "create_two_way_strategic_patch",
]


def apply_strategic_merge_patch(doc: Any, patch: Any, node: Node | None, *,
                                in_place: bool = False, own_patch: bool = False) -> Any:
    """`doc` with `patch` applied; `node` is the schema of the document's kind.
    With `in_place`, `doc` is the caller's own copy and may be changed; with
    `own_patch`, so may `patch` (applying consumes its directives)."""
    if not isinstance(patch, dict):
        raise bad_request(BAD_JSON_DOC)
    if node is None:
        return mergepatch.apply_merge_patch(doc, patch, in_place=in_place)
    if doc is not None and not isinstance(doc, dict):
        raise bad_request(BAD_JSON_DOC)
    target = (doc if in_place else copy_json(doc)) or {}
    return merge_map(target, patch if own_patch else copy_json(patch), node, APPLYING)

"""ControllerRevisions of a StatefulSet, as pure functions.

A revision records the set's pod template as the patch that restores it,
`{"spec": {"template": {..., "$patch": "replace"}}}` (what `kubectl rollout
undo` applies), named `<set>-<hash>`: FNV-1 over the patch's compact,
key-sorted JSON and the collisionCount, spelled in an alphabet without
vowels, and repeated in the `controller.kubernetes.io/hash` label. Numbers
grow by one per new template; going back to an older template renumbers
its revision instead of duplicating it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from typing import Any

from kubi.api.meta import parse_time
from kubi.controllers.ownership import new_controller_ref
from kubi.controllers.statefulset.identity import API_VERSION, KIND, name_of, spec

Obj = dict[str, Any]

HASH_LABEL = "controller.kubernetes.io/hash"
MAX_PREFIX = 223
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv1_32(data: bytes) -> int:
    """32-bit FNV-1: multiply, then xor, for every byte."""
    value = _FNV32_OFFSET
    for byte in data:
        value = (value * _FNV32_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def safe_encode(text: str) -> str:
    """Map each character into an alphabet without vowels, so no word is ever spelled."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def canonical_json(data: Any) -> bytes:
    """Compact JSON with sorted keys and HTML characters escaped, as Go marshals a map."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text.encode()


def revision_data(sts: Obj) -> Obj:
    """The patch that restores `sts`'s pod template."""
    template = copy.deepcopy(spec(sts).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_hash(data: Obj, collision_count: int) -> str:
    digest = fnv1_32(canonical_json(data) + str(collision_count).encode())
    return safe_encode(str(digest))


def revision_name(prefix: str, hash_: str) -> str:
    return f"{prefix[:MAX_PREFIX]}-{hash_}"


def revision_number(revision: Obj) -> int:
    return int(revision.get("revision") or 0)


def new_revision(sts: Obj, number: int, collision_count: int) -> Obj:
    """The ControllerRevision recording `sts`'s current template, not yet created."""
    md = sts.get("metadata") or {}
    data = revision_data(sts)
    hash_ = revision_hash(data, collision_count)
    template_labels = ((spec(sts).get("template") or {}).get("metadata") or {}).get("labels")
    meta: Obj = {
        "name": revision_name(name_of(sts), hash_),
        "namespace": md.get("namespace", ""),
        "labels": {**(template_labels or {}), HASH_LABEL: hash_},
        "ownerReferences": [new_controller_ref(sts, api_version=API_VERSION, kind=KIND)],
    }
    if md.get("annotations"):
        meta["annotations"] = dict(md["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
            "data": data, "revision": number}


def renamed(revision: Obj, sts: Obj, collision_count: int) -> Obj:
    """`revision` under the name (and hash label) a given collision count yields."""
    hash_ = revision_hash(revision.get("data") or {}, collision_count)
    revision = copy.deepcopy(revision)
    revision["metadata"]["name"] = revision_name(name_of(sts), hash_)
    revision["metadata"].setdefault("labels", {})[HASH_LABEL] = hash_
    return revision


def equal_revision(a: Obj | None, b: Obj | None) -> bool:
    if a is None or b is None:
        return a is b
    return canonical_json(a.get("data")) == canonical_json(b.get("data"))


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """By revision number; ties by creation time, then name."""
    def key(rev: Obj) -> tuple[int, float, str]:
        created = parse_time((rev.get("metadata") or {}).get("creationTimestamp"))
        return revision_number(rev), created or 0.0, name_of(rev)

    return sorted(revisions, key=key)


def next_revision_number(ordered: Sequence[Obj]) -> int:
    return revision_number(ordered[-1]) + 1 if ordered else 1


def apply_revision(sts: Obj, revision: Obj) -> Obj:
    """A copy of `sts` with the pod template `revision` recorded."""
    restored = copy.deepcopy(sts)
    template = ((revision.get("data") or {}).get("spec") or {}).get("template")
    if isinstance(template, dict):
        restored.setdefault("spec", {})["template"] = {
            k: copy.deepcopy(v) for k, v in template.items() if k != "$patch"}
    return restored


def revisions_to_truncate(ordered: Sequence[Obj], *, live: set[str], limit: int) -> list[Obj]:
    """The oldest revisions that are not live, beyond `limit` of them.

    Live revisions are the set's current and update revisions and every
    revision a pod still carries. With limit 2 and non-live revisions
    1, 2, 3, 5 (4 and 6 live), revisions 1 and 2 go.
    """
    history = [rev for rev in ordered if name_of(rev) not in live]
    if limit < 0 or len(history) <= limit:
        return []
    return history[:len(history) - limit]

"""A Deployment's ReplicaSets: which is new, which are old, and what they carry.

The new ReplicaSet is the (oldest) one whose pod template equals the
Deployment's once the pod-template-hash label is set aside; every other one
is old. Revisions live in the `deployment.kubernetes.io/revision` annotation:
the new ReplicaSet always holds the highest, so rolling back to an old
template (`kubectl rollout undo`) reuses that ReplicaSet and moves its
revision to the top, remembering the ones it had in `revision-history`.
`new_replica_set` builds the ReplicaSet a Deployment asks for:
`<deployment>-<hash>` with the hash in its name, labels, selector and template.
Pure functions on dicts; the caller writes the results.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence
from typing import Any

from kubi.api.meta import parse_time
from kubi.controllers.deployment.hashing import compute_hash
from kubi.controllers.deployment.util import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    POD_TEMPLATE_HASH,
    REVISION,
    REVISION_HISTORY,
    Obj,
    annotations_of,
    max_surge,
    replicas,
    spec,
    status,
)

# A history annotation stays below this many characters; the oldest entries go first.
MAX_REVISION_HISTORY_CHARS = 2000

# Annotations a Deployment never passes on to its ReplicaSets: the ones the
# controller computes per ReplicaSet, and kubectl's record of the last apply.
ANNOTATIONS_NOT_COPIED = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
})


def _metadata(obj: Obj) -> dict[str, Any]:
    return obj.setdefault("metadata", {})


def _annotations_for_update(obj: Obj) -> dict[str, str]:
    md = _metadata(obj)
    if md.get("annotations") is None:
        md["annotations"] = {}
    result: dict[str, str] = md["annotations"]
    return result


# ---- revisions


def revision(obj: Obj | None) -> int | None:
    """The revision annotation: 0 when absent, None when it is not an integer."""
    value = annotations_of(obj).get(REVISION)
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return None


def max_revision(rss: Iterable[Obj | None]) -> int:
    return max((revision(rs) or 0 for rs in rss if rs is not None), default=0)


def set_deployment_revision(d: Obj, value: str) -> bool:
    """Record `value` as the Deployment's revision; True when that changed it."""
    current = _annotations_for_update(d)
    if current.get(REVISION) == value:
        return False
    current[REVISION] = value
    return True


# ---- orderings


def creation_key(rs: Obj) -> tuple[float, str]:
    md = rs.get("metadata") or {}
    return (parse_time(md.get("creationTimestamp")) or 0.0, md.get("name", ""))


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """Oldest first; same second broken by name."""
    return sorted(rss, key=creation_key)


def _by_revision_cmp(a: Obj, b: Obj) -> int:
    ra, rb = revision(a), revision(b)
    if ra is None or rb is None or ra == rb:
        ka, kb = creation_key(a), creation_key(b)
        return -1 if ka < kb else 1 if ka > kb else 0
    return -1 if ra < rb else 1


def by_revision(rss: Iterable[Obj]) -> list[Obj]:
    """Lowest revision first; unreadable or equal revisions fall back to age."""
    return sorted(rss, key=functools.cmp_to_key(_by_revision_cmp))


def by_size_older(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; among equals the oldest first (the order for scaling down)."""
    return sorted(rss, key=lambda rs: (-replicas(rs), creation_key(rs)))


def by_size_newer(rss: Iterable[Obj]) -> list[Obj]:
    """Largest first; among equals the newest first (the order for scaling up)."""
    newest_first = sorted(rss, key=creation_key, reverse=True)
    return sorted(newest_first, key=lambda rs: -replicas(rs))


# ---- telling the new ReplicaSet from the old ones


def _semantic(value: Any) -> Any:
    """Drop unset and empty values: upstream's semantic equality treats them alike."""
    if isinstance(value, dict):
        cleaned = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def equal_ignore_hash(template1: Obj | None, template2: Obj | None) -> bool:
    """Equal pod templates once the pod-template-hash label is left out."""
    def without_hash(template: Obj | None) -> Any:
        template = copy.deepcopy(template or {})
        labels = (template.get("metadata") or {}).get("labels")
        if labels:
            labels.pop(POD_TEMPLATE_HASH, None)
        return _semantic(template)

    return bool(without_hash(template1) == without_hash(template2))


def find_new_replica_set(d: Obj, rss: Iterable[Obj]) -> Obj | None:
    """The ReplicaSet running the Deployment's current template (the oldest, if several)."""
    template = spec(d).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash(spec(rs).get("template"), template):
            return rs
    return None


def find_old_replica_sets(d: Obj, rss: Sequence[Obj]) -> tuple[list[Obj], list[Obj]]:
    """(old ReplicaSets with pods wanted, every old ReplicaSet)."""
    new_rs = find_new_replica_set(d, rss)
    new_uid = (new_rs or {}).get("metadata", {}).get("uid") if new_rs else None
    old = [rs for rs in rss if new_rs is None or rs["metadata"].get("uid") != new_uid]
    return [rs for rs in old if replicas(rs) != 0], old


# ---- annotations on ReplicaSets


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """Give the ReplicaSet the Deployment's annotations (change-cause and the like)."""
    target = _annotations_for_update(rs)
    changed = False
    for key, value in annotations_of(d).items():
        # The revision is the ReplicaSet's own: the Deployment's may be stale.
        if key in ANNOTATIONS_NOT_COPIED or target.get(key) == value:
            continue
        target[key] = value
        changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    target = _annotations_for_update(rs)
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if target.get(key) != value:
            target[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    current = annotations_of(rs)
    return (current.get(DESIRED_REPLICAS) != str(desired)
            or current.get(MAX_REPLICAS) != str(maximum))


def _append_history(history: str, previous: str, limit: int) -> str | None:
    """`history` with `previous` appended, dropping the oldest entries to fit `limit`."""
    entries = history.split(",")
    if not entries[0]:
        return previous
    total = len(history) + len(previous) + 1
    start = 0
    while total > limit and start < len(entries):
        total -= len(entries[start]) + 1
        start += 1
    if total > limit:
        return None
    return ",".join([*entries[start:], previous])


def set_new_replica_set_annotations(d: Obj, rs: Obj, new_revision: str, *, exists: bool,
                                    history_limit: int = MAX_REVISION_HISTORY_CHARS) -> bool:
    """Bring the new ReplicaSet's annotations up to date; True when any changed.

    Its revision only ever grows. When an existing ReplicaSet moves up (a
    rollback to its template), the revision it had joins its history. A
    ReplicaSet about to be created also gets the replica annotations.
    """
    changed = copy_deployment_annotations(d, rs)
    target = _annotations_for_update(rs)
    had_revision = REVISION in target
    old_value = target.get(REVISION, "")
    try:
        old_revision = int(old_value) if old_value else 0
        new_revision_int = int(new_revision)
    except ValueError:
        return False
    if old_revision < new_revision_int:
        target[REVISION] = new_revision
        changed = True
        if had_revision:
            history = _append_history(target.get(REVISION_HISTORY, ""), old_value,
                                      history_limit)
            if history is not None:
                target[REVISION_HISTORY] = history
    if not exists and set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d)):
        changed = True
    return changed


# ---- the ReplicaSet a Deployment asks for


def with_label(labels: dict[str, str] | None, key: str, value: str) -> dict[str, str]:
    return {**(labels or {}), key: value}


def selector_with_label(selector: Obj | None, key: str, value: str) -> Obj:
    result = copy.deepcopy(selector or {})
    result["matchLabels"] = with_label(result.get("matchLabels"), key, value)
    return result


def new_replica_set(d: Obj, controller_ref: dict[str, Any]) -> Obj:
    """The ReplicaSet for the Deployment's current template, with 0 replicas for now."""
    md = d["metadata"]
    template = copy.deepcopy(spec(d).get("template") or {})
    pod_hash = compute_hash(template, status(d).get("collisionCount"))
    template_md = template.setdefault("metadata", {})
    template_md["labels"] = with_label(template_md.get("labels"), POD_TEMPLATE_HASH, pod_hash)
    rs_spec: dict[str, Any] = {"replicas": 0}
    if spec(d).get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec(d)["minReadySeconds"]
    rs_spec["selector"] = selector_with_label(spec(d).get("selector"), POD_TEMPLATE_HASH,
                                              pod_hash)
    rs_spec["template"] = template
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{md['name']}-{pod_hash}",
            "namespace": md.get("namespace", ""),
            "labels": dict(template_md["labels"]),
            "ownerReferences": [dict(controller_ref)],
        },
        "spec": rs_spec,
    }

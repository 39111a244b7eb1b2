"""The garbage collector's dependency graph and its decisions, on plain data.

The graph keeps only ownership metadata per observed object (identity,
ownerReferences, finalizers, deletionTimestamp, resourceVersion), and maps
each owner uid to its dependents even before the owner is observed.
`DependencyGraph.observe`/`.forget` apply informer events and return the work
they imply as `(queue, uid)` pairs (attempt-to-delete, attempt-to-orphan).
`decide` is upstream's attemptToDeleteItem as a pure rule over owners already
classified solid, dangling or waiting for their dependents' deletion.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"

ATTEMPT_TO_DELETE = "delete"
ATTEMPT_TO_ORPHAN = "orphan"

Work = tuple[str, str]


@dataclass(frozen=True)
class Identity:
    """Where an object lives: enough to GET, DELETE or PATCH it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.uid})"


@dataclass
class GraphNode:
    identity: Identity
    owners: list[Obj]
    finalizers: tuple[str, ...]
    being_deleted: bool
    resource_version: str

    @property
    def deleting_dependents(self) -> bool:
        """Being deleted in the foreground: waiting for its dependents to go first."""
        return self.being_deleted and FOREGROUND_FINALIZER in self.finalizers

    @property
    def orphaning(self) -> bool:
        return self.being_deleted and ORPHAN_FINALIZER in self.finalizers


def node_from_metadata(api_version: str, kind: str, metadata: Obj) -> GraphNode:
    return GraphNode(
        identity=Identity(api_version, kind, metadata.get("namespace") or "",
                          metadata.get("name", ""), metadata.get("uid", "")),
        owners=[dict(ref) for ref in metadata.get("ownerReferences") or ()],
        finalizers=tuple(metadata.get("finalizers") or ()),
        being_deleted=bool(metadata.get("deletionTimestamp")),
        resource_version=str(metadata.get("resourceVersion", "")),
    )


def _blocks(ref: Obj) -> bool:
    return bool(ref.get("blockOwnerDeletion"))


def ref_matches(ref: Obj, owner: Identity, dependent_namespace: str) -> bool:
    """Whether an ownerReference names exactly this observed owner."""
    if (ref.get("uid") != owner.uid or ref.get("name") != owner.name
            or ref.get("kind") != owner.kind or ref.get("apiVersion") != owner.api_version):
        return False
    # A namespaced owner can only own objects of its own namespace.
    return not owner.namespace or owner.namespace == dependent_namespace


class DependencyGraph:
    def __init__(self) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self.dependents: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, uid: str) -> GraphNode | None:
        return self.nodes.get(uid)

    def dependents_of(self, uid: str) -> list[GraphNode]:
        return [self.nodes[d] for d in self.dependents.get(uid, ()) if d in self.nodes]

    def blocking_dependents(self, uid: str) -> list[GraphNode]:
        """Dependents whose reference to `uid` has blockOwnerDeletion set."""
        return [dep for dep in self.dependents_of(uid)
                if any(ref.get("uid") == uid and _blocks(ref) for ref in dep.owners)]

    def owner_is_solid(self, ref: Obj, dependent: GraphNode) -> bool:
        """True when the graph alone shows the owner present and not going away."""
        owner = self.nodes.get(ref.get("uid", ""))
        return (owner is not None and not owner.being_deleted
                and ref_matches(ref, owner.identity, dependent.identity.namespace))

    # ---- events

    def observe(self, node: GraphNode) -> list[Work]:
        """An object was added or updated; returns the work that follows."""
        uid = node.identity.uid
        old = self.nodes.get(uid)
        self.nodes[uid] = node
        work: list[Work] = []
        old_owners = {ref.get("uid", ""): ref for ref in (old.owners if old else ())}
        new_owners = {ref.get("uid", ""): ref for ref in node.owners}
        for owner_uid, ref in old_owners.items():
            new_ref = new_owners.get(owner_uid)
            if new_ref is None:
                self._unlink(owner_uid, uid)
            # An owner waiting on this dependent may now be free to go.
            if _blocks(ref) and (new_ref is None or not _blocks(new_ref)) \
                    and owner_uid in self.nodes:
                work.append((ATTEMPT_TO_DELETE, owner_uid))
        added = [ref for owner_uid, ref in new_owners.items() if owner_uid not in old_owners]
        for ref in added:
            self.dependents.setdefault(ref.get("uid", ""), set()).add(uid)
        if any(not self.owner_is_solid(ref, node) for ref in added):
            work.append((ATTEMPT_TO_DELETE, uid))
        if node.orphaning and not (old is not None and old.orphaning):
            work.append((ATTEMPT_TO_ORPHAN, uid))
        elif node.deleting_dependents and not (old is not None and old.deleting_dependents):
            work.extend((ATTEMPT_TO_DELETE, dep) for dep in self.dependents.get(uid, ()))
            work.append((ATTEMPT_TO_DELETE, uid))
        return work

    def forget(self, uid: str) -> list[Work]:
        """An object was deleted; returns the work that follows."""
        node = self.nodes.pop(uid, None)
        if node is None:
            return []
        for ref in node.owners:
            self._unlink(ref.get("uid", ""), uid)
        work: list[Work] = [(ATTEMPT_TO_DELETE, dep) for dep in self.dependents.get(uid, ())]
        for ref in node.owners:
            owner = self.nodes.get(ref.get("uid", ""))
            if owner is not None and owner.deleting_dependents:
                work.append((ATTEMPT_TO_DELETE, owner.identity.uid))
        if not self.dependents.get(uid):
            self.dependents.pop(uid, None)
        return work

    def _unlink(self, owner_uid: str, dependent_uid: str) -> None:
        deps = self.dependents.get(owner_uid)
        if deps is None:
            return
        deps.discard(dependent_uid)
        if not deps:
            del self.dependents[owner_uid]


class AbsentOwnerCache:
    """Owners verified gone, so ten thousand orphans cost one lookup, not ten thousand.

    Keys are (uid, namespace): a uid never comes back, so an entry never goes
    stale; the cache is bounded and forgets the least recently used first.
    """

    def __init__(self, size: int = 500) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], None] = OrderedDict()

    def add(self, uid: str, namespace: str = "") -> None:
        key = (uid, namespace)
        self._entries[key] = None
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def has(self, uid: str, namespace: str = "") -> bool:
        key = (uid, namespace)
        if key in self._entries:
            self._entries.move_to_end(key)
            return True
        return False


# ---- deciding what to do with one object


class OwnerState(enum.Enum):
    SOLID = "solid"        # exists, and is not waiting for its dependents
    DANGLING = "dangling"  # gone, or replaced by an object with another uid
    WAITING = "waiting"    # being deleted in the foreground


def owner_state(owner_metadata: Obj | None, ref: Obj) -> OwnerState:
    """Classify one reference from the owner's current metadata (None: not found)."""
    if owner_metadata is None or owner_metadata.get("uid") != ref.get("uid"):
        return OwnerState.DANGLING
    if owner_metadata.get("deletionTimestamp") and \
            FOREGROUND_FINALIZER in (owner_metadata.get("finalizers") or ()):
        return OwnerState.WAITING
    return OwnerState.SOLID


class Action(enum.Enum):
    NONE = "none"
    REMOVE_REFS = "remove-refs"  # patch the dangling and waiting references away
    DELETE = "delete"


@dataclass(frozen=True)
class Decision:
    action: Action
    policy: str | None = None
    remove_uids: tuple[str, ...] = ()
    unblock_first: bool = False  # make our own references non-blocking before deleting


def decide(node: GraphNode, states: Iterable[tuple[Obj, OwnerState]], *,
           has_dependents: bool, a_dependent_is_deleting_dependents: bool) -> Decision:
    """What the collector does with an object whose owners were classified."""
    solid: list[str] = []
    dangling: list[str] = []
    waiting: list[str] = []
    for ref, state in states:
        {OwnerState.SOLID: solid, OwnerState.DANGLING: dangling,
         OwnerState.WAITING: waiting}[state].append(ref.get("uid", ""))
    if not solid and not dangling and not waiting:
        return Decision(Action.NONE)
    if solid:
        if not dangling and not waiting:
            return Decision(Action.NONE)
        # A reference to an owner waiting on us would hold that owner forever.
        return Decision(Action.REMOVE_REFS, remove_uids=tuple(dangling + waiting))
    if waiting and has_dependents:
        # Our owner waits for us, and we have dependents of our own: go in the
        # foreground too, so the whole chain empties from the leaves up. A
        # dependent that is itself deleting in the foreground may be waiting
        # on us (a cycle), so stop blocking our owners first.
        return Decision(Action.DELETE, policy="Foreground",
                        unblock_first=a_dependent_is_deleting_dependents)
    if ORPHAN_FINALIZER in node.finalizers:
        policy = "Orphan"
    elif FOREGROUND_FINALIZER in node.finalizers:
        policy = "Foreground"
    else:
        policy = "Background"
    return Decision(Action.DELETE, policy=policy)


# ---- patches


def remove_owner_refs_patch(dependent_uid: str, owner_uids: Iterable[str]) -> Obj:
    """Strategic merge patch deleting references by uid; the dependent's uid guards the target."""
    return {"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": uid} for uid in owner_uids],
        "uid": dependent_uid}}


def unblock_owner_refs_patch(node: GraphNode) -> Obj | None:
    refs = [{"uid": ref["uid"], "blockOwnerDeletion": False}
            for ref in node.owners if _blocks(ref) and ref.get("uid")]
    if not refs:
        return None
    return {"metadata": {"ownerReferences": refs, "uid": node.identity.uid}}


def without_finalizer(finalizers: Iterable[str], target: str) -> list[str] | None:
    """The finalizers minus `target`, or None when `target` is not among them."""
    current = list(finalizers)
    if target not in current:
        return None
    return [f for f in current if f != target]


@dataclass
class Classification:
    """The owner states gathered for one decision, with what still needs a look."""

    states: list[tuple[Obj, OwnerState]] = field(default_factory=list)
    unobserved_solid: bool = False  # an owner exists that the informers have not shown yet

"""The status a StatefulSet reports, as pure functions.

`count_pods` tallies the pods a sync sees: `replicas` (created), `readyReplicas`
(Running and Ready), `availableReplicas` (ready for minReadySeconds), and among
pods not terminating, `currentReplicas` and `updatedReplicas` by their
`controller-revision-hash` label. `complete_rolling_update` promotes the
update revision to current once every replica runs it and is ready.
`needs_write` is upstream's test for a status worth sending; `to_wire` spells
the status as Go serializes it (zero counts omitted, `replicas`,
`availableReplicas` and `collisionCount` always present).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from kubi.controllers.statefulset.identity import (
    is_created,
    is_running_and_available,
    is_running_and_ready,
    is_terminating,
    pod_revision,
    replicas,
    strategy_type,
)

Obj = dict[str, Any]


@dataclass(frozen=True)
class SetStatus:
    observed_generation: int = 0
    replicas: int = 0
    ready_replicas: int = 0
    available_replicas: int = 0
    current_replicas: int = 0
    updated_replicas: int = 0
    current_revision: str = ""
    update_revision: str = ""
    collision_count: int = 0

    @classmethod
    def of(cls, sts: Obj) -> SetStatus:
        raw = sts.get("status") or {}
        return cls(
            observed_generation=int(raw.get("observedGeneration") or 0),
            replicas=int(raw.get("replicas") or 0),
            ready_replicas=int(raw.get("readyReplicas") or 0),
            available_replicas=int(raw.get("availableReplicas") or 0),
            current_replicas=int(raw.get("currentReplicas") or 0),
            updated_replicas=int(raw.get("updatedReplicas") or 0),
            current_revision=str(raw.get("currentRevision") or ""),
            update_revision=str(raw.get("updateRevision") or ""),
            collision_count=int(raw.get("collisionCount") or 0),
        )

    def to_wire(self) -> Obj:
        wire: Obj = {}
        if self.observed_generation:
            wire["observedGeneration"] = self.observed_generation
        wire["replicas"] = self.replicas
        for field, value in (("readyReplicas", self.ready_replicas),
                             ("currentReplicas", self.current_replicas),
                             ("updatedReplicas", self.updated_replicas),
                             ("currentRevision", self.current_revision),
                             ("updateRevision", self.update_revision)):
            if value:
                wire[field] = value
        wire["collisionCount"] = self.collision_count
        wire["availableReplicas"] = self.available_replicas
        return wire


def count_pods(base: SetStatus, pods: Iterable[Obj], *, min_ready: int, now: float) -> SetStatus:
    """`base` with its five counts recomputed from `pods`."""
    created = ready = available = current = updated = 0
    for pod in pods:
        if not is_created(pod):
            continue
        created += 1
        if is_running_and_ready(pod):
            ready += 1
            if is_running_and_available(pod, min_ready, now):
                available += 1
        if not is_terminating(pod):
            revision = pod_revision(pod)
            current += revision == base.current_revision
            updated += revision == base.update_revision
    return replace(base, replicas=created, ready_replicas=ready, available_replicas=available,
                   current_replicas=current, updated_replicas=updated)


def complete_rolling_update(sts: Obj, status: SetStatus) -> SetStatus:
    """Once all `spec.replicas` pods run the update revision and are ready, it is current."""
    want = replicas(sts)
    if (strategy_type(sts) == "RollingUpdate" and status.updated_replicas == want
            and status.ready_replicas == want and status.replicas == want):
        return replace(status, current_replicas=status.updated_replicas,
                       current_revision=status.update_revision)
    return status


def needs_write(sts: Obj, status: SetStatus) -> bool:
    """A newer generation observed, or any count or revision differs from the stored status."""
    old = SetStatus.of(sts)
    return (status.observed_generation > old.observed_generation
            or replace(status, observed_generation=0, collision_count=0)
            != replace(old, observed_generation=0, collision_count=0))

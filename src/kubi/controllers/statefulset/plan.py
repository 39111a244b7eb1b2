"""What one sync of a StatefulSet should do, decided on plain data.

`plan_sync` sorts the pods into replicas (ordinals in range; missing ones are
filled with the pods to create) and condemned pods (beyond the range), then
lays out upstream's phases: fix the replicas, lowest ordinal first; bring
condemned pods' claim owners in line; delete condemned pods, highest first;
delete outdated pods for the rolling update. Under OrderedReady a phase stops
at the first pod it must wait for and no later phase runs; under Parallel
every step runs. `status` is what the sync reports if nothing fails.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kubi.controllers.statefulset.identity import (
    allows_burst,
    claim_name,
    claim_templates,
    end_ordinal,
    identity_matches,
    is_created,
    is_finished,
    is_pending,
    is_running_and_available,
    is_running_and_ready,
    is_terminating,
    is_unavailable,
    max_unavailable,
    min_ready_seconds,
    name_of,
    new_versioned_pod,
    ordinal,
    partition,
    pod_revision,
    rolling_update,
    start_ordinal,
    storage_matches,
    strategy_type,
)
from kubi.controllers.statefulset.retention import (
    ClaimLookup,
    claims_match_policy,
    pod_claim_is_stale,
)
from kubi.controllers.statefulset.revisions import apply_revision
from kubi.controllers.statefulset.status import SetStatus, count_pods

Obj = dict[str, Any]


class Action(enum.Enum):
    CREATE = "create"            # the pod's claims, then the pod
    CREATE_CLAIMS = "claims"     # a pending pod's missing claims, and their owners
    UPDATE = "update"            # restore identity, storage and claim owners
    DELETE = "delete"            # a finished replica, a condemned pod, an outdated pod
    FIX_CLAIM_OWNERS = "owners"  # a condemned pod's claims follow the retention policy


@dataclass(frozen=True)
class Step:
    pod: Obj
    actions: tuple[Action, ...]


@dataclass
class Phase:
    name: str
    steps: list[Step] = field(default_factory=list)


@dataclass
class Plan:
    status: SetStatus
    monotonic: bool
    update_set: Obj
    phases: list[Phase] = field(default_factory=list)


def _replica_step(sts: Obj, update_set: Obj, pod: Obj, *, monotonic: bool,
                  lookup: ClaimLookup, now: float) -> tuple[tuple[Action, ...], bool]:
    """What to do to one replica, and whether OrderedReady must wait on it."""
    if is_finished(pod):
        # A finished pod is deleted; its replacement comes once it is gone.
        return (() if is_terminating(pod) else (Action.DELETE,)), True
    if not is_created(pod):
        if pod_claim_is_stale(sts, pod, lookup):
            return (), True
        return (Action.CREATE,), monotonic
    actions: list[Action] = []
    if is_pending(pod) and _claims_need_work(sts, pod, lookup):
        actions.append(Action.CREATE_CLAIMS)
    if monotonic and (is_terminating(pod) or not is_running_and_ready(pod)
                      or not is_running_and_available(pod, min_ready_seconds(sts), now)):
        return tuple(actions), True
    if not (identity_matches(sts, pod) and storage_matches(sts, pod)
            and claims_match_policy(update_set, pod, lookup)):
        actions.append(Action.UPDATE)
    return tuple(actions), False


def _claims_need_work(sts: Obj, pod: Obj, lookup: ClaimLookup) -> bool:
    """A claim of the pod is missing or going away, or has the wrong owners."""
    for template in claim_templates(sts):
        claim = lookup(claim_name(sts, template, ordinal(pod)))
        if claim is None or (claim.get("metadata") or {}).get("deletionTimestamp"):
            return True
    return not claims_match_policy(sts, pod, lookup)


def _condemned_step(sts: Obj, pod: Obj, first_unavailable: Obj | None, *,
                    monotonic: bool, now: float) -> tuple[tuple[Action, ...], bool]:
    if is_terminating(pod):
        return (), monotonic
    is_first = first_unavailable is not None and name_of(pod) == name_of(first_unavailable)
    if monotonic and not is_first and (
            not is_running_and_ready(pod)
            or not is_running_and_available(pod, min_ready_seconds(sts), now)):
        return (), True
    return (Action.DELETE,), True


def rolling_update_victims(sts: Obj, replicas: Sequence[Obj], update_revision: str, *,
                           now: float) -> list[Obj]:
    """The pods to delete so they come back at the update revision, highest ordinal first.

    Without maxUnavailable, one at a time: the highest outdated pod at or above
    the partition goes, unless a pod above it is still unavailable. With
    maxUnavailable, as many as it allows minus those already unavailable
    anywhere in the set: 5 replicas, maxUnavailable 2, pod 1 not ready → one
    more pod (the highest outdated) goes now. (Upstream 1.33 keeps
    maxUnavailable behind the alpha MaxUnavailableStatefulSet gate; here it
    applies whenever a set carries it.)
    """
    min_ready = min_ready_seconds(sts)
    low = partition(sts)
    if "maxUnavailable" not in (rolling_update(sts) or {}):
        for target in range(len(replicas) - 1, low - 1, -1):
            pod = replicas[target]
            if pod_revision(pod) != update_revision and not is_terminating(pod):
                return [pod]
            if is_unavailable(pod, min_ready, now):
                return []
        return []
    budget = max_unavailable(sts)
    unavailable = sum(is_unavailable(pod, min_ready, now) for pod in replicas)
    victims: list[Obj] = []
    for target in range(len(replicas) - 1, low - 1, -1):
        if len(victims) >= budget - unavailable:
            break
        pod = replicas[target]
        if pod_revision(pod) != update_revision and not is_terminating(pod):
            victims.append(pod)
    return victims


def plan_sync(sts: Obj, pods: Sequence[Obj], *, current: Obj, update: Obj,
              collision_count: int, lookup: ClaimLookup, now: float) -> Plan:
    """The phases of one sync, in the order they must run.

    With replicas 0..4 under OrderedReady and pod 2 not ready, a sync may fix
    pods 0-2 and touches neither 3, 4 nor any condemned pod; under Parallel it
    would also create or fix 3 and 4.
    """
    current_name, update_name = name_of(current), name_of(update)
    current_set = apply_revision(sts, current)
    update_set = apply_revision(sts, update)
    min_ready = min_ready_seconds(sts)
    base = SetStatus(
        observed_generation=int((sts.get("metadata") or {}).get("generation") or 0),
        current_revision=current_name, update_revision=update_name,
        collision_count=collision_count)
    monotonic = not allows_burst(sts)
    if (sts.get("metadata") or {}).get("deletionTimestamp"):
        # A set being deleted leaves its pods to the garbage collector.
        return Plan(count_pods(base, pods, min_ready=min_ready, now=now), monotonic, update_set)

    start, end = start_ordinal(sts), end_ordinal(sts)
    slots: dict[int, Obj] = {}
    condemned: list[Obj] = []
    for pod in pods:
        ordinal_ = ordinal(pod)
        if start <= ordinal_ <= end:
            slots[ordinal_] = pod
        elif ordinal_ >= 0:
            condemned.append(pod)
    replicas = [slots.get(o) or new_versioned_pod(current_set, update_set, current_name,
                                                  update_name, o)
                for o in range(start, end + 1)]
    condemned.sort(key=ordinal, reverse=True)
    plan = Plan(count_pods(base, [*replicas, *condemned], min_ready=min_ready, now=now),
                monotonic, update_set)

    first_unavailable = next(
        (pod for pod in [*replicas, *reversed(condemned)] if is_unavailable(pod, min_ready, now)),
        None)

    phase = Phase("replicas")
    plan.phases.append(phase)
    for pod in replicas:
        actions, wait = _replica_step(sts, update_set, pod, monotonic=monotonic,
                                      lookup=lookup, now=now)
        if actions:
            phase.steps.append(Step(pod, actions))
        if monotonic and wait:
            return plan

    phase = Phase("claim-owners")
    plan.phases.append(phase)
    for pod in condemned:
        if not claims_match_policy(update_set, pod, lookup):
            phase.steps.append(Step(pod, (Action.FIX_CLAIM_OWNERS,)))

    phase = Phase("scale-down")
    plan.phases.append(phase)
    for pod in condemned:
        actions, wait = _condemned_step(sts, pod, first_unavailable, monotonic=monotonic, now=now)
        if actions:
            phase.steps.append(Step(pod, actions))
        if monotonic and wait:
            return plan

    if strategy_type(sts) == "OnDelete":
        return plan
    victims = rolling_update_victims(sts, replicas, update_name, now=now)
    plan.phases.append(Phase("rolling-update", [Step(pod, (Action.DELETE,)) for pod in victims]))
    return plan


def with_deleted_for_update(status: SetStatus, deleted: int) -> SetStatus:
    """Pods deleted by the rolling update no longer count as current."""
    return replace(status, current_replicas=status.current_replicas - deleted)

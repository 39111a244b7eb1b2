"""The arithmetic of a Deployment rollout, as small pure functions on plain dicts.

Everything here reads Deployments and ReplicaSets as the API serves them
(JSON dicts) and returns numbers or booleans: how far maxSurge and
maxUnavailable stretch (`resolve_fenceposts`, surge rounding up and
unavailability rounding down), how big the new ReplicaSet may grow
(`new_rs_new_replicas`), a ReplicaSet's share when the Deployment is resized
mid-rollout (`proportion`), and whether a rollout is complete, progressing or
timed out. Upstream keeps the same rules in pkg/controller/deployment/util.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from kubi.api.meta import parse_time
from kubi.controllers.deployment.conditions import (
    NEW_RS_AVAILABLE,
    PROGRESSING,
    TIMED_OUT,
    get_condition,
)

Obj = dict[str, Any]
IntOrString = int | str

ROLLING_UPDATE = "RollingUpdate"
RECREATE = "Recreate"

# Upstream treats a limit of MaxInt32 as "no limit at all".
MAX_INT32 = 2**31 - 1

# The label that tells one ReplicaSet (and its pods) of a Deployment from another.
POD_TEMPLATE_HASH = "pod-template-hash"

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
# The Deployment's desired replicas, and desired plus maxSurge, when the
# ReplicaSet was last scaled: they tell a resize apart from rollout progress.
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"

_ATOI = re.compile(r"[+-]?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")


class IntOrPercentError(ValueError):
    """maxSurge or maxUnavailable is neither an integer nor a percentage."""


# ---- field access with the API's defaults


def spec(obj: Obj | None) -> Obj:
    return (obj or {}).get("spec") or {}


def status(obj: Obj | None) -> Obj:
    return (obj or {}).get("status") or {}


def replicas(obj: Obj | None) -> int:
    """spec.replicas, which the API defaults to 1 for Deployments and ReplicaSets."""
    value = spec(obj).get("replicas")
    return 1 if value is None else int(value)


def status_int(obj: Obj | None, field: str) -> int:
    return int(status(obj).get(field) or 0)


def strategy_type(d: Obj) -> str:
    return (spec(d).get("strategy") or {}).get("type") or ROLLING_UPDATE


def is_rolling_update(d: Obj) -> bool:
    return strategy_type(d) == ROLLING_UPDATE


def has_progress_deadline(d: Obj) -> bool:
    deadline = spec(d).get("progressDeadlineSeconds")
    return deadline is not None and deadline != MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    limit = spec(d).get("revisionHistoryLimit")
    return limit is not None and limit != MAX_INT32


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def annotations_of(obj: Obj | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def int32_annotation(obj: Obj | None, key: str) -> int | None:
    """A non-negative int32 annotation; None when missing or malformed."""
    value = annotations_of(obj).get(key)
    if value is None or not _DIGITS.fullmatch(value) or int(value) > MAX_INT32:
        return None
    return int(value)


# ---- maxSurge and maxUnavailable


def scaled_value(value: IntOrString | None, total: int, *, round_up: bool) -> int:
    """An int as is, or a percentage of `total`, rounded up or down."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise IntOrPercentError("invalid value for IntOrString: invalid type: "
                                "neither int nor percentage")
    if not value.endswith("%"):
        raise IntOrPercentError("invalid value for IntOrString: invalid type: "
                                "string is not a percentage")
    digits = value[:-1]
    if not _ATOI.fullmatch(digits):
        raise IntOrPercentError(f'invalid value for IntOrString: invalid value "{value}": '
                                f'strconv.Atoi: parsing "{digits}": invalid syntax')
    # Integer arithmetic gives exactly what upstream's float ceil/floor gives.
    product = int(digits) * total
    return -(-product // 100) if round_up else product // 100


def _rolling(d: Obj) -> Obj:
    return (spec(d).get("strategy") or {}).get("rollingUpdate") or {}


def resolve_fenceposts(max_surge: IntOrString | None, max_unavailable: IntOrString | None,
                       desired: int) -> tuple[int, int]:
    """(surge, unavailable) for `desired` replicas; never both zero.

    10 replicas at 39%/39%: surge rounds up to 4, unavailable down to 3.
    When both come out zero (validation forbids that explicitly, but rounding
    down can get there) one pod may be unavailable, since surging could be
    impossible under a quota.
    """
    surge = scaled_value(max_surge, desired, round_up=True)
    unavailable = scaled_value(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _fenceposts(d: Obj) -> tuple[int, int]:
    rolling = _rolling(d)
    try:
        return resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"),
                                  replicas(d))
    except IntOrPercentError:
        return 0, 0  # validation keeps these out; upstream counts them as zero


def max_surge(d: Obj) -> int:
    return _fenceposts(d)[0] if is_rolling_update(d) else 0


def max_unavailable(d: Obj) -> int:
    """How many of the desired pods may be unavailable, capped at the desired count."""
    if not is_rolling_update(d) or replicas(d) == 0:
        return 0
    return min(_fenceposts(d)[1], replicas(d))


def min_available(d: Obj) -> int:
    return replicas(d) - max_unavailable(d) if is_rolling_update(d) else 0


# ---- counting over ReplicaSets (None stands for a new ReplicaSet not yet created)


def replica_count(rss: Iterable[Obj | None]) -> int:
    """Pods the ReplicaSets are asked for (spec.replicas)."""
    return sum(replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "availableReplicas") for rs in rss if rs is not None)


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    """The ReplicaSets asked for at least one pod."""
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


# ---- scaling decisions


def new_rs_new_replicas(d: Obj, all_rss: Iterable[Obj | None], new_rs: Obj) -> int:
    """The size the new ReplicaSet may grow to now.

    RollingUpdate: up to desired + maxSurge pods in total, and never past the
    desired count (10 desired, maxSurge 2, old at 5: the new one may go to 7).
    Recreate: straight to the desired count.
    """
    kind = strategy_type(d)
    if kind == ROLLING_UPDATE:
        desired = replicas(d)
        surge = scaled_value(_rolling(d).get("maxSurge"), desired, round_up=True)
        current = replica_count(all_rss)
        ceiling = desired + surge
        if current >= ceiling:
            return replicas(new_rs)
        return replicas(new_rs) + min(ceiling - current, desired - replicas(new_rs))
    if kind == RECREATE:
        return replicas(d)
    raise ValueError(f"deployment type {kind} isn't supported")


def round_half_away(value: float) -> int:
    """Round to nearest, halves away from zero (Go's math.Round, not Python's round)."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)


def replica_set_fraction(rs: Obj, d: Obj) -> int:
    """How many replicas `rs` gains (or loses) when the Deployment is resized.

    Its share of the old maximum (the `max-replicas` annotation, desired plus
    surge when it was last scaled) applied to the new maximum: at 100 → 120
    with no surge, a ReplicaSet of 50 becomes 60 (+10). Without a usable
    annotation the Deployment's current pod count stands in; with neither,
    nothing can be estimated and the share is 0.
    """
    if replicas(d) == 0:
        return -replicas(rs)
    new_max = replicas(d) + max_surge(d)
    old_max = int32_annotation(rs, MAX_REPLICAS) or 0
    if old_max == 0:
        old_max = status_int(d, "replicas")
        if old_max == 0:
            return 0
    return round_half_away(replicas(rs) * new_max / old_max) - replicas(rs)


def proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    """The part of `to_add` this ReplicaSet takes, never overshooting what is left."""
    if rs is None or replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# ---- rollout state


def deployment_complete(d: Obj, new_status: Obj) -> bool:
    """Every desired pod updated and available, no old pod left, generation observed."""
    desired = replicas(d)
    generation = (d.get("metadata") or {}).get("generation") or 0
    return (int(new_status.get("updatedReplicas") or 0) == desired
            and int(new_status.get("replicas") or 0) == desired
            and int(new_status.get("availableReplicas") or 0) == desired
            and int(new_status.get("observedGeneration") or 0) >= generation)


def deployment_progressing(d: Obj, new_status: Obj) -> bool:
    """More updated, ready or available pods than before, or fewer old ones."""
    old = status(d)

    def count(s: Obj, field: str) -> int:
        return int(s.get(field) or 0)

    old_leftover = count(old, "replicas") - count(old, "updatedReplicas")
    new_leftover = count(new_status, "replicas") - count(new_status, "updatedReplicas")
    return (count(new_status, "updatedReplicas") > count(old, "updatedReplicas")
            or new_leftover < old_leftover
            or count(new_status, "readyReplicas") > count(old, "readyReplicas")
            or count(new_status, "availableReplicas") > count(old, "availableReplicas"))


def deployment_timed_out(d: Obj, new_status: Obj, now: float) -> bool:
    """True once progressDeadlineSeconds passed since the last recorded progress.

    A rollout that already completed never times out; one that timed out
    stays timed out.
    """
    progressing = get_condition(new_status, PROGRESSING)
    if not has_progress_deadline(d) or progressing is None:
        return False
    reason = progressing.get("reason")
    if reason == NEW_RS_AVAILABLE:
        return False
    if reason == TIMED_OUT:
        return True
    since = parse_time(progressing.get("lastUpdateTime")) or 0.0
    return since + int(spec(d)["progressDeadlineSeconds"]) < now


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The ReplicaSet alone runs the whole Deployment: sized, annotated and available."""
    desired_annotation = int32_annotation(rs, DESIRED_REPLICAS)
    if rs is None or desired_annotation is None:
        return False
    desired = replicas(d)
    return (replicas(rs) == desired and desired_annotation == desired
            and status_int(rs, "availableReplicas") == desired)

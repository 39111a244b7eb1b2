"""Pure decisions of the node lifecycle controller: health, zones, tainting pace.

`assess_node_health` is upstream's tryUpdateNodeHealth on plain data: a node
is heard from when its Ready lastHeartbeatTime changes or its Lease renewTime
moves on, stamped with the controller's own clock (so node clock skew never
matters); silent past the grace period, its Ready and pressure conditions
turn Unknown. `zone_state` classifies a zone by its nodes' readiness,
`eviction_qps` picks the tainting rate for that state, and `TokenBucket`
enforces it on each zone's `ZoneTainter` queue.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kubi.api.meta import format_time, parse_time

Obj = dict[str, Any]

READY = "Ready"
# Conditions the controller takes over when the node falls silent; NetworkUnavailable
# belongs to the network provider and is left alone.
SILENT_NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

STATE_INITIAL = "Initial"
STATE_NORMAL = "Normal"
STATE_FULL_DISRUPTION = "FullDisruption"
STATE_PARTIAL_DISRUPTION = "PartialDisruption"

ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")
EXCLUDE_DISRUPTION_LABEL = "node.kubernetes.io/exclude-disruption"

NODE_NAME_INDEX = "node-name"


def pod_node_index(pod: Obj) -> tuple[str, ...]:
    """Informer index value: the node a pod is bound to."""
    name = (pod.get("spec") or {}).get("nodeName")
    return (name,) if name else ()


def node_condition(node: Obj, ctype: str) -> Obj | None:
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition.get("type") == ctype:
            return condition
    return None


@dataclass(frozen=True)
class NodeHealth:
    """What the controller remembers about a node between passes."""

    probe_timestamp: float
    ready_transition_timestamp: float
    ready_condition: Obj | None  # the node's Ready condition when last compared
    lease_renew_time: float | None = None


@dataclass(frozen=True)
class HealthAssessment:
    health: NodeHealth
    observed_ready: Obj          # Ready as found (synthesized Unknown when never posted)
    current_ready: Obj | None    # Ready after this pass's changes
    new_conditions: list[Obj] | None  # the conditions to write, when they changed


def _never_posted(node: Obj) -> Obj:
    created = (node.get("metadata") or {}).get("creationTimestamp")
    return {"type": READY, "status": "Unknown", "lastHeartbeatTime": created,
            "lastTransitionTime": created}


def assess_node_health(node: Obj, lease_renew_time: float | None, saved: NodeHealth | None, *,
                       now: float, grace_period: float,
                       startup_grace_period: float) -> HealthAssessment:
    current = node_condition(node, READY)
    if current is None:
        observed = _never_posted(node)
        grace = startup_grace_period
        if saved is None:
            created = parse_time(observed["lastHeartbeatTime"])
            created = now if created is None else created
            saved = NodeHealth(created, created, None)
    else:
        observed = dict(current)
        grace = grace_period
    saved_ready = saved.ready_condition if saved is not None else None
    lease_seen = saved.lease_renew_time if saved is not None else None
    if saved is None or (saved_ready is None) != (current is None):
        # First sight, or the Ready condition appeared or vanished: start counting now.
        health = NodeHealth(now, now, copy.deepcopy(current), lease_seen)
    elif current is not None and saved_ready is not None and \
            saved_ready.get("lastHeartbeatTime") != current.get("lastHeartbeatTime"):
        transitioned = saved_ready.get("lastTransitionTime") != current.get("lastTransitionTime")
        health = NodeHealth(now, now if transitioned else saved.ready_transition_timestamp,
                            copy.deepcopy(current), lease_seen)
    else:
        health = saved
    if lease_renew_time is not None and (lease_seen is None or lease_seen < lease_renew_time):
        health = replace(health, probe_timestamp=now, lease_renew_time=lease_renew_time)

    if now <= health.probe_timestamp + grace:
        return HealthAssessment(health, observed, current, None)
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or ()]
    stamp = format_time(now)
    for ctype in SILENT_NODE_CONDITIONS:
        existing = next((c for c in conditions if c.get("type") == ctype), None)
        if existing is None:
            conditions.append({
                "type": ctype, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                "message": "Kubelet never posted node status.",
                "lastHeartbeatTime": (node.get("metadata") or {}).get("creationTimestamp"),
                "lastTransitionTime": stamp})
        elif existing.get("status") != "Unknown":
            existing.update(status="Unknown", reason="NodeStatusUnknown",
                            message="Kubelet stopped posting node status.",
                            lastTransitionTime=stamp)
    ready = next(c for c in conditions if c.get("type") == READY)
    if ready == current:
        return HealthAssessment(health, observed, current, None)
    health = replace(health, ready_condition=copy.deepcopy(ready),
                     ready_transition_timestamp=now)
    return HealthAssessment(health, observed, ready, conditions)


# ---- zones


def _first_label(labels: dict[str, str], keys: Sequence[str]) -> str:
    return next((labels[k] for k in keys if labels.get(k)), "")


def zone_key(node: Obj) -> str:
    """The node's zone as upstream keys it: region and zone, or "" when unlabelled."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region, zone = _first_label(labels, REGION_LABELS), _first_label(labels, ZONE_LABELS)
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


def excluded_from_disruption(node: Obj) -> bool:
    return EXCLUDE_DISRUPTION_LABEL in ((node.get("metadata") or {}).get("labels") or {})


def zone_state(ready_statuses: Iterable[str | None], unhealthy_threshold: float) -> str:
    """Normal; FullDisruption when no node is ready; PartialDisruption past the threshold.

    Example, threshold 0.55: 2 of 3 not ready is still Normal (more than two
    must be down), 3 of 5 is PartialDisruption (60%), 5 of 5 is Full.
    """
    statuses = list(ready_statuses)
    ready = sum(1 for s in statuses if s == "True")
    not_ready = len(statuses) - ready
    if ready == 0 and not_ready > 0:
        return STATE_FULL_DISRUPTION
    if not_ready > 2 and not_ready / (not_ready + ready) >= unhealthy_threshold:
        return STATE_PARTIAL_DISRUPTION
    return STATE_NORMAL


def eviction_qps(state: str, zone_size: int, *, healthy_qps: float, secondary_qps: float,
                 large_cluster_threshold: int) -> float:
    """How fast a zone's nodes may be tainted NoExecute in this state."""
    if state == STATE_PARTIAL_DISRUPTION:
        # A small zone mostly down is more likely a network split than dead machines.
        return secondary_qps if zone_size > large_cluster_threshold else 0.0
    return healthy_qps


class TokenBucket:
    """A token bucket of `burst` tokens refilled at `qps`; qps 0 accepts nothing."""

    def __init__(self, qps: float, burst: int = 1, *, now: float = 0.0) -> None:
        self.qps = qps
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def set_qps(self, qps: float, now: float) -> None:
        if qps == self.qps:
            return
        self._refill(now)
        self.qps = qps
        if qps <= 0:
            self.tokens = 0.0

    def _refill(self, now: float) -> None:
        if self.qps > 0 and now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.qps)
        self.stamp = max(self.stamp, now)

    def try_accept(self, now: float) -> bool:
        if self.qps <= 0:
            return False
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_time(self, now: float) -> float | None:
        """Seconds until a token is available; None when the rate is zero."""
        if self.qps <= 0:
            return None
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.qps)


class ZoneTainter:
    """Nodes waiting for their NoExecute taint, in order; admitted at the zone's rate.

    A processed node stays a member so it is not queued again on every pass,
    until `remove` (the node is Ready again, or its taint went missing).
    """

    def __init__(self, qps: float, now: float) -> None:
        self.limiter = TokenBucket(qps, now=now)
        self.pending: OrderedDict[str, None] = OrderedDict()
        self.members: set[str] = set()

    def add(self, name: str) -> bool:
        if name in self.members:
            return False
        self.members.add(name)
        self.pending[name] = None
        return True

    def remove(self, name: str) -> None:
        self.members.discard(name)
        self.pending.pop(name, None)

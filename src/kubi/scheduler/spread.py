"""Pod topology spread: the PodTopologySpread plugin's decisions.

A constraint counts the pods matching its selector (same namespace, not
terminating) per domain, a domain being a value of its topology key among
the eligible nodes (those with every constraint's key, and, by default, that
match the pod's node selector and affinity; taints are ignored unless
`nodeTaintsPolicy: Honor`). With `DoNotSchedule`, a node passes when
`matching pods in its domain + 1 if the pod matches itself - the smallest
domain count` stays within maxSkew; the smallest count is 0 while there are
fewer domains than minDomains. A node lacking the key cannot pass at all.

With `ScheduleAnyway` (and, for pods that state no constraints, upstream's
system defaults: hostname skew 3 and zone skew 5 over the pods of the same
Service/ReplicaSet/StatefulSet), nodes score lower the more matching pods
their domains hold, each domain weighted by log(domains + 2), then the scores
are inverted onto 0..100.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubi.api.selectors import (
    LabelSelector,
    Requirement,
    SelectorParseError,
    selector_from_label_selector,
    selector_from_set,
)
from kubi.scheduler.matching import (
    LABEL_HOSTNAME,
    LABEL_ZONE,
    RequiredNodeAffinity,
    first_untolerated,
)
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo

ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = ERR_CONSTRAINTS + " (missing required label)"

DO_NOT_SCHEDULE = "DoNotSchedule"
SCHEDULE_ANYWAY = "ScheduleAnyway"


@dataclass(frozen=True)
class Constraint:
    max_skew: int
    topology_key: str
    selector: LabelSelector
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_taints: bool = False
    # The selector's canonical text: a cheap key for the per-node pod counters.
    selector_key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.selector_key:
            object.__setattr__(self, "selector_key", repr(self.selector))

    def includes(self, pod: PodInfo, node: NodeInfo, affinity: RequiredNodeAffinity) -> bool:
        """Whether the node counts as a domain member under the inclusion policies."""
        if self.honor_node_affinity and not affinity.empty and \
                not affinity.matches(node.labels, node.name):
            return False
        return not (self.honor_taints and
                    first_untolerated(node.taints, pod.spec.get("tolerations") or []))


def _with_label_keys(selector: LabelSelector, keys: Sequence[str],
                     labels: Mapping[str, str]) -> LabelSelector:
    extra = [Requirement(k, "in", (labels[k],)) for k in keys if k in labels]
    if not extra:
        return selector
    return LabelSelector(list(selector.requirements) + extra)


def pod_constraints(pod: PodInfo, action: str) -> list[Constraint]:
    """The pod's own constraints for one `whenUnsatisfiable` action, selectors compiled."""
    result = []
    for c in pod.spec.get("topologySpreadConstraints") or []:
        if c.get("whenUnsatisfiable", DO_NOT_SCHEDULE) != action:
            continue
        try:
            selector = selector_from_label_selector(c.get("labelSelector"))
        except SelectorParseError:
            continue
        selector = _with_label_keys(selector, c.get("matchLabelKeys") or (), pod.labels)
        result.append(Constraint(
            max_skew=int(c.get("maxSkew") or 1),
            topology_key=c.get("topologyKey") or "",
            selector=selector,
            min_domains=int(c.get("minDomains") or 1),
            honor_node_affinity=(c.get("nodeAffinityPolicy") or "Honor") == "Honor",
            honor_taints=(c.get("nodeTaintsPolicy") or "Ignore") == "Honor",
        ))
    return result


def default_constraints(selector: LabelSelector | None) -> list[Constraint]:
    if selector is None or selector.empty or selector.nothing:
        return []
    return [Constraint(3, LABEL_HOSTNAME, selector), Constraint(5, LABEL_ZONE, selector)]


def default_selector(pod: PodInfo, services: Iterable[Mapping[str, Any]],
                     controller: Mapping[str, Any] | None = None,
                     controller_kind: str = "") -> LabelSelector:
    """The pods a pod without constraints is spread among (upstream's DefaultSelector).

    The union of the selectors of the Services selecting the pod and of its
    controlling ReplicationController, ReplicaSet or StatefulSet (`controller`
    of `controller_kind`, looked up by the caller from the pod's controller
    ownerReference).
    """
    merged: dict[str, str] = {}
    for service in services:
        wanted = (service.get("spec") or {}).get("selector")
        if wanted and all(pod.labels.get(k) == v for k, v in wanted.items()):
            merged.update(wanted)
    selector = selector_from_set(merged)
    if controller is None:
        return selector
    kind = controller_kind or controller.get("kind")
    spec = controller.get("spec") or {}
    if kind == "ReplicationController":
        merged.update(spec.get("selector") or {})
        return selector_from_set(merged)
    if kind in ("ReplicaSet", "StatefulSet"):
        try:
            other = selector_from_label_selector(spec.get("selector"))
        except SelectorParseError:
            return selector
        if other.nothing:
            return selector
        return LabelSelector(list(selector.requirements) + list(other.requirements))
    return selector


def matching_pods(node: NodeInfo, pod: PodInfo, c: Constraint) -> int:
    """Live pods of the pod's namespace on `node` that the constraint's selector selects."""
    key = ("spread", pod.namespace, c.selector_key)
    cached = node.cached_count(key)
    if cached is not None:
        return cached
    namespace, selector = pod.namespace, c.selector
    return node.count(key, lambda p: p.namespace == namespace and
                      not p.terminating and selector.matches(p.labels))


def _has_keys(node: NodeInfo, constraints: Sequence[Constraint]) -> bool:
    return all(c.topology_key in node.labels for c in constraints)


# ---------------------------------------------------------------- filtering


@dataclass
class SpreadFilterState:
    pod: PodInfo
    constraints: list[Constraint]
    counts: list[dict[str, int]]

    def min_match(self, i: int) -> int | None:
        counts = self.counts[i]
        if len(counts) < self.constraints[i].min_domains:
            return 0
        return min(counts.values()) if counts else None


def prefilter(pod: PodInfo, nodes: Sequence[NodeInfo]) -> SpreadFilterState | None:
    constraints = pod_constraints(pod, DO_NOT_SCHEDULE)
    if not constraints:
        return None
    affinity = RequiredNodeAffinity.of(pod.spec)
    counts: list[dict[str, int]] = [{} for _ in constraints]
    for node in nodes:
        if not _has_keys(node, constraints):
            continue
        for i, c in enumerate(constraints):
            if not c.includes(pod, node, affinity):
                continue
            value = node.labels[c.topology_key]
            counts[i][value] = counts[i].get(value, 0) + matching_pods(node, pod, c)
    return SpreadFilterState(pod, constraints, counts)


def filter_node(state: SpreadFilterState, node: NodeInfo) -> tuple[bool, str, str]:
    for i, c in enumerate(state.constraints):
        value = node.labels.get(c.topology_key)
        if value is None:
            return False, "UnschedulableAndUnresolvable", ERR_MISSING_LABEL
        low = state.min_match(i)
        if low is None:
            continue  # no eligible domain at all: nothing to be skewed against
        own = 1 if c.selector.matches(state.pod.labels) else 0
        if state.counts[i].get(value, 0) + own - low > c.max_skew:
            return False, "Unschedulable", ERR_CONSTRAINTS
    return True, "", ""


# ---------------------------------------------------------------- scoring


@dataclass
class SpreadScoreState:
    pod: PodInfo
    constraints: list[Constraint]
    counts: list[dict[str, int]]
    weights: list[float]
    ignored: set[str]


def prescore(pod: PodInfo, feasible: Sequence[NodeInfo], all_nodes: Sequence[NodeInfo],
             default_selector: LabelSelector | None = None) -> SpreadScoreState | None:
    if pod.spec.get("topologySpreadConstraints"):
        constraints = pod_constraints(pod, SCHEDULE_ANYWAY)
        require_all = True
    else:
        constraints = default_constraints(default_selector)
        # System defaults tolerate nodes without a zone label: hostname spreading still applies.
        require_all = False
    if not constraints or not feasible:
        return None
    counts: list[dict[str, int]] = [{} for _ in constraints]
    ignored: set[str] = set()
    for node in feasible:
        if require_all and not _has_keys(node, constraints):
            ignored.add(node.name)
            continue
        for i, c in enumerate(constraints):
            if c.topology_key != LABEL_HOSTNAME:
                counts[i].setdefault(node.labels.get(c.topology_key, ""), 0)
    weights = []
    for i, c in enumerate(constraints):
        size = len(feasible) - len(ignored) if c.topology_key == LABEL_HOSTNAME else len(counts[i])
        weights.append(math.log(size + 2))
    # Hostname counts are read per node while scoring; a key no feasible node carries
    # scores nothing anywhere. Only the remaining domains need cluster-wide counts.
    domain_wide = [i for i, c in enumerate(constraints) if c.topology_key != LABEL_HOSTNAME
                   and any(c.topology_key in n.labels for n in feasible)]
    if domain_wide:
        affinity = RequiredNodeAffinity.of(pod.spec)
        for node in all_nodes:
            if require_all and not _has_keys(node, constraints):
                continue
            for i in domain_wide:
                c = constraints[i]
                if not c.includes(pod, node, affinity):
                    continue
                value = node.labels.get(c.topology_key, "")
                if value in counts[i]:
                    counts[i][value] += matching_pods(node, pod, c)
    return SpreadScoreState(pod, constraints, counts, weights, ignored)


def score_node(state: SpreadScoreState, node: NodeInfo) -> int:
    if node.name in state.ignored:
        return 0
    total = 0.0
    for i, c in enumerate(state.constraints):
        value = node.labels.get(c.topology_key)
        if value is None:
            continue
        if c.topology_key == LABEL_HOSTNAME:
            count = matching_pods(node, state.pod, c)
        else:
            count = state.counts[i].get(value, 0)
        total += count * state.weights[i] + (c.max_skew - 1)
    return math.floor(total + 0.5)


def normalize(state: SpreadScoreState, raw: dict[str, int]) -> dict[str, int]:
    """Fewer matching pods score higher; nodes missing a required key score 0."""
    considered = [v for name, v in raw.items() if name not in state.ignored]
    low = min(considered) if considered else 0
    high = max(considered) if considered else 0
    result = {}
    for name, value in raw.items():
        if name in state.ignored:
            result[name] = 0
        elif high == 0:
            result[name] = 100
        else:
            result[name] = 100 * (high + low - value) // high
    return result

"""Scores: which feasible node suits the pod best. Upstream's default score plugins.

Each plugin gives every feasible node a raw score, normalizes the scores to
0..100 and is weighted as upstream weighs it by default: TaintToleration 3
(fewer untolerated PreferNoSchedule taints is better), NodeAffinity 2
(preferred terms' weights), PodTopologySpread 2, InterPodAffinity 2,
NodeResourcesFit 1 (LeastAllocated over cpu and memory, with non-zero
requests), NodeResourcesBalancedAllocation 1 (cpu and memory fractions close
to each other; skipped for pods requesting nothing). ImageLocality is left
out: no kubi node reports images, which would give every node the same 0.
A plugin with nothing to say contributes 0 everywhere, which changes no
ranking. `prioritize` returns the weighted totals per node name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from kubi.api.selectors import LabelSelector
from kubi.scheduler import interpod, spread
from kubi.scheduler.matching import (
    PREFER_NO_SCHEDULE,
    node_selector_matches,
    preferred_node_affinity_terms,
    tolerates,
)
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo

MAX_NODE_SCORE = 100

WEIGHT_TAINT_TOLERATION = 3
WEIGHT_NODE_AFFINITY = 2
WEIGHT_POD_TOPOLOGY_SPREAD = 2
WEIGHT_INTER_POD_AFFINITY = 2
WEIGHT_RESOURCES_FIT = 1
WEIGHT_BALANCED_ALLOCATION = 1

NamespaceLabels = Callable[[str], Mapping[str, str] | None]


def default_normalize(raw: dict[str, int], *, reverse: bool = False) -> dict[str, int]:
    """Upstream's DefaultNormalizeScore: scale so the best is 100 (or invert for "fewer is better")."""
    high = max(raw.values(), default=0)
    if high == 0:
        return {name: MAX_NODE_SCORE if reverse else 0 for name in raw}
    result = {}
    for name, value in raw.items():
        scaled = MAX_NODE_SCORE * value // high
        result[name] = MAX_NODE_SCORE - scaled if reverse else scaled
    return result


# ---------------------------------------------------------------- resources


def least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """Mean over cpu and memory of the free share left after placing the pod."""
    total = weights = 0
    alloc = node.allocatable
    if alloc.milli_cpu:
        total += least_requested(node.non0_cpu + pod.non0_cpu, alloc.milli_cpu)
        weights += 1
    if alloc.memory:
        total += least_requested(node.non0_mem + pod.non0_mem, alloc.memory)
        weights += 1
    return total // weights if weights else 0


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """100 when cpu and memory would be used in equal shares, less as they diverge."""
    alloc, used, want = node.allocatable, node.requested, pod.requests
    if not alloc.milli_cpu or not alloc.memory:
        return MAX_NODE_SCORE  # one resource alone deviates from nothing
    cpu = min((used.milli_cpu + want.milli_cpu) / alloc.milli_cpu, 1.0)
    memory = min((used.memory + want.memory) / alloc.memory, 1.0)
    return int((1 - abs(cpu - memory) / 2) * MAX_NODE_SCORE)


# ---------------------------------------------------------------- taints and affinity


def intolerable_prefer_no_schedule(tolerations: Sequence[Mapping], node: NodeInfo) -> int:
    relevant = [t for t in tolerations if (t.get("effect") or PREFER_NO_SCHEDULE) == PREFER_NO_SCHEDULE]
    return sum(1 for taint in node.taints if taint.get("effect") == PREFER_NO_SCHEDULE
               and not any(tolerates(t, taint) for t in relevant))


def node_affinity_preference(terms: Sequence[tuple[int, Mapping]], node: NodeInfo) -> int:
    return sum(weight for weight, preference in terms
               if node_selector_matches({"nodeSelectorTerms": [preference]}, node.labels, node.name))


# ---------------------------------------------------------------- all together


def prioritize(pod: PodInfo, feasible: Sequence[NodeInfo], all_nodes: Sequence[NodeInfo], *,
               namespace_labels: NamespaceLabels | None = None,
               default_spread_selector: LabelSelector | None = None) -> dict[str, int]:
    """Weighted sum of every score plugin, per feasible node name."""
    if pod.requests.milli_cpu or pod.requests.memory:
        totals = {n.name: WEIGHT_RESOURCES_FIT * least_allocated(pod, n) +
                  WEIGHT_BALANCED_ALLOCATION * balanced_allocation(pod, n) for n in feasible}
    else:
        totals = {n.name: WEIGHT_RESOURCES_FIT * least_allocated(pod, n) for n in feasible}

    tolerations = pod.spec.get("tolerations") or []
    if any(n.taints for n in feasible):
        raw = {n.name: intolerable_prefer_no_schedule(tolerations, n) for n in feasible}
        scores = default_normalize(raw, reverse=True)
    else:
        scores = {n.name: MAX_NODE_SCORE for n in feasible}
    for name, value in scores.items():
        totals[name] += WEIGHT_TAINT_TOLERATION * value

    preferred = preferred_node_affinity_terms(pod.spec)
    if preferred:
        raw = {n.name: node_affinity_preference(preferred, n) for n in feasible}
        for name, value in default_normalize(raw).items():
            totals[name] += WEIGHT_NODE_AFFINITY * value

    spread_state = spread.prescore(pod, feasible, all_nodes, default_spread_selector)
    if spread_state is not None:
        raw = {n.name: spread.score_node(spread_state, n) for n in feasible}
        for name, value in spread.normalize(spread_state, raw).items():
            totals[name] += WEIGHT_POD_TOPOLOGY_SPREAD * value

    topology = interpod.prescore(pod, all_nodes, namespace_labels or (lambda ns: None))
    if topology is not None:
        raw = {n.name: interpod.score_node(topology, n) for n in feasible}
        for name, value in interpod.normalize(raw).items():
            totals[name] += WEIGHT_INTER_POD_AFFINITY * value
    return totals

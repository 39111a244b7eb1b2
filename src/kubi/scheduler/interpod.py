"""Inter-pod affinity and anti-affinity: the InterPodAffinity plugin's decisions.

Before the nodes are filtered, one pass over the cluster counts, per topology
pair (key, value), the existing pods that match all of the incoming pod's
required affinity terms, those matching each of its anti-affinity terms, and
the existing pods whose required anti-affinity rejects the incoming pod. Each
node is then judged from those counts alone, in upstream's order: affinity
(unresolvable, since evicting pods cannot create a missing peer), then the
pod's own anti-affinity, then existing pods' anti-affinity. A pod whose
affinity matches itself may go first when no peer exists anywhere yet.

Scoring adds term weights per topology pair (the incoming pod's preferred
terms against existing pods, and existing pods' terms against it, required
affinity counting with weight 1) and scales the node totals to 0..100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from kubi.scheduler.matching import AffinityTerm
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo

ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

HARD_POD_AFFINITY_WEIGHT = 1

NamespaceLabels = Callable[[str], Mapping[str, str] | None]
Pair = tuple[str, str]


def _no_labels(namespace: str) -> Mapping[str, str] | None:
    return None


def _matches_all(terms: Sequence[AffinityTerm], pod: PodInfo, ns_labels: NamespaceLabels) -> bool:
    if not terms:
        return False
    labels = ns_labels(pod.namespace)
    return all(t.matches(pod.namespace, pod.labels, labels) for t in terms)


def _all_terms(terms: Sequence[AffinityTerm], ns_labels: NamespaceLabels
               ) -> Callable[[PodInfo], bool]:
    return lambda p: _matches_all(terms, p, ns_labels)


def _one_term(term: AffinityTerm, ns_labels: NamespaceLabels) -> Callable[[PodInfo], bool]:
    return lambda p: term.matches(p.namespace, p.labels, ns_labels(p.namespace))


def _memoizable(terms: Sequence[AffinityTerm]) -> bool:
    # Namespace labels can change under a cached count; only plain terms are cached.
    return all(t.namespace_selector is None for t in terms)


def _count(node: NodeInfo, key: tuple, terms: Sequence[AffinityTerm],
           predicate: Callable[[PodInfo], bool]) -> int:
    if _memoizable(terms):
        return node.count(key, predicate)
    return sum(1 for p in node.pods.values() if predicate(p))


@dataclass
class AffinityFilterState:
    pod: PodInfo
    affinity_counts: Counter[Pair] = field(default_factory=Counter)
    anti_affinity_counts: Counter[Pair] = field(default_factory=Counter)
    existing_anti_counts: Counter[Pair] = field(default_factory=Counter)
    matches_own_affinity: bool = False


def prefilter(pod: PodInfo, nodes: Sequence[NodeInfo],
              ns_labels: NamespaceLabels = _no_labels) -> AffinityFilterState | None:
    """The counts Filter needs; None when the plugin has nothing to check (upstream's Skip)."""
    has_existing_anti = any(n.pods_with_required_anti_affinity for n in nodes)
    if not pod.required_affinity and not pod.required_anti_affinity and not has_existing_anti:
        return None
    state = AffinityFilterState(pod)
    own_ns_labels = ns_labels(pod.namespace)
    for node in nodes:
        labels = node.labels
        for existing in node.pods_with_required_anti_affinity.values():
            for term in existing.required_anti_affinity:
                value = labels.get(term.topology_key)
                if value is not None and term.matches(pod.namespace, pod.labels, own_ns_labels):
                    state.existing_anti_counts[(term.topology_key, value)] += 1
        if pod.required_affinity:
            terms = pod.required_affinity
            matched = _count(node, ("affinity-all", terms), terms,
                             _all_terms(terms, ns_labels))
            if matched:
                for term in terms:
                    value = labels.get(term.topology_key)
                    if value is not None:
                        state.affinity_counts[(term.topology_key, value)] += matched
        for term in pod.required_anti_affinity:
            value = labels.get(term.topology_key)
            if value is None:
                continue
            matched = _count(node, ("term", term), (term,), _one_term(term, ns_labels))
            if matched:
                state.anti_affinity_counts[(term.topology_key, value)] += matched
    state.matches_own_affinity = _matches_all(pod.required_affinity, pod, ns_labels)
    return state


def filter_node(state: AffinityFilterState, node: NodeInfo) -> tuple[bool, str, str]:
    """(fits, code, reason); code is "Unschedulable" or "UnschedulableAndUnresolvable"."""
    labels = node.labels
    terms = state.pod.required_affinity
    if terms:
        peers_present = True
        for term in terms:
            value = labels.get(term.topology_key)
            if value is None:
                return False, "UnschedulableAndUnresolvable", ERR_AFFINITY
            if state.affinity_counts.get((term.topology_key, value), 0) <= 0:
                peers_present = False
        if not peers_present and not (not state.affinity_counts and state.matches_own_affinity):
            return False, "UnschedulableAndUnresolvable", ERR_AFFINITY
    for term in state.pod.required_anti_affinity:
        value = labels.get(term.topology_key)
        if value is not None and state.anti_affinity_counts.get((term.topology_key, value), 0) > 0:
            return False, "Unschedulable", ERR_ANTI_AFFINITY
    if state.existing_anti_counts:
        for pair, count in state.existing_anti_counts.items():
            if count > 0 and labels.get(pair[0]) == pair[1]:
                return False, "Unschedulable", ERR_EXISTING_ANTI_AFFINITY
    return True, "", ""


# ---------------------------------------------------------------- scoring


TopologyScore = dict[str, dict[str, int]]


def _add(scores: TopologyScore, term: AffinityTerm, node: NodeInfo, amount: int) -> None:
    if not term.topology_key or amount == 0:
        return
    value = node.labels.get(term.topology_key)
    if value is not None:
        by_value = scores.setdefault(term.topology_key, {})
        by_value[value] = by_value.get(value, 0) + amount


def prescore(pod: PodInfo, nodes: Sequence[NodeInfo],
             ns_labels: NamespaceLabels = _no_labels) -> TopologyScore | None:
    """Weights per topology pair, from every node in the cluster; None when nothing applies."""
    has_preferences = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
    scores: TopologyScore = {}
    own_ns_labels = ns_labels(pod.namespace)
    for node in nodes:
        if not node.labels:
            continue
        if has_preferences:
            for sign, weighted in ((1, pod.preferred_affinity), (-1, pod.preferred_anti_affinity)):
                for weight, term in weighted:
                    matched = _count(node, ("term", term), (term,), _one_term(term, ns_labels))
                    _add(scores, term, node, sign * weight * matched)
        for existing in node.pods_with_affinity.values():
            for term in existing.required_affinity:
                if term.matches(pod.namespace, pod.labels, own_ns_labels):
                    _add(scores, term, node, HARD_POD_AFFINITY_WEIGHT)
            for sign, weighted in ((1, existing.preferred_affinity),
                                   (-1, existing.preferred_anti_affinity)):
                for weight, term in weighted:
                    if term.matches(pod.namespace, pod.labels, own_ns_labels):
                        _add(scores, term, node, sign * weight)
    return scores or None


def score_node(scores: TopologyScore, node: NodeInfo) -> int:
    total = 0
    for key, by_value in scores.items():
        value = node.labels.get(key)
        if value is not None:
            total += by_value.get(value, 0)
    return total


def normalize(raw: dict[str, int]) -> dict[str, int]:
    """Scale to 0..100 between the lowest and the highest node; all 0 when they are equal."""
    if not raw:
        return raw
    low, high = min(raw.values()), max(raw.values())
    spread = high - low
    if spread <= 0:
        return {name: 0 for name in raw}
    return {name: int(100 * (value - low) / spread) for name, value in raw.items()}

"""One scheduling decision: filter the nodes, score the survivors, pick one.

`schedule_pod` follows upstream's schedulePod: prefilter once; filter the
nodes starting where the previous cycle stopped, and, on big clusters, stop
after enough feasible nodes (upstream's adaptive percentageOfNodesToScore);
score; pick the best total, ties broken at random. When nothing fits, the
`Diagnosis` records each node's refusal and renders upstream's FitError text,
`0/N nodes are available: <count> <reason>, ... .` followed by what
preemption would say. kubi does not evict pods to make room; the preemption
part is computed as a dry run with upstream's rules, so the message matches
what upstream prints whenever its preemption finds no victim (the usual case:
every pod at the same priority). `schedule(pod, nodes, pods_by_node)` is the
same decision on plain dicts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubi.api.selectors import LabelSelector
from kubi.scheduler.filters import (
    UNRESOLVABLE,
    PreFilterRejected,
    Status,
    prefilter,
    run_filters,
)
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo
from kubi.scheduler.scores import prioritize

NO_NODES_MESSAGE = "no nodes available to schedule pods"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
PREEMPT_NEVER = "not eligible due to preemptionPolicy=Never."

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

NamespaceLabels = Callable[[str], Mapping[str, str] | None]


@dataclass
class Diagnosis:
    """Why a pod fits nowhere, per node; renders upstream's message."""

    num_all_nodes: int = 0
    node_statuses: dict[str, Status] = field(default_factory=dict)
    absent_status: Status | None = None
    prefilter_msg: str = ""
    postfilter_msg: str = ""
    unschedulable_plugins: set[str] = field(default_factory=set)
    no_nodes: bool = False

    def status_of(self, node_name: str) -> Status | None:
        return self.node_statuses.get(node_name, self.absent_status)

    def histogram(self) -> list[str]:
        counts: Counter[str] = Counter()
        for status in self.node_statuses.values():
            for reason in status.reasons:
                counts[reason] += 1
        absent = self.num_all_nodes - len(self.node_statuses)
        if absent > 0 and self.absent_status is not None:
            for reason in self.absent_status.reasons:
                counts[reason] += absent
        return sorted(f"{count} {reason}" for reason, count in counts.items())

    @property
    def message(self) -> str:
        if self.no_nodes:
            return NO_NODES_MESSAGE
        text = f"0/{self.num_all_nodes} nodes are available:"
        if self.prefilter_msg:
            text += f" {self.prefilter_msg}."
        else:
            reasons = self.histogram()
            if reasons:
                text += f" {', '.join(reasons)}."
        if self.postfilter_msg:
            text += f" {self.postfilter_msg}"
        return text


@dataclass
class ScheduleResult:
    node_name: str | None
    diagnosis: Diagnosis
    evaluated: int = 0
    feasible: int = 0
    next_start: int = 0


def num_feasible_nodes_to_find(num_nodes: int, percentage: int = 0) -> int:
    """Upstream's adaptive cut-off: all nodes below 100, then a shrinking share."""
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    if percentage <= 0:
        percentage = max(50 - num_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _select_host(totals: Mapping[str, int], order: Sequence[str], rng: random.Random) -> str:
    """The best total; among equals, any with the same chance (as upstream's sampling)."""
    best_score = max(totals[name] for name in order)
    best = [name for name in order if totals[name] == best_score]
    return best[0] if len(best) == 1 else rng.choice(best)


def schedule_pod(pod: PodInfo, nodes: Sequence[NodeInfo], *,
                 start_index: int = 0,
                 rng: random.Random | None = None,
                 namespace_labels: NamespaceLabels | None = None,
                 default_spread_selector: LabelSelector | None = None,
                 percentage_of_nodes_to_score: int = 0) -> ScheduleResult:
    """Place one pod on one of `nodes` (NodeInfos with their node set)."""
    rng = rng or random.Random()
    diagnosis = Diagnosis(num_all_nodes=len(nodes))
    if not nodes:
        diagnosis.no_nodes = True
        return ScheduleResult(None, diagnosis)
    try:
        ctx = prefilter(pod, nodes, namespace_labels=namespace_labels)
    except PreFilterRejected as rejected:
        diagnosis.absent_status = rejected.status
        diagnosis.prefilter_msg = rejected.status.message
        diagnosis.unschedulable_plugins.add(rejected.status.plugin)
        diagnosis.postfilter_msg = _preemption_message(pod, nodes, diagnosis, namespace_labels)
        return ScheduleResult(None, diagnosis)

    candidates: Sequence[NodeInfo] = nodes
    if ctx.node_names is not None:
        candidates = [n for n in nodes if n.name in ctx.node_names]
        diagnosis.absent_status = Status(
            UNRESOLVABLE, ("node(s) didn't satisfy plugin(s) [NodeAffinity]",), "NodeAffinity")
        start_index = 0
    wanted = num_feasible_nodes_to_find(len(candidates), percentage_of_nodes_to_score)
    feasible: list[NodeInfo] = []
    checked = 0
    count = len(candidates)
    for i in range(count):
        node = candidates[(start_index + i) % count]
        checked += 1
        status = run_filters(ctx, node)
        if status is None:
            feasible.append(node)
            if len(feasible) >= wanted:
                break
        else:
            diagnosis.node_statuses[node.name] = status
            diagnosis.unschedulable_plugins.add(status.plugin)
    next_start = (start_index + checked) % len(nodes)

    if not feasible:
        diagnosis.postfilter_msg = _preemption_message(pod, nodes, diagnosis, namespace_labels)
        return ScheduleResult(None, diagnosis, checked, 0, next_start)
    if len(feasible) == 1:
        return ScheduleResult(feasible[0].name, diagnosis, checked, 1, next_start)
    totals = prioritize(pod, feasible, nodes, namespace_labels=namespace_labels,
                        default_spread_selector=default_spread_selector)
    chosen = _select_host(totals, [n.name for n in feasible], rng)
    return ScheduleResult(chosen, diagnosis, checked, len(feasible), next_start)


def _preemption_message(pod: PodInfo, nodes: Sequence[NodeInfo], diagnosis: Diagnosis,
                        namespace_labels: NamespaceLabels | None) -> str:
    """What upstream's DefaultPreemption reports, from a dry run; "" if victims exist.

    Only nodes refused for a resolvable reason are worth evicting from; on
    those, only pods of lower priority may go. A node where evicting all of
    them still leaves the pod unfit reports that filter's reason.
    """
    if pod.spec.get("preemptionPolicy") == "Never":
        return "preemption: " + PREEMPT_NEVER
    dry_run = Diagnosis(num_all_nodes=len(nodes),
                        absent_status=Status(UNRESOLVABLE, (NOT_HELPFUL,)))
    for node in nodes:
        status = diagnosis.status_of(node.name)
        if status is None or not status.resolvable:
            continue
        victims = [p for p in node.pods.values() if p.priority < pod.priority]
        if not victims:
            dry_run.node_statuses[node.name] = Status(UNRESOLVABLE, (NO_VICTIMS,))
            continue
        trimmed = node.clone()
        for victim in victims:
            trimmed.remove_pod(victim.key)
        others = [trimmed if n is node else n for n in nodes]
        try:
            outcome = run_filters(prefilter(pod, others, namespace_labels=namespace_labels),
                                  trimmed)
        except PreFilterRejected as rejected:
            outcome = rejected.status
        if outcome is None:
            return ""  # upstream would evict here and nominate the node
        dry_run.node_statuses[node.name] = outcome
    return "preemption: " + dry_run.message


def schedule(pod: dict[str, Any], nodes: Iterable[dict[str, Any]],
             pods_by_node: Mapping[str, Iterable[dict[str, Any]]] | None = None, *,
             rng: random.Random | None = None,
             namespaces: Mapping[str, Mapping[str, str]] | None = None,
             default_spread_selector: LabelSelector | None = None,
             ) -> tuple[str | None, Diagnosis]:
    """Choose a node for `pod` among `nodes`, given the pods already on each node."""
    pods_by_node = pods_by_node or {}
    infos = [NodeInfo.build(n, pods_by_node.get(n["metadata"]["name"], ())) for n in nodes]
    labels = namespaces or {}
    result = schedule_pod(PodInfo(pod), infos, rng=rng,
                          namespace_labels=lambda ns: labels.get(ns),
                          default_spread_selector=default_spread_selector)
    return result.node_name, result.diagnosis

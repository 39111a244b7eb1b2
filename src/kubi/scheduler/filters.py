"""Filters: may this pod run on this node? Upstream's default filter plugins.

`prefilter(pod, nodes)` computes, once per scheduling cycle, what the filters
need (the pod's node affinity, the nodes named by `matchFields`, inter-pod
affinity and topology spread counts) and the list of filters that apply:
plugins with nothing to check are left out, as upstream skips them. It raises
`PreFilterRejected` when the pod can fit nowhere whatever the node.
`run_filters(ctx, node)` then applies them in upstream's order
(NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts,
NodeResourcesFit, PodTopologySpread, InterPodAffinity) and returns the first
failure as a `Status` whose reasons are the texts upstream puts in
`0/N nodes are available: ...`. Node readiness is not a filter of its own:
as upstream, a not-ready or unreachable node is refused through the
`node.kubernetes.io/not-ready` and `.../unreachable` taints on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubi.scheduler import interpod, spread
from kubi.scheduler.matching import (
    NO_SCHEDULE,
    TAINT_UNSCHEDULABLE,
    RequiredNodeAffinity,
    first_untolerated,
    tolerated,
)
from kubi.scheduler.nodeinfo import NodeInfo, PodInfo

UNSCHEDULABLE = "Unschedulable"
UNRESOLVABLE = "UnschedulableAndUnresolvable"

ERR_UNSCHEDULABLE_NODE = "node(s) were unschedulable"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"
ERR_AFFINITY_CONFLICT = "pod affinity terms conflict"
ERR_TOO_MANY_PODS = "Too many pods"

_UNSCHEDULABLE_TAINT = {"key": TAINT_UNSCHEDULABLE, "effect": NO_SCHEDULE}


@dataclass(frozen=True)
class Status:
    """Why one plugin refused one node (or, from a PreFilter, every node)."""

    code: str
    reasons: tuple[str, ...]
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @property
    def resolvable(self) -> bool:
        """Whether evicting pods from the node could change the answer (preemption's test)."""
        return self.code == UNSCHEDULABLE


class PreFilterRejected(Exception):
    def __init__(self, status: Status) -> None:
        super().__init__(status.message)
        self.status = status


Filter = Callable[["PodContext", NodeInfo], "Status | None"]
NamespaceLabels = Callable[[str], Mapping[str, str] | None]


@dataclass
class PodContext:
    """What one scheduling cycle knows about the pod being placed."""

    pod: PodInfo
    tolerations: list[Mapping[str, Any]]
    node_affinity: RequiredNodeAffinity
    node_names: frozenset[str] | None = None
    affinity: interpod.AffinityFilterState | None = None
    spread: spread.SpreadFilterState | None = None
    filters: list[Filter] = field(default_factory=list)
    # The filters the quick admission test below does not cover.
    extra_filters: list[Filter] = field(default_factory=list)
    tolerates_unschedulable: bool = False


# ---------------------------------------------------------------- the plugins


def node_unschedulable(ctx: PodContext, node: NodeInfo) -> Status | None:
    if node.unschedulable and not tolerated(ctx.tolerations, _UNSCHEDULABLE_TAINT):
        return Status(UNRESOLVABLE, (ERR_UNSCHEDULABLE_NODE,), "NodeUnschedulable")
    return None


def node_name(ctx: PodContext, node: NodeInfo) -> Status | None:
    wanted = ctx.pod.node_name
    if wanted and wanted != node.name:
        return Status(UNRESOLVABLE, (ERR_NODE_NAME,), "NodeName")
    return None


def taint_toleration(ctx: PodContext, node: NodeInfo) -> Status | None:
    if not node.taints:
        return None
    taint = first_untolerated(node.taints, ctx.tolerations)
    if taint is None:
        return None
    reason = f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"
    return Status(UNRESOLVABLE, (reason,), "TaintToleration")


def node_affinity(ctx: PodContext, node: NodeInfo) -> Status | None:
    if not ctx.node_affinity.matches(node.labels, node.name):
        return Status(UNRESOLVABLE, (ERR_NODE_AFFINITY,), "NodeAffinity")
    return None


def _port_conflict(used: Mapping[tuple[str, str, int], int], ip: str, protocol: str,
                   port: int) -> bool:
    if ip == "0.0.0.0":
        return any(p == port and proto == protocol for (_, proto, p) in used)
    return (ip, protocol, port) in used or ("0.0.0.0", protocol, port) in used


def node_ports(ctx: PodContext, node: NodeInfo) -> Status | None:
    if not node.used_ports:
        return None
    for ip, protocol, port in ctx.pod.host_ports:
        if _port_conflict(node.used_ports, ip, protocol, port):
            return Status(UNSCHEDULABLE, (ERR_NODE_PORTS,), "NodePorts")
    return None


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[str]:
    """Upstream's reasons, in its order: pods count, cpu, memory, ephemeral storage, others."""
    reasons = []
    if len(node.pods) + 1 > node.allocatable.allowed_pods:
        reasons.append(ERR_TOO_MANY_PODS)
    want = pod.requests
    if want.is_zero():
        return reasons
    alloc, used = node.allocatable, node.requested
    if want.milli_cpu > 0 and want.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        reasons.append("Insufficient cpu")
    if want.memory > 0 and want.memory > alloc.memory - used.memory:
        reasons.append("Insufficient memory")
    if want.ephemeral_storage > 0 and \
            want.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
        reasons.append("Insufficient ephemeral-storage")
    for name, value in want.scalars.items():
        if value > 0 and value > alloc.scalars.get(name, 0) - used.scalars.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def node_resources_fit(ctx: PodContext, node: NodeInfo) -> Status | None:
    reasons = insufficient_resources(ctx.pod, node)
    if reasons:
        return Status(UNSCHEDULABLE, tuple(reasons), "NodeResourcesFit")
    return None


def pod_topology_spread(ctx: PodContext, node: NodeInfo) -> Status | None:
    assert ctx.spread is not None
    fits, code, reason = spread.filter_node(ctx.spread, node)
    return None if fits else Status(code, (reason,), "PodTopologySpread")


def inter_pod_affinity(ctx: PodContext, node: NodeInfo) -> Status | None:
    assert ctx.affinity is not None
    fits, code, reason = interpod.filter_node(ctx.affinity, node)
    return None if fits else Status(code, (reason,), "InterPodAffinity")


# ---------------------------------------------------------------- the cycle


def _named_nodes(spec: Mapping[str, Any]) -> frozenset[str] | None:
    """Nodes singled out by `matchFields: metadata.name In`, or None for any node."""
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return None
    names: set[str] = set()
    for term in required.get("nodeSelectorTerms") or []:
        term_names: set[str] | None = None
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("operator") == "In":
                values = set(req.get("values") or [])
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None  # terms are ORed: one without a name leaves every node possible
        names |= term_names
    if not names:
        raise PreFilterRejected(Status(UNRESOLVABLE, (ERR_AFFINITY_CONFLICT,), "NodeAffinity"))
    return frozenset(names)


def prefilter(pod: PodInfo, nodes: Sequence[NodeInfo], *,
              namespace_labels: NamespaceLabels | None = None) -> PodContext:
    spec = pod.spec
    ctx = PodContext(pod, list(spec.get("tolerations") or []), RequiredNodeAffinity.of(spec))
    ctx.node_names = _named_nodes(spec)
    filters: list[Filter] = [node_unschedulable, node_name, taint_toleration]
    if not ctx.node_affinity.empty:
        filters.append(node_affinity)
    if pod.host_ports:
        filters.append(node_ports)
    filters.append(node_resources_fit)
    ctx.spread = spread.prefilter(pod, nodes)
    if ctx.spread is not None:
        filters.append(pod_topology_spread)
    ctx.affinity = interpod.prefilter(pod, nodes, namespace_labels or (lambda ns: None))
    if ctx.affinity is not None:
        filters.append(inter_pod_affinity)
    ctx.filters = filters
    ctx.extra_filters = [f for f in filters if f not in _QUICK]
    ctx.tolerates_unschedulable = tolerated(ctx.tolerations, _UNSCHEDULABLE_TAINT)
    return ctx


_QUICK = (node_unschedulable, node_name, taint_toleration, node_resources_fit)


def _passes_quickly(ctx: PodContext, node: NodeInfo) -> bool:
    """The common filters, without building reasons: True means they all pass."""
    if node.unschedulable and not ctx.tolerates_unschedulable:
        return False
    pod = ctx.pod
    if pod.node_name and pod.node_name != node.name:
        return False
    if node.taints and first_untolerated(node.taints, ctx.tolerations) is not None:
        return False
    alloc, used, want = node.allocatable, node.requested, pod.requests
    if len(node.pods) >= alloc.allowed_pods:
        return False
    if want.milli_cpu > alloc.milli_cpu - used.milli_cpu and want.milli_cpu > 0:
        return False
    if want.memory > alloc.memory - used.memory and want.memory > 0:
        return False
    if want.ephemeral_storage > 0 and \
            want.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
        return False
    for name, value in want.scalars.items():
        if value > 0 and value > alloc.scalars.get(name, 0) - used.scalars.get(name, 0):
            return False
    return True


def run_filters(ctx: PodContext, node: NodeInfo) -> Status | None:
    """The first refusal among the filters, in upstream's order; None when the node fits."""
    if _passes_quickly(ctx, node):
        checks = ctx.extra_filters
    else:
        checks = ctx.filters  # walk them in order, for the exact first reason
    for check in checks:
        status = check(ctx, node)
        if status is not None:
            return status
    return None

"""Matching rules shared by filters and scores: node selectors, taints, pod terms.

Everything here is a pure predicate on plain API dicts, with upstream's
semantics: node selector terms are ORed and their requirements ANDed (a term
with no requirement matches nothing); `NotIn` and `DoesNotExist` hold when the
label is absent; `Gt`/`Lt` compare labels read as integers; `matchFields`
knows only `metadata.name`. A toleration with an empty key and `Exists`
tolerates every taint, an empty effect every effect. Pod affinity terms are
compiled once into `AffinityTerm`s (namespaces, namespace selector, label
selector, topology key) so that matching thousands of pods stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubi.api.selectors import LabelSelector, SelectorParseError, selector_from_label_selector

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
PREFER_NO_SCHEDULE = "PreferNoSchedule"

TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_ZONE = "topology.kubernetes.io/zone"

_GO_INT = re.compile(r"^[+-]?[0-9]+$")


def _as_int(text: str) -> int | None:
    if not _GO_INT.match(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


# ---------------------------------------------------------------- node selectors


def _requirement_matches(req: Mapping[str, Any], value: str | None) -> bool:
    operator = req.get("operator")
    values = req.get("values") or []
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt"):
        if value is None or len(values) != 1:
            return False
        actual, bound = _as_int(value), _as_int(str(values[0]))
        if actual is None or bound is None:
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


def term_matches(term: Mapping[str, Any], labels: Mapping[str, str], node_name: str) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    for req in expressions:
        if not _requirement_matches(req, labels.get(req.get("key", ""))):
            return False
    for req in fields:
        if req.get("key") != "metadata.name" or req.get("operator") not in ("In", "NotIn"):
            return False
        if not _requirement_matches(req, node_name):
            return False
    return True


def node_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str],
                          node_name: str) -> bool:
    """A v1.NodeSelector: true when any of its terms matches."""
    if selector is None:
        return True
    return any(term_matches(t, labels, node_name) for t in selector.get("nodeSelectorTerms") or [])


@dataclass(frozen=True)
class RequiredNodeAffinity:
    """A pod's `nodeSelector` together with its required node affinity."""

    node_selector: tuple[tuple[str, str], ...]
    required: Mapping[str, Any] | None

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> RequiredNodeAffinity:
        affinity = ((spec.get("affinity") or {}).get("nodeAffinity")) or {}
        required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
        return cls(tuple(sorted((spec.get("nodeSelector") or {}).items())), required)

    @property
    def empty(self) -> bool:
        return not self.node_selector and self.required is None

    def matches(self, labels: Mapping[str, str], node_name: str) -> bool:
        for key, value in self.node_selector:
            if labels.get(key) != value:
                return False
        return node_selector_matches(self.required, labels, node_name)


def preferred_node_affinity_terms(spec: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity")) or {}
    terms = affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    return [(int(t.get("weight") or 0), t.get("preference") or {}) for t in terms
            if t.get("weight")]


# ---------------------------------------------------------------- taints


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def first_untolerated(taints: Iterable[Mapping[str, Any]],
                      tolerations: Sequence[Mapping[str, Any]],
                      effects: tuple[str, ...] = (NO_SCHEDULE, NO_EXECUTE)) -> Mapping[str, Any] | None:
    for taint in taints:
        if taint.get("effect") in effects and not tolerated(tolerations, taint):
            return taint
    return None


# ---------------------------------------------------------------- pod affinity terms


@dataclass(frozen=True)
class AffinityTerm:
    """A compiled PodAffinityTerm."""

    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None
    selector: LabelSelector
    topology_key: str

    def matches(self, namespace: str, labels: Mapping[str, str],
                namespace_labels: Mapping[str, str] | None) -> bool:
        if namespace not in self.namespaces:
            if self.namespace_selector is None or namespace_labels is None:
                return False
            if not self.namespace_selector.matches(namespace_labels):
                return False
        return self.selector.matches(labels)


def compile_term(term: Mapping[str, Any], own_namespace: str) -> AffinityTerm | None:
    """None for a term whose selectors do not parse (upstream ignores those pods' terms)."""
    try:
        selector = selector_from_label_selector(term.get("labelSelector"))
        ns_selector_obj = term.get("namespaceSelector")
        ns_selector = None if ns_selector_obj is None else selector_from_label_selector(ns_selector_obj)
    except SelectorParseError:
        return None
    namespaces = frozenset(term.get("namespaces") or ())
    if not namespaces and ns_selector is None:
        namespaces = frozenset((own_namespace,))
    return AffinityTerm(namespaces, ns_selector, selector, term.get("topologyKey") or "")


def compile_terms(terms: Iterable[Mapping[str, Any]], namespace: str) -> tuple[AffinityTerm, ...]:
    compiled = (compile_term(t, namespace) for t in terms)
    return tuple(t for t in compiled if t is not None)


def compile_weighted(terms: Iterable[Mapping[str, Any]],
                     namespace: str) -> tuple[tuple[int, AffinityTerm], ...]:
    result = []
    for weighted in terms:
        term = compile_term(weighted.get("podAffinityTerm") or {}, namespace)
        if term is not None:
            result.append((int(weighted.get("weight") or 0), term))
    return tuple(result)

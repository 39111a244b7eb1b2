"""Mutating admission on create, as upstream's default plugins do it.

Only what changes objects users see is here: DefaultTolerationSeconds gives
every new pod 300-second tolerations for the `not-ready` and `unreachable`
NoExecute taints, so a pod survives a short node outage before the node
lifecycle controller evicts it. (NamespaceLifecycle lives in the REST storage,
next to the namespace lookup it needs.)
"""

from __future__ import annotations

from kubi.api.catalog import ResourceType

DEFAULT_TOLERATION_SECONDS = 300
_NODE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def admit_create(rt: ResourceType, obj: dict) -> None:
    if rt.kind == "Pod" and rt.group == "":
        default_toleration_seconds(obj)


def default_toleration_seconds(pod: dict) -> None:
    spec = pod.setdefault("spec", {})
    tolerations = spec.get("tolerations") or []
    for key in _NODE_TAINTS:
        if any(_tolerates_no_execute(t, key) for t in tolerations):
            continue
        tolerations.append({
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
        })
    spec["tolerations"] = tolerations


def _tolerates_no_execute(toleration: dict, key: str) -> bool:
    """Whether an existing toleration already covers `key:NoExecute` (upstream
    skips adding its default then)."""
    if toleration.get("effect") not in ("", None, "NoExecute"):
        return False
    if toleration.get("operator") == "Exists" and not toleration.get("key"):
        return True
    return toleration.get("key") == key

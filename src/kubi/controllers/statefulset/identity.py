"""A StatefulSet's pods as pure data: names, ordinals, identity, storage, health.

Every pod of a StatefulSet `web` is `web-<ordinal>`; its ordinal is read back
from the name, so a pod's place in the set survives its deletion. A pod keeps
its identity through labels (`statefulset.kubernetes.io/pod-name`,
`apps.kubernetes.io/pod-index`), its hostname and subdomain (the governing
Service), and its storage through one PersistentVolumeClaim per
volumeClaimTemplate, named `<template>-<set>-<ordinal>`. `new_versioned_pod`
builds the pod an ordinal should have at the current or the update revision.
Health predicates take `now` so availability (minReadySeconds) stays testable.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from kubi.controllers.ownership import new_controller_ref
from kubi.controllers.podcontrol import pod_from_template
from kubi.controllers.podutil import is_pod_available, is_pod_ready

Obj = dict[str, Any]

KIND = "StatefulSet"
API_VERSION = "apps/v1"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"

_ORDINAL_NAME = re.compile(r"(.*)-([0-9]+)$")
_INT32_MAX = 2**31 - 1


# ---- reading the set


def spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def replicas(sts: Obj) -> int:
    value = spec(sts).get("replicas")
    return 1 if value is None else int(value)


def min_ready_seconds(sts: Obj) -> int:
    return int(spec(sts).get("minReadySeconds") or 0)


def allows_burst(sts: Obj) -> bool:
    return spec(sts).get("podManagementPolicy") == "Parallel"


def strategy_type(sts: Obj) -> str:
    return (spec(sts).get("updateStrategy") or {}).get("type") or ""


def rolling_update(sts: Obj) -> Obj | None:
    """The rollingUpdate block, None when absent (its absence changes some rules)."""
    rolling = (spec(sts).get("updateStrategy") or {}).get("rollingUpdate")
    return rolling if isinstance(rolling, dict) else None


def partition(sts: Obj) -> int:
    rolling = rolling_update(sts)
    return int((rolling or {}).get("partition") or 0)


def start_ordinal(sts: Obj) -> int:
    return int((spec(sts).get("ordinals") or {}).get("start") or 0)


def end_ordinal(sts: Obj) -> int:
    """The last ordinal of the set, inclusive (start - 1 when scaled to zero)."""
    return start_ordinal(sts) + replicas(sts) - 1


def claim_templates(sts: Obj) -> list[Obj]:
    return list(spec(sts).get("volumeClaimTemplates") or [])


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def uid_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def labels_of(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def controller_ref(sts: Obj) -> Obj:
    return new_controller_ref(sts, api_version=API_VERSION, kind=KIND)


# ---- names and ordinals


def parent_and_ordinal(pod_name: str) -> tuple[str, int]:
    """(`web`, 3) for `web-3`; ordinal -1 when the name carries none (or an absurd one)."""
    match = _ORDINAL_NAME.fullmatch(pod_name)
    if match is None:
        return "", -1
    value = int(match.group(2))
    return match.group(1), value if value <= _INT32_MAX else -1


def ordinal(pod: Obj) -> int:
    return parent_and_ordinal(name_of(pod))[1]


def is_member(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(name_of(pod))[0] == name_of(sts)


def in_ordinal_range(pod: Obj, sts: Obj) -> bool:
    return start_ordinal(sts) <= ordinal(pod) <= end_ordinal(sts)


def pod_name(sts: Obj, ordinal_: int) -> str:
    return f"{name_of(sts)}-{ordinal_}"


def claim_name(sts: Obj, template: Obj, ordinal_: int) -> str:
    return f"{name_of(template)}-{name_of(sts)}-{ordinal_}"


def pod_revision(pod: Obj) -> str:
    return labels_of(pod).get(REVISION_LABEL, "")


# ---- identity and storage


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal_ = parent_and_ordinal(name_of(pod))
    md = pod.get("metadata") or {}
    return (ordinal_ >= 0 and parent == name_of(sts)
            and name_of(pod) == pod_name(sts, ordinal_)
            and md.get("namespace") == (sts.get("metadata") or {}).get("namespace")
            and labels_of(pod).get(POD_NAME_LABEL) == name_of(pod))


def storage_matches(sts: Obj, pod: Obj) -> bool:
    """Every claim template is mounted from this ordinal's own claim."""
    ordinal_ = ordinal(pod)
    if ordinal_ < 0:
        return False
    volumes = {v.get("name"): v for v in spec(pod).get("volumes") or ()}
    for template in claim_templates(sts):
        source = (volumes.get(name_of(template)) or {}).get("persistentVolumeClaim")
        if not source or source.get("claimName") != claim_name(sts, template, ordinal_):
            return False
    return True


def claims_for_ordinal(sts: Obj, ordinal_: int) -> dict[str, Obj]:
    """The claims this ordinal needs, keyed by template name, ready to create.

    A claim carries its template's labels plus the set's matchLabels, so the
    set's selector finds its claims too.
    """
    md = sts.get("metadata") or {}
    match_labels = (spec(sts).get("selector") or {}).get("matchLabels") or {}
    claims: dict[str, Obj] = {}
    for template in claim_templates(sts):
        tmd = dict(template.get("metadata") or {})
        tmd.pop("creationTimestamp", None)
        tmd["name"] = claim_name(sts, template, ordinal_)
        tmd["namespace"] = md.get("namespace", "")
        tmd["labels"] = {**(tmd.get("labels") or {}), **match_labels}
        claims[name_of(template)] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": tmd,
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
    return claims


def with_storage(sts: Obj, pod: Obj) -> Obj:
    """A copy of `pod` whose volumes mount this ordinal's claims, replacing same-named ones."""
    pod = copy.deepcopy(pod)
    claims = claims_for_ordinal(sts, ordinal(pod))
    volumes: list[Obj] = [
        {"name": template, "persistentVolumeClaim": {"claimName": name_of(claim)}}
        for template, claim in claims.items()
    ]
    volumes += [v for v in spec(pod).get("volumes") or () if v.get("name") not in claims]
    if volumes:
        pod.setdefault("spec", {})["volumes"] = volumes
    return pod


def with_identity(sts: Obj, pod: Obj) -> Obj:
    """A copy of `pod` with the name, namespace and identity labels of its ordinal."""
    pod = copy.deepcopy(pod)
    ordinal_ = ordinal(pod)
    md = pod.setdefault("metadata", {})
    md["name"] = pod_name(sts, ordinal_)
    md["namespace"] = (sts.get("metadata") or {}).get("namespace", "")
    labels = md.setdefault("labels", {})
    labels[POD_NAME_LABEL] = md["name"]
    labels[POD_INDEX_LABEL] = str(ordinal_)
    return pod


def new_pod(sts: Obj, ordinal_: int) -> Obj:
    """The pod for `ordinal_` built from the set's template, not yet created."""
    pod = pod_from_template(spec(sts).get("template") or {}, sts, controller_ref(sts))
    pod["metadata"]["name"] = pod_name(sts, ordinal_)
    pod = with_identity(sts, pod)
    # Hostname and subdomain are immutable: they are set only at creation.
    pod_spec = pod["spec"]
    pod_spec["hostname"] = name_of(pod)
    if spec(sts).get("serviceName"):
        pod_spec["subdomain"] = spec(sts)["serviceName"]
    return with_storage(sts, pod)


def new_versioned_pod(current_set: Obj, update_set: Obj, current_revision: str,
                      update_revision: str, ordinal_: int) -> Obj:
    """The pod for `ordinal_` at the revision its position calls for.

    Under RollingUpdate, ordinals below the partition (or, without a
    rollingUpdate block, below currentReplicas) stay at the current revision;
    every other ordinal, and every pod under OnDelete, gets the update revision.
    """
    start = start_ordinal(current_set)
    rolling = rolling_update(current_set)
    if rolling is None:
        current_replicas = int((current_set.get("status") or {}).get("currentReplicas") or 0)
        keep_current = (strategy_type(current_set) == "RollingUpdate"
                        and ordinal_ < start + current_replicas)
    else:
        keep_current = ordinal_ < start + partition(current_set)
    source, revision = ((current_set, current_revision) if keep_current
                        else (update_set, update_revision))
    pod = new_pod(source, ordinal_)
    pod["metadata"]["labels"][REVISION_LABEL] = revision
    return pod


# ---- health


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_created(pod: Obj) -> bool:
    """Known to the API server: it has a phase."""
    return phase(pod) != ""


def is_pending(pod: Obj) -> bool:
    return phase(pod) == "Pending"


def is_finished(pod: Obj) -> bool:
    return phase(pod) in ("Failed", "Succeeded")


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_running_and_ready(pod: Obj) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def is_running_and_available(pod: Obj, min_ready: int, now: float) -> bool:
    return phase(pod) == "Running" and is_pod_available(pod, min_ready, now)


def is_unavailable(pod: Obj, min_ready: int, now: float) -> bool:
    """Not created, terminating, not ready, or ready for less than minReadySeconds."""
    return (not is_created(pod) or is_terminating(pod)
            or not is_running_and_available(pod, min_ready, now))


def scaled_value(value: int | str | None, total: int, default: int = 1) -> int:
    """An int-or-percent as a count of `total`, percentages rounded down."""
    if value is None:
        return default
    if isinstance(value, str) and value.endswith("%"):
        return int(value[:-1]) * total // 100
    return int(value)


def max_unavailable(sts: Obj) -> int:
    """rollingUpdate.maxUnavailable as a pod count: 1 when unset, never below 1."""
    raw = (rolling_update(sts) or {}).get("maxUnavailable")
    return max(scaled_value(raw, replicas(sts)), 1)


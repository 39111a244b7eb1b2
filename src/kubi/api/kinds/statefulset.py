"""apps/v1 StatefulSet: defaults and validation as upstream v1.33 has them.

Two upstream particularities are kept on purpose. The pod template is checked
only for its labels and annotations (and restartPolicy), not as a full PodSpec:
a StatefulSet with a bad template is accepted and its pods fail at creation.
volumeClaimTemplates are defaulted (they are printed back as full PVC objects,
`apiVersion`/`kind` and `status.phase: Pending` included) but not validated.
On update only replicas, ordinals, template, updateStrategy,
persistentVolumeClaimRetentionPolicy and minReadySeconds may change.
"""

from __future__ import annotations

import copy
from typing import Any

from kubi.api.errors import FieldError, forbidden, invalid, not_supported, required
from kubi.api.hooks import defaulter, validator
from kubi.api.kinds import meta
from kubi.api.kinds.podspec_defaults import default_pvc_spec, ensure_template_metadata
from kubi.api.kinds.workloads import (
    _GREATER,
    collision_count,
    default_workload_template,
    go_int_or_string,
    int_or_percent_value,
    not_more_than_100_percent,
    positive_int_or_percent,
    selector_mismatch,
    selector_usable,
    validate_counts,
    validate_meta,
)

UPDATE_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
_MUTABLE = (
    "replicas",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "ordinals",
    "persistentVolumeClaimRetentionPolicy",
)
_RETENTION = ("Retain", "Delete")


@defaulter("apps/v1", "StatefulSet")
def default_stateful_set(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    rolling = strategy.get("rollingUpdate")
    if (
        strategy["type"] == "RollingUpdate"
        and isinstance(rolling, dict)
        and rolling.get("partition") is None
    ):
        rolling["partition"] = 0
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(retention, dict):
        retention = spec["persistentVolumeClaimRetentionPolicy"] = {}
    for key in ("whenDeleted", "whenScaled"):
        if not retention.get(key):
            retention[key] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_workload_template(obj)
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            default_claim_template(claim)


def default_claim_template(claim: dict) -> None:
    """A claim template is a whole PersistentVolumeClaim once serialized."""
    claim.setdefault("apiVersion", "v1")
    claim.setdefault("kind", "PersistentVolumeClaim")
    ensure_template_metadata(claim)
    spec = claim.get("spec")
    if not isinstance(spec, dict):
        spec = claim["spec"] = {}
    default_pvc_spec(spec)
    status = claim.get("status")
    if not isinstance(status, dict):
        status = claim["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Pending"


def _validate_update_strategy(strategy: dict, path: str) -> list[FieldError]:
    kind = strategy.get("type") or ""
    rolling = strategy.get("rollingUpdate")
    if not kind:
        return [required(path)]
    if kind == "OnDelete":
        if rolling is not None:
            return [
                invalid(
                    f"{path}.rollingUpdate",
                    meta.GoLiteral("&apps.RollingUpdateStatefulSetStrategy{...}"),
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            ]
        return []
    if kind == "RollingUpdate":
        if rolling is None:
            return []
        rpath = f"{path}.rollingUpdate"
        errs = meta.validate_nonnegative(rolling.get("partition", 0), f"{rpath}.partition")
        unavailable = rolling.get("maxUnavailable")
        if unavailable is not None:
            upath = f"{rpath}.maxUnavailable"
            errs.extend(positive_int_or_percent(unavailable, upath))
            if int_or_percent_value(unavailable) == 0:
                errs.append(invalid(upath, go_int_or_string(unavailable), "cannot be 0"))
            errs.extend(not_more_than_100_percent(unavailable, upath))
        return errs
    shown = meta.GoLiteral(
        f'apps.StatefulSetUpdateStrategy{{Type:"{kind}", RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}'
    )
    return [invalid(path, shown, "must be 'RollingUpdate' or 'OnDelete'")]


def validate_stateful_set_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    errs: list[FieldError] = []
    policy = spec.get("podManagementPolicy") or ""
    if not policy:
        errs.append(required(f"{path}.podManagementPolicy"))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(
            invalid(f"{path}.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'")
        )
    errs.extend(
        _validate_update_strategy(spec.get("updateStrategy") or {}, f"{path}.updateStrategy")
    )
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            value = retention.get(key) or ""
            if value not in _RETENTION:
                errs.append(
                    not_supported(
                        f"{path}.persistentVolumeClaimRetentionPolicy.{key}", value, _RETENTION
                    )
                )
    errs.extend(meta.validate_nonnegative(spec.get("replicas", 0), f"{path}.replicas"))
    errs.extend(
        meta.validate_nonnegative(spec.get("minReadySeconds", 0), f"{path}.minReadySeconds")
    )
    if spec.get("ordinals") is not None:
        errs.extend(
            meta.validate_nonnegative(
                (spec["ordinals"] or {}).get("start", 0), f"{path}.ordinals.start"
            )
        )
    sel = spec.get("selector")
    if sel is None:
        errs.append(required(f"{path}.selector"))
    else:
        errs.extend(meta.validate_label_selector(sel, f"{path}.selector"))
        if not (sel.get("matchLabels") or sel.get("matchExpressions")):
            errs.append(
                invalid(
                    f"{path}.selector",
                    meta.go_label_selector(sel),
                    "empty selector is invalid for statefulset",
                )
            )
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    tpath = f"{path}.template"
    if not selector_usable(sel):
        errs.append(invalid(f"{path}.selector", meta.go_label_selector(sel), ""))
    else:
        errs.extend(selector_mismatch(sel, template, tpath))
        tmeta = template.get("metadata") or {}
        errs.extend(meta.validate_labels(tmeta.get("labels"), f"{tpath}.labels"))
        errs.extend(meta.validate_annotations(tmeta.get("annotations"), f"{tpath}.annotations"))
    tspec = template.get("spec") or {}
    restart = tspec.get("restartPolicy") or ""
    if restart != "Always":
        errs.append(not_supported(f"{tpath}.spec.restartPolicy", restart, ("Always",)))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(
            forbidden(
                f"{tpath}.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in StatefulSet is not Supported",
            )
        )
    return errs


def _comparable(spec: dict) -> Any:
    # Go compares nil and empty collections as equal.
    if isinstance(spec, dict):
        return {k: _comparable(v) for k, v in spec.items() if v not in (None, [], {})}
    if isinstance(spec, list):
        return [_comparable(v) for v in spec]
    return spec


@validator("apps/v1", "StatefulSet")
def validate_stateful_set(obj: dict, old: dict | None, subresource: str = "") -> list[FieldError]:
    if subresource == "status" and old is not None:
        return _status_update(obj, old)
    spec = obj.get("spec") or {}
    errs = validate_meta(obj, old, meta.dns1123_label)
    errs.extend(validate_stateful_set_spec(spec))
    if old is not None:
        munged = copy.deepcopy(spec)
        old_spec = old.get("spec") or {}
        for key in _MUTABLE:
            munged.pop(key, None)
            if key in old_spec:
                munged[key] = old_spec[key]
        if _comparable(munged) != _comparable(old_spec):
            errs.append(forbidden("spec", UPDATE_FORBIDDEN))
    return errs


def _status_update(obj: dict, old: dict) -> list[FieldError]:
    status = obj.get("status") or {}
    keys = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas")
    keys += tuple(k for k in ("observedGeneration", "collisionCount") if status.get(k) is not None)
    pairs = (
        ("readyReplicas", "replicas", _GREATER),
        ("currentReplicas", "replicas", _GREATER),
        ("updatedReplicas", "replicas", _GREATER),
        ("availableReplicas", "replicas", _GREATER),
        ("availableReplicas", "readyReplicas", "cannot be greater than status.readyReplicas"),
    )
    errs = validate_counts(status, "status", keys, pairs)
    errs.extend(
        meta.validate_object_meta_update(obj.get("metadata") or {}, old.get("metadata") or {})
    )
    return errs + collision_count(status, old.get("status") or {})

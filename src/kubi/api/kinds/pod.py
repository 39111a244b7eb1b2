"""Pods and PodTemplates (core/v1): defaults, preparation and validation.

A Pod is defaulted like any PodSpec plus its Pod-only extras; on create it is
prepared as upstream's strategy and admission chain leave it: status reset to
`Pending` with its QoS class, the `default` service account, priority 0 with
`PreemptLowerPriority` (no PriorityClass lookup: only the two built-in system
classes are known), and the SchedulingGated condition when gated. Updates may
change only images, activeDeadlineSeconds, tolerations (additions) and the
terminationGracePeriodSeconds special case; anything else fails with
upstream's message followed by a short diff of the fields that changed.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from kubi.api.errors import FieldError, forbidden, invalid, required
from kubi.api.hooks import defaulter, preparer, validator
from kubi.api.kinds import meta
from kubi.api.kinds.container_validation import validate_image_whitespace
from kubi.api.kinds.podspec_defaults import default_pod, default_pod_template
from kubi.api.kinds.podspec_validation import (
    validate_pod_spec,
    validate_pod_template_spec,
    validate_tolerations,
)
from kubi.api.quantity import Quantity, parse_quantity

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
UPDATABLE_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)
_MAX_INT32 = 2**31 - 1


# -- QoS --------------------------------------------------------------------------------


def _positive(resources: Any) -> dict[str, Quantity]:
    found: dict[str, Quantity] = {}
    for name, value in (resources or {}).items():
        if name not in ("cpu", "memory"):
            continue
        try:
            q = parse_quantity(value)
        except ValueError:
            continue
        if q.sign() > 0:
            found[name] = q
    return found


def compute_qos_class(pod: dict) -> str:
    """Guaranteed, Burstable or BestEffort, from the cpu/memory of every (init) container."""
    spec = pod.get("spec") or {}
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for ctr in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        resources = (ctr or {}).get("resources") or {}
        for name, q in _positive(resources.get("requests")).items():
            requests[name] = requests[name] + q if name in requests else q
        ctr_limits = _positive(resources.get("limits"))
        for name, q in ctr_limits.items():
            limits[name] = limits[name] + q if name in limits else q
        if not {"cpu", "memory"} <= set(ctr_limits):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    # Guaranteed: every container limits cpu and memory, and requests equal limits.
    matched = all(name in limits and limits[name] == q for name, q in requests.items())
    if guaranteed and matched and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


# -- hooks ------------------------------------------------------------------------------


@defaulter("v1", "Pod")
def _default_pod(pod: dict) -> None:
    default_pod(pod)


@preparer("v1", "Pod")
def prepare_pod(pod: dict, old: dict | None) -> None:
    if old is not None:
        return
    spec = pod.setdefault("spec", {})
    # Its priority and service account are admission's (apiserver/admission.py).
    status: dict[str, Any] = {"phase": "Pending", "qosClass": compute_qos_class(pod)}
    if spec.get("schedulingGates"):
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": None,
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
            }
        ]
    pod["status"] = status


@validator("v1", "Pod")
def validate_pod(pod: dict, old: dict | None, subresource: str = "") -> list[FieldError]:
    if subresource == "status" and old is not None:
        return validate_pod_status_update(pod, old)
    if subresource == "ephemeralcontainers" and old is not None:
        return validate_ephemeral_update(pod, old)
    if subresource not in ("", "status"):
        return []
    if old is None:
        return validate_pod_create(pod)
    return validate_pod_update(pod, old)


def _pod_annotations(pod: dict) -> list[FieldError]:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    path = "metadata.annotations"
    errs: list[FieldError] = []
    if MIRROR_ANNOTATION in annotations and not (pod.get("spec") or {}).get("nodeName"):
        errs.append(
            invalid(
                f"{path}[{MIRROR_ANNOTATION}]",
                annotations[MIRROR_ANNOTATION],
                "must set spec.nodeName if mirror pod annotation is set",
            )
        )
    cost = annotations.get(DELETION_COST_ANNOTATION)
    if cost is not None:
        try:
            ok = -(2**31) <= int(cost, 10) <= _MAX_INT32
        except ValueError:
            ok = False
        if not ok:
            errs.append(
                invalid(f"{path}[{DELETION_COST_ANNOTATION}]", cost, "must be a 32bit integer")
            )
    return errs


def _metadata_and_spec(pod: dict) -> list[FieldError]:
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    errs = meta.validate_object_meta(md, namespaced=True, name_fn=meta.dns1123_subdomain)
    errs.extend(_pod_annotations(pod))
    errs.extend(validate_pod_spec(spec, "spec", pod_name=md.get("name") or "", is_pod=True))
    if not spec.get("serviceAccountName"):
        for vi, volume in enumerate(spec.get("volumes") or []):
            for si, source in enumerate(
                ((volume or {}).get("projected") or {}).get("sources") or []
            ):
                if (source or {}).get("serviceAccountToken") is not None:
                    errs.append(
                        forbidden(
                            f"spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                            "must not be specified when serviceAccountName is not set",
                        )
                    )
    for key in ("containers", "initContainers"):
        for i, ctr in enumerate(spec.get(key) or []):
            errs.extend(validate_image_whitespace(ctr or {}, f"spec.{key}[{i}]"))
    return errs


def validate_pod_create(pod: dict) -> list[FieldError]:
    errs = _metadata_and_spec(pod)
    spec = pod.get("spec") or {}
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and spec.get("schedulingGates"):
        errs.append(
            forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared")
        )
    return errs


# -- updates ------------------------------------------------------------------------------


def _normalized(value: Any) -> Any:
    # Go compares nil and empty slices/maps as equal, and the v1-only mirror field
    # `serviceAccount` has no internal counterpart.
    if isinstance(value, dict):
        return {
            k: _normalized(v)
            for k, v in value.items()
            if v not in (None, [], {}) and k != "serviceAccount"
        }
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _spec_diff(old: dict, new: dict) -> str:
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        for sign, side in (("-", old), ("+", new)):
            if key in side:
                shown = orjson.dumps(side[key]).decode()
                lines.append(f"{sign} \t{key[0].upper()}{key[1:]}: {shown},")
    lines.append("  }")
    return "\n".join(lines)


def _container_updates(new: list, old: list, path: str) -> tuple[list[FieldError], bool]:
    if len(new) != len(old):
        return [forbidden(path, "pod updates may not add or remove containers")], True
    errs: list[FieldError] = []
    for i, ctr in enumerate(new):
        image = (ctr or {}).get("image") or ""
        if not image:
            errs.append(required(f"{path}[{i}].image"))
        if image != image.strip():
            errs.append(
                invalid(f"{path}[{i}].image", image, "must not have leading or trailing whitespace")
            )
    return errs, False


def _only_added_tolerations(new: list, old: list, path: str) -> list[FieldError]:
    for tol in old:
        relaxed = {k: v for k, v in (tol or {}).items() if k != "tolerationSeconds"}
        if not any(
            {k: v for k, v in (n or {}).items() if k != "tolerationSeconds"} == relaxed for n in new
        ):
            return [
                forbidden(
                    path, "existing toleration can not be modified except its tolerationSeconds"
                )
            ]
    return validate_tolerations(new, path)


def validate_pod_update(pod: dict, old: dict) -> list[FieldError]:
    errs = meta.validate_object_meta_update(pod.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(_metadata_and_spec(pod))
    new_md, old_md = pod.get("metadata") or {}, old.get("metadata") or {}
    new_ann, old_ann = new_md.get("annotations") or {}, old_md.get("annotations") or {}
    if old_ann.get(MIRROR_ANNOTATION) != new_ann.get(MIRROR_ANNOTATION):
        verb = "add" if MIRROR_ANNOTATION not in old_ann else "remove or update"
        errs.append(
            forbidden(
                f"metadata.annotations[{MIRROR_ANNOTATION}]",
                f"may not {verb} mirror pod annotation",
            )
        )
    spec, old_spec = pod.get("spec") or {}, old.get("spec") or {}
    for key in ("containers", "initContainers"):
        more, stop = _container_updates(spec.get(key) or [], old_spec.get(key) or [], f"spec.{key}")
        errs.extend(more)
        if stop:
            return errs
    deadline, old_deadline = (
        spec.get("activeDeadlineSeconds"),
        old_spec.get("activeDeadlineSeconds"),
    )
    if deadline is not None:
        if not 0 <= deadline <= _MAX_INT32:
            return errs + [
                invalid(
                    "spec.activeDeadlineSeconds",
                    deadline,
                    meta.inclusive_range_error(0, _MAX_INT32),
                )
            ]
        if old_deadline is not None and old_deadline < deadline:
            return errs + [
                invalid(
                    "spec.activeDeadlineSeconds",
                    deadline,
                    "must be less than or equal to previous value",
                )
            ]
    elif old_deadline is not None:
        errs.append(
            invalid(
                "spec.activeDeadlineSeconds",
                None,
                "must not update from a positive integer to nil value",
            )
        )
    errs.extend(
        _only_added_tolerations(
            spec.get("tolerations") or [], old_spec.get("tolerations") or [], "spec.tolerations"
        )
    )
    new_gates = [(g or {}).get("name") for g in spec.get("schedulingGates") or []]
    old_gates = {(g or {}).get("name") for g in old_spec.get("schedulingGates") or []}
    for i, name in enumerate(new_gates):
        if name not in old_gates:
            errs.append(
                forbidden(
                    f"spec.schedulingGates[{i}].name",
                    f"only deletion is allowed, but found new scheduling gate '{name}'",
                )
            )
    munged = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        for ctr, old_ctr in zip(munged.get(key) or [], old_spec.get(key) or []):
            if isinstance(ctr, dict):
                ctr["image"] = (old_ctr or {}).get("image")
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        munged[key] = old_spec.get(key)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if (
        isinstance(old_grace, int)
        and old_grace < 0
        and munged.get("terminationGracePeriodSeconds") == 1
    ):
        munged["terminationGracePeriodSeconds"] = old_grace
    if old_spec.get("schedulingGates") and munged.get("nodeSelector") != old_spec.get(
        "nodeSelector"
    ):
        # A gated pod may gain nodeSelector terms; other selector changes are still rejected below.
        added_only = all(
            (munged.get("nodeSelector") or {}).get(k) == v
            for k, v in (old_spec.get("nodeSelector") or {}).items()
        )
        if added_only:
            munged["nodeSelector"] = old_spec.get("nodeSelector")
    new_n, old_n = _normalized(munged), _normalized(old_spec)
    if new_n != old_n:
        detail = "pod updates may not change fields other than " + ",".join(UPDATABLE_FIELDS)
        errs.append(forbidden("spec", detail + "\n" + _spec_diff(old_n, new_n)))
    return errs


def validate_ephemeral_update(pod: dict, old: dict) -> list[FieldError]:
    """The ephemeralcontainers subresource: existing ephemeral containers are fixed."""
    errs = meta.validate_object_meta_update(pod.get("metadata") or {}, old.get("metadata") or {})
    errs.extend(_metadata_and_spec(pod))
    if MIRROR_ANNOTATION in ((old.get("metadata") or {}).get("annotations") or {}):
        return [forbidden("", "static pods do not support ephemeral containers")]
    current = {
        (c or {}).get("name"): c for c in (pod.get("spec") or {}).get("ephemeralContainers") or []
    }
    path = "spec.ephemeralContainers"
    for before in (old.get("spec") or {}).get("ephemeralContainers") or []:
        name = (before or {}).get("name")
        if name not in current:
            errs.append(
                forbidden(path, f'existing ephemeral containers "{name}" may not be removed\n')
            )
        elif _normalized(current[name]) != _normalized(before):
            errs.append(
                forbidden(path, f'existing ephemeral containers "{name}" may not be changed\n')
            )
    return errs


def validate_pod_status_update(pod: dict, old: dict) -> list[FieldError]:
    errs = meta.validate_object_meta_update(pod.get("metadata") or {}, old.get("metadata") or {})
    status, old_status = pod.get("status") or {}, old.get("status") or {}
    for i, condition in enumerate(status.get("conditions") or []):
        kind = (condition or {}).get("type") or ""
        if kind not in ("PodScheduled", "Ready", "Initialized"):
            errs.extend(
                invalid(f"metadata.conditions[{i}].Type", kind, m)
                for m in meta.is_qualified_name(kind)
            )
    if (pod.get("spec") or {}).get("nodeName") != (old.get("spec") or {}).get("nodeName"):
        errs.append(forbidden("status.nodeName", "may not be changed directly"))
    nominated = status.get("nominatedNodeName") or ""
    if nominated and nominated != old_status.get("nominatedNodeName"):
        errs.extend(
            invalid("status.nominatedNodeName", nominated, m)
            for m in meta.dns1123_subdomain(nominated)
        )
    errs.extend(
        meta.immutable(
            status.get("qosClass") or "", old_status.get("qosClass") or "", "status.qosClass"
        )
    )
    return errs


# -- PodTemplate ------------------------------------------------------------------------------


@defaulter("v1", "PodTemplate")
def _default_pod_template_object(obj: dict) -> None:
    default_pod_template(obj.get("template"))


@validator("v1", "PodTemplate")
def validate_pod_template_object(
    obj: dict, old: dict | None, subresource: str = ""
) -> list[FieldError]:
    md = obj.get("metadata") or {}
    if old is None:
        errs = meta.validate_object_meta(md, namespaced=True, name_fn=meta.dns1123_subdomain)
    else:
        errs = meta.validate_object_meta_update(md, old.get("metadata") or {})
    errs.extend(validate_pod_template_spec(obj.get("template"), "template"))
    return errs

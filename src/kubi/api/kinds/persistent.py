"""core/v1 PersistentVolume and PersistentVolumeClaim: defaults, server-set
status and validation as upstream v1.33 has them.

A PV's source and a claim's spec are fixed once created, with upstream's
exceptions: a claim may grow its storage request, may have `volumeName` set
once (by the binder), and a bound claim may change its storage request. The
immutability check compares the specs after masking exactly those fields.
`validate_claim_spec` is public because StatefulSet volumeClaimTemplates and
ephemeral volumes validate the same spec.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubi.api.errors import FieldError, forbidden, invalid, not_supported, required
from kubi.api.hooks import defaulter, preparer, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import (
    GoLiteral,
    meta_create,
    meta_update,
    positive_quantity,
    quantity,
    section,
)
from kubi.api.kinds.node import resource_quantity_value
from kubi.api.kinds.pv_sources import SOURCE_FIELDS, node_affinity_errors, volume_source_errors
from kubi.api.meta import now_rfc3339

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
CLAIM_SPEC_FROZEN = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName "
    "for bound claims"
)


def access_mode_errors(modes: list[Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    once_pod = other = False
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(not_supported(path, mode, ACCESS_MODES))
        elif mode == "ReadWriteOncePod":
            once_pod = True
        else:
            other = True
    if once_pod and other:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _class_name(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, msg) for msg in m.dns1123_subdomain(value)]


# -- PersistentVolume ----------------------------------------------------------------


@defaulter("v1", "PersistentVolume")
def default_persistent_volume(obj: dict) -> None:
    spec = section(obj, "spec")
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    if isinstance(spec.get("hostPath"), dict) and spec["hostPath"].get("type") is None:
        spec["hostPath"]["type"] = ""
    status = section(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


@preparer("v1", "PersistentVolume")
def prepare_persistent_volume(obj: dict, old: dict | None) -> None:
    if old is None:
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": now_rfc3339()}
        return
    status, old_status = section(obj, "status"), old.get("status") or {}
    # A phase change stamps the transition time unless the writer set it too.
    if status.get("phase") != old_status.get("phase") and status.get(
        "lastPhaseTransitionTime"
    ) == old_status.get("lastPhaseTransitionTime"):
        status["lastPhaseTransitionTime"] = now_rfc3339()


def _capacity_literal(capacity: dict) -> GoLiteral:
    if not capacity:
        return GoLiteral("core.ResourceList(nil)")
    inner = ", ".join(f'"{k}":"{v}"' for k, v in sorted(capacity.items()))
    return GoLiteral("core.ResourceList{" + inner + "}")


def _pv_spec(spec: dict, pv_name: str) -> list[FieldError]:
    errs: list[FieldError] = []
    modes = spec.get("accessModes") or []
    if not modes:
        errs.append(required("spec.accessModes"))
    errs.extend(access_mode_errors(modes, "spec.accessModes"))
    capacity = spec.get("capacity") or {}
    if not capacity:
        errs.append(required("spec.capacity"))
    if "storage" not in capacity or len(capacity) > 1:
        errs.append(not_supported("spec.capacity", _capacity_literal(capacity), ["storage"]))
    for name, value in sorted(capacity.items()):
        path = f"spec.capacity[{name}]"
        q = quantity(value)
        if q is not None and q.value() < 0:
            errs.append(invalid(path, q.value(), "must be a valid resource quantity"))
        errs.extend(positive_quantity(value, path))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy and policy not in RECLAIM_POLICIES:
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    affinity_set = spec.get("nodeAffinity") is not None
    if affinity_set:
        errs.extend(node_affinity_errors(spec["nodeAffinity"], "spec.nodeAffinity"))
    errs.extend(volume_source_errors(spec, pv_name, affinity_set))
    if spec.get("storageClassName"):
        errs.extend(_class_name(spec["storageClassName"], "spec.storageClassName"))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(not_supported("spec.volumeMode", mode, VOLUME_MODES))
    return errs


def _source_of(spec: dict) -> dict:
    return {k: spec[k] for k in SOURCE_FIELDS if spec.get(k) is not None}


@validator("v1", "PersistentVolume")
def validate_persistent_volume(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    if old is not None and subresource == "status":
        return meta_update(obj, old)
    name = (obj.get("metadata") or {}).get("name") or ""
    spec = obj.get("spec") or {}
    errs = meta_create(obj, namespaced=False, name_fn=m.dns1123_subdomain) + _pv_spec(spec, name)
    if old is None:
        return errs
    old_spec = old.get("spec") or {}
    errs = meta_update(obj, old) + errs
    new_source, old_source = _source_of(spec), _source_of(old_spec)
    # Adding a controllerExpandSecretRef later is allowed.
    old_csi, new_csi = old_source.get("csi"), new_source.get("csi")
    if old_csi and new_csi and old_csi.get("controllerExpandSecretRef") is None:
        new_source["csi"] = {k: v for k, v in new_csi.items() if k != "controllerExpandSecretRef"}
    if new_source != old_source:
        errs.append(
            forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation\n"
                + _diff("core.PersistentVolumeSource", old_source, new_source),
            )
        )
    errs.extend(m.immutable(spec.get("volumeMode"), old_spec.get("volumeMode"), "volumeMode"))
    if (
        old_spec.get("nodeAffinity") is not None
        and spec.get("nodeAffinity") != old_spec["nodeAffinity"]
    ):
        errs.append(
            invalid(
                "nodeAffinity",
                spec.get("nodeAffinity"),
                m.FIELD_IMMUTABLE + ", except for updating from beta label to GA",
            )
        )
    return errs


def _diff(type_name: str, old: dict, new: dict) -> str:
    """A short report of the changed fields, shaped like the diff upstream appends."""
    lines = [f"  {type_name}{{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key in old:
                lines.append(f"- \t{key}: {json.dumps(old[key], sort_keys=True)},")
            if key in new:
                lines.append(f"+ \t{key}: {json.dumps(new[key], sort_keys=True)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


# -- PersistentVolumeClaim -------------------------------------------------------------


@defaulter("v1", "PersistentVolumeClaim")
def default_claim(obj: dict) -> None:
    spec = section(obj, "spec")
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    status = section(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"


@preparer("v1", "PersistentVolumeClaim")
def prepare_claim(obj: dict, old: dict | None) -> None:
    spec = section(obj, "spec")
    old_spec = (old or {}).get("spec") or {}
    # VolumeAttributesClass is off by default in v1.33: the field is dropped
    # unless the stored claim already uses it.
    if old_spec.get("volumeAttributesClassName") is None:
        spec.pop("volumeAttributesClassName", None)
    if old is None:
        obj["status"] = {"phase": "Pending"}


def validate_claim_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """A PersistentVolumeClaimSpec, wherever it appears."""
    errs: list[FieldError] = []
    modes = spec.get("accessModes") or []
    if not modes:
        errs.append(required(f"{path}.accessModes", "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        errs.extend(m.validate_label_selector(spec["selector"], f"{path}.selector"))
    errs.extend(access_mode_errors(modes, f"{path}.accessModes"))
    requests = (spec.get("resources") or {}).get("requests") or {}
    storage_path = f"{path}.resources[storage]"
    if "storage" not in requests:
        errs.append(required(storage_path))
    else:
        problems = positive_quantity(requests["storage"], storage_path)
        errs.extend(
            problems or resource_quantity_value("storage", requests["storage"], storage_path)
        )
    if spec.get("storageClassName"):
        errs.extend(_class_name(spec["storageClassName"], f"{path}.storageClassName"))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(not_supported(f"{path}.volumeMode", mode, VOLUME_MODES))
    source, source_ref = spec.get("dataSource"), spec.get("dataSourceRef")
    if source is not None:
        errs.extend(_data_source(source, f"{path}.dataSource"))
    if source_ref is not None:
        errs.extend(_data_source(source_ref, f"{path}.dataSourceRef"))
        namespace = source_ref.get("namespace")
        if namespace:
            errs.extend(
                invalid(f"{path}.dataSourceRef.namespace", namespace, msg)
                for msg in m.dns1123_label(namespace)
            )
    if source_ref is not None and source_ref.get("namespace"):
        if source is not None:
            errs.append(
                invalid(
                    path,
                    f"{path}.dataSource",
                    "may not be specified when dataSourceRef.namespace is specified",
                )
            )
    elif source is not None and source_ref is not None:
        same = all(source.get(k) == source_ref.get(k) for k in ("apiGroup", "kind", "name"))
        if not same:
            errs.append(invalid(path, f"{path}.dataSource", "must match dataSourceRef"))
    return errs


def _data_source(ref: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not ref.get("name"):
        errs.append(required(f"{path}.name"))
    kind = ref.get("kind") or ""
    if not kind:
        errs.append(required(f"{path}.kind"))
    group = ref.get("apiGroup") or ""
    if not group and kind != "PersistentVolumeClaim":
        errs.append(
            invalid(
                path, kind, "must be 'PersistentVolumeClaim' when referencing the default apiGroup"
            )
        )
    if group:
        errs.extend(
            invalid(f"{path}.apiGroup", group, msg) for msg in m.is_dns1123_subdomain(group)
        )
    return errs


@validator("v1", "PersistentVolumeClaim")
def validate_claim(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    if old is not None and subresource == "status":
        return meta_update(obj, old) + _claim_status(obj)
    errs = meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain)
    errs.extend(validate_claim_spec(obj.get("spec") or {}))
    if old is None:
        return errs
    return meta_update(obj, old) + errs + _claim_update(obj, old)


def _claim_status(obj: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    if not (obj.get("spec") or {}).get("accessModes"):
        errs.append(required("Spec.accessModes"))
    for name, value in sorted(((obj.get("status") or {}).get("capacity") or {}).items()):
        q = quantity(value)
        if q is not None and q.value() < 0:
            errs.append(
                invalid(f"status.capacity[{name}]", q.value(), "must be a valid resource quantity")
            )
    return errs


def _claim_update(obj: dict, old: dict) -> list[FieldError]:
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    new_mask, old_mask = _comparable(spec), _comparable(old_spec)
    if not old_spec.get("volumeName"):
        # The binder sets volumeName once.
        _set(old_mask, "volumeName", spec.get("volumeName"))
    errs: list[FieldError] = []
    new_ann = (obj.get("metadata") or {}).get("annotations") or {}
    old_ann = (old.get("metadata") or {}).get("annotations") or {}
    if _class_upgraded_from_annotation(old_ann, new_ann, old_spec, spec):
        new_mask.pop("storageClassName", None)
    else:
        errs.extend(
            m.immutable(
                new_ann.get(BETA_CLASS_ANNOTATION, ""),
                old_ann.get(BETA_CLASS_ANNOTATION, ""),
                f"metadata.annotations.{BETA_CLASS_ANNOTATION}",
            )
        )
        # Setting a class on a claim that had none is allowed when it agrees
        # with the beta annotation, if any.
        new_class = spec.get("storageClassName")
        class_was_unset = new_class is not None and old_spec.get("storageClassName") is None
        agrees = BETA_CLASS_ANNOTATION not in old_ann or new_class == old_ann[BETA_CLASS_ANNOTATION]
        if class_was_unset and agrees:
            new_mask.pop("storageClassName", None)
    phase = ((obj.get("status") or old.get("status")) or {}).get("phase")
    if phase == "Bound":
        requests = (new_mask.get("resources") or {}).get("requests")
        if requests is not None:
            old_storage = ((old_mask.get("resources") or {}).get("requests") or {}).get("storage")
            _set(requests, "storage", old_storage)
        if "volumeAttributesClassName" in new_mask:
            _set(new_mask, "volumeAttributesClassName", old_mask.get("volumeAttributesClassName"))
    if new_mask != old_mask:
        errs.append(
            forbidden(
                "spec",
                CLAIM_SPEC_FROZEN
                + "\n"
                + _diff("core.PersistentVolumeClaimSpec", old_mask, new_mask),
            )
        )
    errs.extend(_shrink_errors(spec, old_spec, old))
    errs.extend(m.immutable(spec.get("volumeMode"), old_spec.get("volumeMode"), "volumeMode"))
    if spec.get("volumeAttributesClassName") != old_spec.get("volumeAttributesClassName"):
        errs.append(
            forbidden(
                "spec.volumeAttributesClassName",
                "update is forbidden when the VolumeAttributesClass feature gate is disabled",
            )
        )
    return errs


def _shrink_errors(spec: dict, old_spec: dict, old: dict) -> list[FieldError]:
    new_size = quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage", 0))
    old_size = quantity(((old_spec.get("resources") or {}).get("requests") or {}).get("storage", 0))
    status_size = quantity(((old.get("status") or {}).get("capacity") or {}).get("storage", 0))
    if new_size is None or old_size is None or status_size is None or new_size >= old_size:
        return []
    # Shrinking back toward the real size recovers from a failed expansion.
    if new_size <= status_size:
        return [
            forbidden(
                "spec.resources.requests.storage", "field can not be less than status.capacity"
            )
        ]
    return []


def _comparable(spec: dict) -> dict:
    """A copy of a claim spec with quantities canonical, so "1Gi" equals "1024Mi"."""
    out = copy.deepcopy(spec)
    resources = out.get("resources") or {}
    for field in ("requests", "limits"):
        for name, value in list((resources.get(field) or {}).items()):
            q = quantity(value)
            resources[field][name] = str(q) if q is not None else value
    return out


def _set(target: dict, key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def _class_upgraded_from_annotation(
    old_ann: dict, new_ann: dict, old_spec: dict, spec: dict
) -> bool:
    """A claim may move its class from the beta annotation to storageClassName."""
    if BETA_CLASS_ANNOTATION not in old_ann or old_spec.get("storageClassName") is not None:
        return False
    old_class = old_ann[BETA_CLASS_ANNOTATION]
    if spec.get("storageClassName") != old_class:
        return False
    return BETA_CLASS_ANNOTATION not in new_ann or new_ann[BETA_CLASS_ANNOTATION] == old_class

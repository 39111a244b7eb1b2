"""storage.k8s.io/v1 StorageClass, CSIDriver and CSINode: defaults and
validation as upstream v1.33 has them.

PersistentVolume and PersistentVolumeClaim (core/v1, but storage all the same)
live in `persistent`, imported here so that this module registers every
storage kind. A StorageClass is nearly write-once: its provisioner, parameters,
reclaim policy and binding mode may not change after creation.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
)
from kubi.api.hooks import defaulter, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds import persistent  # noqa: F401  (registers PV and PVC)
from kubi.api.kinds._shared import meta_create, meta_update, qualified_name, section
from kubi.api.kinds.pv_sources import csi_driver_name

MAX_PARAMETERS = 512
MAX_PARAMETERS_SIZE = 256 * 1024
SC_RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
FS_GROUP_POLICIES = ("File", "None", "ReadWriteOnceWithFSType")
LIFECYCLE_MODES = ("Persistent", "Ephemeral")
CSI_NODE_ID_MAX = 192


# -- StorageClass ----------------------------------------------------------------------


@defaulter("storage.k8s.io/v1", "StorageClass")
def default_storage_class(obj: dict) -> None:
    if not obj.get("reclaimPolicy"):
        obj["reclaimPolicy"] = "Delete"
    if not obj.get("volumeBindingMode"):
        obj["volumeBindingMode"] = "Immediate"


def _parameters(params: dict) -> list[FieldError]:
    if len(params) > MAX_PARAMETERS:
        return [too_long("parameters", "", MAX_PARAMETERS)]
    errs: list[FieldError] = []
    size = 0
    for key, value in params.items():
        if not key:
            errs.append(invalid("parameters", key, "field can not be empty."))
        size += len(key.encode()) + len(str(value).encode())
    if size > MAX_PARAMETERS_SIZE:
        errs.append(too_long("parameters", "", MAX_PARAMETERS_SIZE))
    return errs


def _allowed_topologies(terms: list[dict]) -> list[FieldError]:
    errs: list[FieldError] = []
    seen_terms: list[dict[str, set[str]]] = []
    for i, term in enumerate(terms):
        path = f"allowedTopologies[{i}].matchLabelExpressions"
        keyed: dict[str, set[str]] = {}
        for j, req in enumerate(term.get("matchLabelExpressions") or []):
            here = f"{path}[{j}]"
            values = req.get("values") or []
            if not values:
                errs.append(required(f"{here}.values"))
            seen_values: set[str] = set()
            for k, value in enumerate(values):
                if value in seen_values:
                    errs.append(duplicate(f"{here}.values[{k}]", value))
                seen_values.add(value)
            key = req.get("key") or ""
            errs.extend(qualified_name(key, f"{here}.key"))
            if key in keyed:
                errs.append(duplicate(f"{here}.key", key))
            keyed[key] = seen_values
        if keyed in seen_terms:
            errs.append(duplicate(path, ""))
        seen_terms.append(keyed)
    return errs


@validator("storage.k8s.io/v1", "StorageClass")
def validate_storage_class(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    if old is not None:
        return meta_update(obj, old) + _storage_class_update(obj, old)
    errs = meta_create(obj, namespaced=False, name_fn=m.dns1123_subdomain)
    provisioner = obj.get("provisioner") or ""
    if not provisioner:
        errs.append(required("provisioner"))
    else:
        errs.extend(qualified_name(provisioner.lower(), "provisioner"))
    errs.extend(_parameters(obj.get("parameters") or {}))
    policy = obj.get("reclaimPolicy") or ""
    if policy and policy not in SC_RECLAIM_POLICIES:
        errs.append(not_supported("reclaimPolicy", policy, SC_RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        errs.append(required("volumeBindingMode"))
    elif mode not in BINDING_MODES:
        errs.append(not_supported("volumeBindingMode", mode, BINDING_MODES))
    return errs + _allowed_topologies(obj.get("allowedTopologies") or [])


def _storage_class_update(obj: dict, old: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    if (obj.get("parameters") or {}) != (old.get("parameters") or {}):
        errs.append(forbidden("parameters", "updates to parameters are forbidden."))
    if (obj.get("provisioner") or "") != (old.get("provisioner") or ""):
        errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
    if obj.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    errs.extend(
        m.immutable(obj.get("volumeBindingMode"), old.get("volumeBindingMode"), "volumeBindingMode")
    )
    return errs


# -- CSIDriver -------------------------------------------------------------------------


@defaulter("storage.k8s.io/v1", "CSIDriver")
def default_csi_driver(obj: dict) -> None:
    spec = section(obj, "spec")
    defaults: dict[str, Any] = {
        "attachRequired": True,
        "podInfoOnMount": False,
        "storageCapacity": False,
        "fsGroupPolicy": "ReadWriteOnceWithFSType",
        "volumeLifecycleModes": ["Persistent"],
        "requiresRepublish": False,
        "seLinuxMount": False,
    }
    for key, value in defaults.items():
        if spec.get(key) is None:
            spec[key] = value


def _csi_driver_spec(spec: dict) -> list[FieldError]:
    errs: list[FieldError] = []
    # Upstream spells this path "attachedRequired".
    for key, path in (
        ("attachRequired", "spec.attachedRequired"),
        ("podInfoOnMount", "spec.podInfoOnMount"),
        ("storageCapacity", "spec.storageCapacity"),
    ):
        if spec.get(key) is None:
            errs.append(required(path))
    policy = spec.get("fsGroupPolicy")
    if policy is not None and policy not in FS_GROUP_POLICIES:
        errs.append(not_supported("spec.fsGroupPolicy", policy, FS_GROUP_POLICIES))
    audiences: set[str] = set()
    for i, request in enumerate(spec.get("tokenRequests") or []):
        path = f"spec.tokenRequests[{i}]"
        audience = request.get("audience") or ""
        if audience in audiences:
            errs.append(duplicate(f"{path}.audience", audience))
            continue
        audiences.add(audience)
        seconds = request.get("expirationSeconds")
        if seconds is None:
            continue
        if seconds < 600:
            errs.append(
                invalid(
                    f"{path}.expirationSeconds",
                    seconds,
                    "may not specify a duration less than 10 minutes",
                )
            )
        if seconds > 1 << 32:
            errs.append(
                invalid(
                    f"{path}.expirationSeconds",
                    seconds,
                    "may not specify a duration larger than 2^32 seconds",
                )
            )
    for mode in spec.get("volumeLifecycleModes") or []:
        if mode not in LIFECYCLE_MODES:
            errs.append(not_supported("spec.volumeLifecycleModes", mode, LIFECYCLE_MODES))
    if spec.get("seLinuxMount") is None:
        errs.append(required("spec.seLinuxMount"))
    period = spec.get("nodeAllocatableUpdatePeriodSeconds")
    if period is not None and period < 10:
        errs.append(
            invalid(
                "spec.nodeAllocatableUpdatePeriodSeconds",
                period,
                "must be greater than or equal to 10 seconds",
            )
        )
    return errs


@validator("storage.k8s.io/v1", "CSIDriver")
def validate_csi_driver(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    spec = obj.get("spec") or {}
    if old is None:
        return meta_create(obj, namespaced=False, name_fn=m.dns1123_subdomain) + _csi_driver_spec(
            spec
        )
    old_spec = old.get("spec") or {}
    errs = meta_update(obj, old) + _csi_driver_spec(spec)
    errs.extend(
        m.immutable(
            spec.get("attachRequired"), old_spec.get("attachRequired"), "spec.attachedRequired"
        )
    )
    errs.extend(
        m.immutable(
            spec.get("volumeLifecycleModes"),
            old_spec.get("volumeLifecycleModes"),
            "spec.volumeLifecycleModes",
        )
    )
    return errs


# -- CSINode ---------------------------------------------------------------------------


def _csi_node_drivers(drivers: list[dict]) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, driver in enumerate(drivers):
        path = f"spec.drivers[{i}]"
        name = driver.get("name") or ""
        errs.extend(csi_driver_name(name, f"{path}.name"))
        node_id = driver.get("nodeID") or ""
        if not node_id:
            errs.append(required(f"{path}.nodeID"))
        if len(node_id) > CSI_NODE_ID_MAX:
            errs.append(
                invalid(f"{path}.nodeID", node_id, f"must be {CSI_NODE_ID_MAX} characters or less")
            )
        count = (driver.get("allocatable") or {}).get("count")
        if count is not None and count < 0:
            errs.append(
                invalid(f"{path}.allocatable.count", count, "must be greater than or equal to 0")
            )
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(name)
        keys: set[str] = set()
        for key in driver.get("topologyKeys") or []:
            if not key:
                errs.append(required(path))
            if key in keys:
                errs.append(duplicate(path, key))
            keys.add(key)
            errs.extend(qualified_name(key, path))
    return errs


@validator("storage.k8s.io/v1", "CSINode")
def validate_csi_node(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    drivers = (obj.get("spec") or {}).get("drivers") or []
    errs = meta_create(obj, namespaced=False, name_fn=m.dns1123_subdomain) + _csi_node_drivers(
        drivers
    )
    if old is None:
        return errs
    errs = meta_update(obj, old) + errs
    for before in (old.get("spec") or {}).get("drivers") or []:
        for after in drivers:
            if before.get("name") == after.get("name") and before != after:
                errs.append(invalid("spec.drivers", after, m.FIELD_IMMUTABLE))
    return errs

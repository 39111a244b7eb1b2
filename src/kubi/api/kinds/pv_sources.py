"""The volume sources of a PersistentVolume spec, validated as upstream v1.33
validates them: exactly one source, each with its own required fields.

Sources are tried in upstream's order, because that order decides which one a
"may not specify more than 1 volume type" error blames. The many legacy
in-tree sources need only a few required fields each, so they are a table; the
sources people actually use here (hostPath, local, nfs, csi) have their own
functions. Also here: node selectors, which a PV's nodeAffinity carries.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

from kubi.api.errors import FieldError, forbidden, invalid, not_supported, required, too_long
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import dns_label, dns_subdomain, qualified_name

HOST_PATH_TYPES = (
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
)
MORE_THAN_ONE = "may not specify more than 1 volume type"
_IQN_RE = re.compile(r"iqn\.\d{4}-\d{2}\.([A-Za-z0-9\-.]+)(:[^,;*&$|\s]+)$")
_EUI_RE = re.compile(r"^eui.[A-Za-z0-9]{16}$")
_NAA_RE = re.compile(r"^naa.[A-Za-z0-9]{32}$")


def no_backsteps(value: str, path: str) -> list[FieldError]:
    if ".." in value.replace("\\", "/").split("/"):
        return [invalid(path, value, "must not contain '..'")]
    return []


def csi_driver_name(name: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not name:
        errs.append(required(path))
    if len(name) > 63:
        errs.append(too_long(path, "", 63))
    errs.extend(invalid(path, name, msg) for msg in m.is_dns1123_subdomain(name.lower()))
    return errs


# -- the sources with rules of their own ----------------------------------------------


def _host_path(src: dict, path: str) -> list[FieldError]:
    value = src.get("path") or ""
    if not value:
        return [required(f"{path}.path")]
    errs = no_backsteps(value, f"{path}.path")
    kind = src.get("type")
    if kind is not None and kind not in HOST_PATH_TYPES:
        errs.append(not_supported(f"{path}.type", kind, HOST_PATH_TYPES))
    return errs


def _local(src: dict, path: str) -> list[FieldError]:
    value = src.get("path") or ""
    if not value:
        return [required(f"{path}.path")]
    return no_backsteps(value, f"{path}.path")


def _nfs(src: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not src.get("server"):
        errs.append(required(f"{path}.server"))
    value = src.get("path") or ""
    if not value:
        errs.append(required(f"{path}.path"))
    if not value.startswith("/"):
        errs.append(invalid(f"{path}.path", value, "must be an absolute path"))
    return errs


def _secret_ref(ref: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name, namespace = ref.get("name") or "", ref.get("namespace") or ""
    errs.extend([required(f"{path}.name")] if not name else dns_subdomain(name, f"{path}.name"))
    errs.extend(
        [required(f"{path}.namespace")]
        if not namespace
        else dns_label(namespace, f"{path}.namespace")
    )
    return errs


def _csi(src: dict, path: str) -> list[FieldError]:
    errs = csi_driver_name(src.get("driver") or "", f"{path}.driver")
    if not src.get("volumeHandle"):
        errs.append(required(f"{path}.volumeHandle"))
    for ref in (
        "controllerPublishSecretRef",
        "controllerExpandSecretRef",
        "nodePublishSecretRef",
        "nodeExpandSecretRef",
    ):
        if src.get(ref) is not None:
            errs.extend(_secret_ref(src[ref], f"{path}.{ref}"))
    return errs


def _flex(src: dict, path: str) -> list[FieldError]:
    errs = [] if src.get("driver") else [required(f"{path}.driver")]
    for key in sorted(src.get("options") or {}):
        domain = key.split("/", 1)[0] if "/" in key else key
        normalized = "." + domain.lower()
        if normalized.endswith((".kubernetes.io", ".k8s.io")):
            errs.append(
                invalid(
                    f"{path}.options[{key}]",
                    key,
                    "kubernetes.io and k8s.io namespaces are reserved",
                )
            )
    return errs


def _iqn_errors(value: str, path: str) -> list[FieldError]:
    if not value.startswith(("iqn", "eui", "naa")):
        return [invalid(path, value, "must be valid format")]
    if value.startswith("iqn") and not _IQN_RE.search(value):
        return [invalid(path, value, "must be valid format")]
    if value.startswith("eui") and not _EUI_RE.search(value):
        return [invalid(path, value, "must be valid format")]
    if value.startswith("naa") and not _NAA_RE.search(value):
        return [invalid(path, value, "must be valid format")]
    return []


def _iscsi(src: dict, path: str, pv_name: str) -> list[FieldError]:
    errs: list[FieldError] = []
    portal = src.get("targetPortal") or ""
    if not portal:
        errs.append(required(f"{path}.targetPortal"))
    if src.get("initiatorName") is not None and len(f"{pv_name}:{portal}") > 64:
        errs.append(
            invalid(
                f"{path}.targetportal",
                portal,
                "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if "
                "iscsi.initiatorName is specified.",
            )
        )
    iqn = src.get("iqn") or ""
    errs.extend([required(f"{path}.iqn")] if not iqn else _iqn_errors(iqn, f"{path}.iqn"))
    lun = src.get("lun", 0)
    if not 0 <= lun <= 255:
        errs.append(invalid(f"{path}.lun", lun, m.inclusive_range_error(0, 255)))
    chap = src.get("chapAuthDiscovery") or src.get("chapAuthSession")
    if chap and src.get("secretRef") is None:
        errs.append(required(f"{path}.secretRef"))
    if src.get("secretRef") is not None and not src["secretRef"].get("name"):
        errs.append(required(f"{path}.secretRef.name"))
    if src.get("initiatorName") is not None:
        errs.extend(_iqn_errors(src["initiatorName"], f"{path}.initiatorname"))
    return errs


def _fc(src: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    wwns, wwids = src.get("targetWWNs") or [], src.get("wwids") or []
    if not wwns and not wwids:
        errs.append(
            required(f"{path}.targetWWNs", "must specify either targetWWNs or wwids, but not both")
        )
    if wwns and wwids:
        errs.append(
            invalid(
                f"{path}.targetWWNs",
                wwns,
                "targetWWNs and wwids can not be specified simultaneously",
            )
        )
    if wwns:
        lun = src.get("lun")
        if lun is None:
            errs.append(required(f"{path}.lun", "lun is required if targetWWNs is specified"))
        elif not 0 <= lun <= 255:
            errs.append(invalid(f"{path}.lun", lun, m.inclusive_range_error(0, 255)))
    return errs


def _partitioned(field: str) -> Callable[[dict, str], list[FieldError]]:
    def check(src: dict, path: str) -> list[FieldError]:
        errs = [] if src.get(field) else [required(f"{path}.{field}")]
        partition = src.get("partition", 0)
        if not 0 <= partition <= 255:
            errs.append(invalid(f"{path}.partition", partition, m.inclusive_range_error(1, 255)))
        return errs

    return check


def _storageos(src: dict, path: str) -> list[FieldError]:
    name = src.get("volumeName") or ""
    errs = [required(f"{path}.volumeName")] if not name else dns_label(name, f"{path}.volumeName")
    if src.get("volumeNamespace"):
        errs.extend(dns_label(src["volumeNamespace"], f"{path}.volumeNamespace"))
    ref = src.get("secretRef")
    if ref is not None:
        errs.extend(
            required(f"{path}.secretRef.{k}") for k in ("name", "namespace") if not ref.get(k)
        )
    return errs


def _needs(*fields: str) -> Callable[[dict, str], list[FieldError]]:
    def check(src: dict, path: str) -> list[FieldError]:
        return [required(f"{path}.{f}") for f in fields if not src.get(f)]

    return check


# (JSON field, path segment upstream reports, checker) in upstream's order.
_SOURCES: tuple[tuple[str, str, Callable[[dict, str], list[FieldError]] | None], ...] = (
    ("hostPath", "hostPath", _host_path),
    ("gcePersistentDisk", "persistentDisk", _partitioned("pdName")),
    ("awsElasticBlockStore", "awsElasticBlockStore", _partitioned("volumeID")),
    ("glusterfs", "glusterfs", _needs("endpoints", "path")),
    ("flocker", "flocker", None),
    ("nfs", "nfs", _nfs),
    ("rbd", "rbd", _needs("monitors", "image")),
    ("quobyte", "quobyte", _needs("registry", "volume")),
    ("cephfs", "cephfs", _needs("monitors")),
    ("iscsi", "iscsi", None),
    ("cinder", "cinder", _needs("volumeID")),
    ("fc", "fc", _fc),
    ("flexVolume", "flexVolume", _flex),
    ("azureFile", "azureFile", _needs("secretName", "shareName")),
    ("vsphereVolume", "vsphereVolume", _needs("volumePath")),
    ("photonPersistentDisk", "photonPersistentDisk", _needs("pdID")),
    ("portworxVolume", "portworxVolume", _needs("volumeID")),
    ("azureDisk", "azureDisk", _needs("diskName", "diskURI")),
    ("scaleIO", "scaleIO", _needs("gateway", "system", "volumeName")),
    ("local", "local", _local),
    ("storageos", "storageos", _storageos),
    ("csi", "csi", _csi),
)
SOURCE_FIELDS = tuple(field for field, _, _ in _SOURCES)
# Upstream's own label for a key, where its error path is not the JSON name.
_FORBID_AS = {"cephfs": "cephFS"}


def volume_source_errors(spec: dict, pv_name: str, node_affinity_set: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for field, segment, check in _SOURCES:
        src = spec.get(field)
        if src is None:
            continue
        path = f"spec.{segment}"
        # flexVolume is counted but never blamed, as upstream has it.
        if count and field != "flexVolume":
            errs.append(forbidden(f"spec.{_FORBID_AS.get(field, field)}", MORE_THAN_ONE))
            continue
        count += 1
        if field == "iscsi":
            errs.extend(_iscsi(src, path, pv_name))
        elif field == "flocker":
            errs.extend(_flocker(src, path))
        elif check is not None:
            errs.extend(check(src, path))
        if field == "local" and not node_affinity_set:
            errs.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    if not count:
        errs.append(required("spec", "must specify a volume type"))
    host = spec.get("hostPath")
    if (
        host
        and posixpath.normpath(host.get("path") or ".") == "/"
        and (spec.get("persistentVolumeReclaimPolicy") == "Recycle")
    ):
        errs.append(
            forbidden(
                "spec.persistentVolumeReclaimPolicy",
                "may not be 'recycle' for a hostPath mount of '/'",
            )
        )
    return errs


def _flocker(src: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name, uid = src.get("datasetName") or "", src.get("datasetUUID") or ""
    if not name and not uid:
        errs.append(required(path, "one of datasetName and datasetUUID is required"))
    if name and uid:
        errs.append(
            invalid(
                path, "resource", "datasetName and datasetUUID can not be specified simultaneously"
            )
        )
    if "/" in name:
        errs.append(invalid(f"{path}.datasetName", name, "must not contain '/'"))
    return errs


# -- node selectors --------------------------------------------------------------------


def node_selector_errors(selector: dict, path: str) -> list[FieldError]:
    terms = selector.get("nodeSelectorTerms") or []
    terms_path = f"{path}.nodeSelectorTerms"
    if not terms:
        return [required(terms_path, "must have at least one node selector term")]
    errs: list[FieldError] = []
    for i, term in enumerate(terms):
        for j, req in enumerate(term.get("matchExpressions") or []):
            errs.extend(_selector_requirement(req, f"{terms_path}[{i}].matchExpressions[{j}]"))
        for j, req in enumerate(term.get("matchFields") or []):
            errs.extend(_field_requirement(req, f"{terms_path}[{i}].matchFields[{j}]"))
    return errs


def _selector_requirement(req: dict, path: str) -> list[FieldError]:
    op, values = req.get("operator") or "", req.get("values") or []
    errs: list[FieldError] = []
    if op in ("In", "NotIn"):
        if not values:
            errs.append(
                required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
            )
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(
                forbidden(
                    f"{path}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(
                required(
                    f"{path}.values",
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )
            )
    else:
        errs.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
    errs.extend(qualified_name(req.get("key") or "", f"{path}.key"))
    for k, value in enumerate(values):
        errs.extend(
            invalid(f"{path}.values[{k}]", value, msg) for msg in m.is_valid_label_value(value)
        )
    return errs


def _field_requirement(req: dict, path: str) -> list[FieldError]:
    op, values = req.get("operator") or "", req.get("values") or []
    errs: list[FieldError] = []
    if op in ("In", "NotIn"):
        if len(values) != 1:
            errs.append(
                required(
                    f"{path}.values",
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                )
            )
    else:
        errs.append(invalid(f"{path}.operator", op, "not a valid selector operator"))
    if req.get("key") != "metadata.name":
        errs.append(invalid(f"{path}.key", req.get("key") or "", "not a valid field selector key"))
    else:
        for k, value in enumerate(values):
            errs.extend(
                invalid(f"{path}.values[{k}]", value, msg) for msg in m.dns1123_subdomain(value)
            )
    return errs


def node_affinity_errors(affinity: Any, path: str) -> list[FieldError]:
    if (affinity or {}).get("required") is None:
        return [required(f"{path}.required", "must specify required node constraints")]
    return node_selector_errors(affinity["required"], f"{path}.required")

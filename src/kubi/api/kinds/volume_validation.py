"""Validation of a PodSpec's volumes, and of PersistentVolumeClaim specs.

`validate_volumes` checks each volume (name, exactly one source, the source's
own rules) and returns the valid ones by name, which container validation uses
to resolve volumeMounts. The common sources (emptyDir, hostPath, configMap,
secret, downwardAPI, projected, persistentVolumeClaim, ephemeral, nfs, csi) are
checked in full; the legacy in-tree plugins only for their required fields.
Error paths keep upstream's quirks (`gcePersistentDisk` is checked under
`persistentDisk`, a second downwardAPI source is reported as `downwarAPI`).
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
from kubi.api.kinds import meta
from kubi.api.kinds.container_fields import (
    validate_object_field_selector,
    validate_resource_field_selector,
)
from kubi.api.kinds.resources import quantity_at

FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
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
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_VOLUME_FIELD_PATHS = (
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
)
_PARTITION_ERROR = meta.inclusive_range_error(1, 255)

# (json key, name used in the "more than 1 volume type" error), in upstream's order.
_SOURCES = (
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
)

# Legacy sources checked only for required fields: json key -> (path child, required fields).
_REQUIRED_ONLY: dict[str, tuple[str, tuple[str, ...]]] = {
    "gcePersistentDisk": ("persistentDisk", ("pdName",)),
    "awsElasticBlockStore": ("awsElasticBlockStore", ("volumeID",)),
    "iscsi": ("iscsi", ("targetPortal", "iqn")),
    "glusterfs": ("glusterfs", ("endpoints", "path")),
    "rbd": ("rbd", ("monitors", "image")),
    "cinder": ("cinder", ("volumeID",)),
    "cephfs": ("cephfs", ("monitors",)),
    "quobyte": ("quobyte", ("registry", "volume")),
    "flexVolume": ("flexVolume", ("driver",)),
    "azureFile": ("azureFile", ("secretName", "shareName")),
    "vsphereVolume": ("vsphereVolume", ("volumePath",)),
    "photonPersistentDisk": ("photonPersistentDisk", ("pdID",)),
    "portworxVolume": ("portworxVolume", ("volumeID",)),
    "azureDisk": ("azureDisk", ("diskName", "diskURI")),
    "storageos": ("storageos", ("volumeName",)),
    "scaleIO": ("scaleIO", ("gateway", "system", "volumeName")),
    "image": ("image", ("reference",)),
}


# -- paths --------------------------------------------------------------------------


def validate_no_backsteps(target: str, path: str) -> list[FieldError]:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(path, target, "must not contain '..'")]
    return []


def validate_local_descending_path(target: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if target.startswith("/"):
        errs.append(invalid(path, target, "must be a relative path"))
    return errs + validate_no_backsteps(target, path)


def validate_local_non_reserved_path(target: str, path: str) -> list[FieldError]:
    errs = validate_local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(path, target, "must not start with '..'"))
    return errs


def _mode(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= 0o777:
        return [invalid(path, value, FILE_MODE_ERROR)]
    return []


# -- sources ----------------------------------------------------------------------------


def _key_to_path(item: Any, path: str) -> list[FieldError]:
    item = item or {}
    errs: list[FieldError] = []
    if not item.get("key"):
        errs.append(required(f"{path}.key"))
    target = item.get("path") or ""
    if not target:
        errs.append(required(f"{path}.path"))
    errs.extend(validate_local_non_reserved_path(target, f"{path}.path"))
    errs.extend(_mode(item.get("mode"), f"{path}.mode"))
    return errs


def _keyed_source(source: dict, path: str, name_key: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not source.get(name_key):
        errs.append(required(f"{path}.{name_key}"))
    errs.extend(_mode(source.get("defaultMode"), f"{path}.defaultMode"))
    for i, item in enumerate(source.get("items") or []):
        errs.extend(_key_to_path(item, f"{path}.items[{i}]"))
    return errs


def _downward_file(item: Any, path: str) -> list[FieldError]:
    # Upstream reports a downwardAPI item's problems at the source's path, not the item's.
    item = item or {}
    errs: list[FieldError] = []
    target = item.get("path") or ""
    if not target:
        errs.append(required(f"{path}.path"))
    errs.extend(validate_local_non_reserved_path(target, f"{path}.path"))
    if item.get("fieldRef") is not None:
        errs.extend(
            validate_object_field_selector(
                item["fieldRef"], _VOLUME_FIELD_PATHS, f"{path}.fieldRef"
            )
        )
        if item.get("resourceFieldRef") is not None:
            errs.append(
                invalid(
                    path,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                )
            )
    elif item.get("resourceFieldRef") is not None:
        errs.extend(
            validate_resource_field_selector(
                item["resourceFieldRef"], f"{path}.resourceFieldRef", volume=True
            )
        )
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    errs.extend(_mode(item.get("mode"), f"{path}.mode"))
    return errs


def _projected(source: dict, path: str) -> list[FieldError]:
    errs = _mode(source.get("defaultMode"), f"{path}.defaultMode")
    paths: set[str] = set()

    def claim(target: str, shown: Any) -> None:
        if target in paths:
            errs.append(invalid(path, shown, "conflicting duplicate paths"))
        paths.add(target)

    for i, src in enumerate(source.get("sources") or []):
        src = src or {}
        spath = f"{path}.sources[{i}]"
        count = 0
        for key in ("secret", "configMap"):
            body = src.get(key)
            if body is None:
                continue
            count += 1
            if not body.get("name"):
                errs.append(required(f"{spath}.{key}.name"))
            for j, item in enumerate(body.get("items") or []):
                errs.extend(_key_to_path(item, f"{spath}.{key}.items[{j}]"))
                if (item or {}).get("path"):
                    claim(item["path"], body.get("name") or "")
        if src.get("downwardAPI") is not None:
            count += 1
            for item in src["downwardAPI"].get("items") or []:
                errs.extend(_downward_file(item, f"{spath}.downwardAPI"))
                if (item or {}).get("path"):
                    claim(item["path"], item["path"])
        token = src.get("serviceAccountToken")
        if token is not None:
            count += 1
            seconds = token.get("expirationSeconds") or 0
            tpath = f"{spath}.serviceAccountToken.expirationSeconds"
            if seconds < 600:
                errs.append(
                    invalid(tpath, seconds, "may not specify a duration less than 10 minutes")
                )
            if seconds > 1 << 32:
                errs.append(
                    invalid(tpath, seconds, "may not specify a duration larger than 2^32 seconds")
                )
            if not token.get("path"):
                errs.append(required(f"{path}.path"))
            else:
                errs.extend(validate_local_non_reserved_path(token["path"], f"{path}.path"))
        if src.get("clusterTrustBundle") is not None:
            count += 1
            bundle = src["clusterTrustBundle"]
            if not bundle.get("path"):
                errs.append(required(f"{spath}.clusterTrustBundle.path"))
        if count > 1:
            errs.append(forbidden(spath, "may not specify more than 1 volume type per source"))
    return errs


def _csi_driver(driver: str, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not driver:
        errs.append(required(path))
    if len(driver) > 63:
        errs.append(too_long(path, "", 63))
    errs.extend(invalid(path, driver, m) for m in meta.is_dns1123_subdomain(driver.lower()))
    return errs


def _validate_source(
    key: str, body: dict, path: str, *, pod_name: str, vol_name: str
) -> list[FieldError]:
    errs: list[FieldError] = []
    if key == "emptyDir":
        if body.get("sizeLimit") is not None:
            q = quantity_at(body["sizeLimit"], f"{path}.emptyDir.sizeLimit", errs)
            if q is not None and q.sign() < 0:
                errs.append(
                    forbidden(
                        f"{path}.emptyDir.sizeLimit",
                        "SizeLimit field must be a valid resource quantity",
                    )
                )
        medium = body.get("medium") or ""
        if medium not in ("", "Memory", "HugePages") and not medium.startswith("HugePages-"):
            errs.append(
                not_supported(f"{path}.emptyDir.medium", medium, ("", "HugePages", "Memory"))
            )
    elif key == "hostPath":
        target = body.get("path") or ""
        if not target:
            return [required(f"{path}.hostPath.path")]
        errs.extend(validate_no_backsteps(target, f"{path}.hostPath.path"))
        kind = body.get("type")
        if kind is not None and kind not in HOST_PATH_TYPES:
            errs.append(not_supported(f"{path}.hostPath.type", kind, HOST_PATH_TYPES))
    elif key == "gitRepo":
        if not body.get("repository"):
            errs.append(required(f"{path}.gitRepo.repository"))
        errs.extend(
            validate_local_descending_path(body.get("directory") or "", f"{path}.gitRepo.directory")
        )
    elif key == "secret":
        errs.extend(_keyed_source(body, f"{path}.secret", "secretName"))
    elif key == "configMap":
        errs.extend(_keyed_source(body, f"{path}.configMap", "name"))
    elif key == "nfs":
        if not body.get("server"):
            errs.append(required(f"{path}.nfs.server"))
        target = body.get("path") or ""
        if not target:
            errs.append(required(f"{path}.nfs.path"))
        if not target.startswith("/"):
            errs.append(invalid(f"{path}.nfs.path", target, "must be an absolute path"))
    elif key == "persistentVolumeClaim":
        if not body.get("claimName"):
            errs.append(required(f"{path}.persistentVolumeClaim.claimName"))
    elif key == "downwardAPI":
        errs.extend(_mode(body.get("defaultMode"), f"{path}.downwardAPI.defaultMode"))
        for item in body.get("items") or []:
            errs.extend(_downward_file(item, f"{path}.downwardAPI"))
    elif key == "projected":
        errs.extend(_projected(body, f"{path}.projected"))
    elif key == "flocker":
        name, uuid = body.get("datasetName") or "", body.get("datasetUUID") or ""
        if not name and not uuid:
            errs.append(
                required(f"{path}.flocker", "one of datasetName and datasetUUID is required")
            )
        if name and uuid:
            errs.append(
                invalid(
                    f"{path}.flocker",
                    "resource",
                    "datasetName and datasetUUID can not be specified simultaneously",
                )
            )
        if "/" in name:
            errs.append(invalid(f"{path}.flocker.datasetName", name, "must not contain '/'"))
    elif key == "fc":
        wwns, wwids = body.get("targetWWNs") or [], body.get("wwids") or []
        if not wwns and not wwids:
            errs.append(
                required(
                    f"{path}.fc.targetWWNs", "must specify either targetWWNs or wwids, but not both"
                )
            )
        if wwns and wwids:
            errs.append(
                invalid(
                    f"{path}.fc.targetWWNs",
                    wwns,
                    "targetWWNs and wwids can not be specified simultaneously",
                )
            )
        if wwns and body.get("lun") is None:
            errs.append(required(f"{path}.fc.lun", "lun is required if targetWWNs is specified"))
    elif key == "csi":
        errs.extend(_csi_driver(body.get("driver") or "", f"{path}.csi.driver"))
    elif key == "ephemeral":
        errs.extend(_ephemeral(body, f"{path}.ephemeral", pod_name=pod_name, vol_name=vol_name))
    elif key in _REQUIRED_ONLY:
        child, fields = _REQUIRED_ONLY[key]
        errs.extend(required(f"{path}.{child}.{f}") for f in fields if not body.get(f))
        for part in ("partition",):
            value = body.get(part)
            if isinstance(value, int) and not 0 <= value <= 255:
                errs.append(invalid(f"{path}.{child}.{part}", value, _PARTITION_ERROR))
    return errs


def _ephemeral(body: dict, path: str, *, pod_name: str, vol_name: str) -> list[FieldError]:
    template = body.get("volumeClaimTemplate")
    if template is None:
        return [required(f"{path}.volumeClaimTemplate")]
    tpath = f"{path}.volumeClaimTemplate"
    tmeta = template.get("metadata") or {}
    errs = meta.validate_annotations(tmeta.get("annotations"), f"{tpath}.metadata.annotations")
    errs.extend(meta.validate_labels(tmeta.get("labels"), f"{tpath}.metadata.labels"))
    for field_name in tmeta:
        if field_name not in ("labels", "annotations", "creationTimestamp"):
            errs.append(forbidden(f"{tpath}.metadata.{field_name}", "cannot be set"))
    errs.extend(validate_pvc_spec(template.get("spec") or {}, f"{tpath}.spec"))
    if pod_name and vol_name:
        claim = f"{pod_name}-{vol_name}"
        errs.extend(
            invalid(f"{path}.name", vol_name, f'PVC name "{claim}": {m}')
            for m in meta.dns1123_subdomain(claim)
        )
    return errs


def validate_volumes(
    volumes: Any, path: str, *, pod_name: str = ""
) -> tuple[dict[str, dict], list[FieldError]]:
    """Check a PodSpec's volumes; returns the valid ones by name and the errors."""
    errs: list[FieldError] = []
    valid: dict[str, dict] = {}
    created_claims = {
        f"{pod_name}-{v.get('name', '')}"
        for v in volumes or []
        if pod_name and isinstance(v, dict) and v.get("ephemeral") is not None
    }
    for i, volume in enumerate(volumes or []):
        volume = volume or {}
        ipath = f"{path}[{i}]"
        name = volume.get("name") or ""
        own = validate_volume_source(volume, ipath, pod_name=pod_name)
        if not name:
            own.append(required(f"{ipath}.name"))
        else:
            own.extend(invalid(f"{ipath}.name", name, m) for m in meta.is_dns1123_label(name))
        if name in valid:
            own.append(duplicate(f"{ipath}.name", name))
        if own:
            errs.extend(own)
        else:
            valid[name] = volume
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and claim in created_claims:
            errs.append(
                invalid(
                    f"{ipath}.persistentVolumeClaim.claimName",
                    claim,
                    "must not reference a PVC that gets created for an ephemeral volume",
                )
            )
    return valid, errs


def validate_volume_source(volume: dict, path: str, *, pod_name: str = "") -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for key, shown in _SOURCES:
        body = volume.get(key)
        if body is None:
            continue
        if count:
            errs.append(forbidden(f"{path}.{shown}", "may not specify more than 1 volume type"))
            continue
        count += 1
        errs.extend(
            _validate_source(
                key,
                body if isinstance(body, dict) else {},
                path,
                pod_name=pod_name,
                vol_name=volume.get("name") or "",
            )
        )
    if count == 0:
        errs.append(required(path, "must specify a volume type"))
    return errs


# -- PersistentVolumeClaim spec ------------------------------------------------------------


def validate_pvc_spec(spec: dict, path: str) -> list[FieldError]:
    """The parts of a PersistentVolumeClaimSpec a claim template needs to get right."""
    errs: list[FieldError] = []
    modes = spec.get("accessModes") or []
    if not modes:
        errs.append(required(f"{path}.accessModes", "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        errs.extend(meta.validate_label_selector(spec["selector"], f"{path}.selector"))
    for mode in modes:
        if mode not in ACCESS_MODES:
            errs.append(not_supported(f"{path}.accessModes", mode, ACCESS_MODES))
    known = [m for m in modes if m in ACCESS_MODES]
    if "ReadWriteOncePod" in known and any(m != "ReadWriteOncePod" for m in known):
        errs.append(
            forbidden(f"{path}.accessModes", "may not use ReadWriteOncePod with other access modes")
        )
    requests = (spec.get("resources") or {}).get("requests") or {}
    spath = f"{path}.resources[storage]"
    if "storage" not in requests:
        errs.append(required(spath))
    else:
        q = quantity_at(requests["storage"], spath, errs)
        if q is not None and q.sign() <= 0:
            errs.append(invalid(spath, str(q), "must be greater than zero"))
    storage_class = spec.get("storageClassName")
    if storage_class:
        errs.extend(
            invalid(f"{path}.storageClassName", storage_class, m)
            for m in meta.dns1123_subdomain(storage_class)
        )
    mode = spec.get("volumeMode")
    if mode is not None and mode not in ("Block", "Filesystem"):
        errs.append(not_supported(f"{path}.volumeMode", mode, ("Block", "Filesystem")))
    return errs

"""The files of configMap, secret, downwardAPI and projected volumes, as payloads.

Each builder turns a volume source (and the objects it names) into the mapping
`{relative path: FileProjection}` the AtomicWriter projects. Without `items`
every key becomes a file named after it; with `items` only the listed keys, at
their `path`, with their own `mode` or the volume's `defaultMode` (0644). A
missing object or key fails with the kubelet's wording unless the source is
`optional`, in which case it contributes nothing. A projected volume merges its
sources in order (a later one wins a shared path) and reports all failures at
once, as upstream's aggregate error does.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from collections.abc import Mapping
from typing import Any

from kubi.node.volumes.atomic import FileProjection
from kubi.node.volumes.base import DEFAULT_FILE_MODE, VolumeContext, go_aggregate, not_found
from kubi.node.volumes.fieldpath import (
    FieldPathError,
    container_resource_value,
    extract_metadata_field,
)
from kubi.node.volumes.ownership import fs_user, pod_fs_group

Files = dict[str, FileProjection]

# A projected service account token expires after an hour unless told otherwise.
DEFAULT_TOKEN_EXPIRATION = 3600


class PayloadFailure(Exception):
    """The content of a volume cannot be built (yet); the message is user-facing."""


def decode_data(obj: Mapping[str, Any], field: str) -> dict[str, bytes]:
    """`data`/`binaryData` as bytes: API objects carry them base64-encoded."""
    out: dict[str, bytes] = {}
    for key, value in (obj.get(field) or {}).items():
        try:
            out[key] = base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadFailure(f"illegal base64 data for key {key}") from exc
    return out


def configmap_files(configmap: Mapping[str, Any]) -> dict[str, bytes]:
    files = {k: str(v).encode() for k, v in (configmap.get("data") or {}).items()}
    files.update(decode_data(configmap, "binaryData"))
    return files


def _mode(value: Any, default: int) -> int:
    return int(value) if value is not None else default


def keyed_payload(data: Mapping[str, bytes], items: list[dict[str, Any]] | None,
                  default_mode: int, optional: bool, missing_key: str) -> Files:
    """All keys, or the listed `items`; `missing_key` words a listed key that is absent."""
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in data.items()}
    files: Files = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise PayloadFailure(f"{missing_key}: {key}")
        files[item.get("path") or key] = FileProjection(
            data[key], _mode(item.get("mode"), default_mode))
    return files


async def configmap_payload(pod: Mapping[str, Any], source: Mapping[str, Any],
                            ctx: VolumeContext, default_mode: int) -> Files:
    name = source.get("name", "")
    optional = bool(source.get("optional"))
    obj = await ctx.get_configmap(_namespace(pod), name)
    if obj is None:
        if not optional:
            raise PayloadFailure(not_found("configmap", name))
        obj = {}
    return keyed_payload(configmap_files(obj), source.get("items"), default_mode, optional,
                         "configmap references non-existent config key")


async def secret_payload(pod: Mapping[str, Any], source: Mapping[str, Any],
                         ctx: VolumeContext, default_mode: int, name_field: str) -> Files:
    name = source.get(name_field, "")
    optional = bool(source.get("optional"))
    obj = await ctx.get_secret(_namespace(pod), name)
    if obj is None:
        if not optional:
            raise PayloadFailure(not_found("secret", name))
        obj = {}
    return keyed_payload(decode_data(obj, "data"), source.get("items"), default_mode,
                         optional, "references non-existent secret key")


def downward_payload(pod: Mapping[str, Any], items: list[dict[str, Any]] | None,
                     default_mode: int, allocatable: Mapping[str, str]) -> Files:
    files: Files = {}
    errors: list[str] = []
    for item in items or []:
        value = b""
        try:
            if item.get("fieldRef"):
                value = extract_metadata_field(pod, item["fieldRef"].get("fieldPath", "")).encode()
            elif item.get("resourceFieldRef"):
                ref = item["resourceFieldRef"]
                value = container_resource_value(ref, pod, None, allocatable).encode()
        except FieldPathError as exc:
            errors.append(str(exc))
        files[posixpath.normpath(item.get("path", ""))] = FileProjection(
            value, _mode(item.get("mode"), default_mode))
    if errors:
        raise PayloadFailure(go_aggregate(errors))
    return files


async def token_file(pod: Mapping[str, Any], source: Mapping[str, Any],
                     ctx: VolumeContext, default_mode: int) -> FileProjection:
    uid, gid = fs_user(pod), pod_fs_group(pod)
    # A token readable by the pod's one user (and its fsGroup) only, as upstream.
    mode = 0o600 if uid is not None or gid is not None else default_mode
    expiration = int(source.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION)
    try:
        token = await ctx.token(source.get("audience") or "", expiration)
    except Exception as exc:  # the source's error is the user's message
        raise PayloadFailure(str(exc)) from exc
    return FileProjection(token.encode(), mode, uid=uid)


async def projected_payload(pod: Mapping[str, Any], volume_source: Mapping[str, Any],
                            ctx: VolumeContext) -> Files:
    default_mode = _mode(volume_source.get("defaultMode"), DEFAULT_FILE_MODE)
    files: Files = {}
    errors: list[str] = []
    for source in volume_source.get("sources") or []:
        try:
            files.update(await _projection(pod, source, ctx, default_mode))
        except PayloadFailure as exc:
            errors.append(str(exc))
    if errors:
        raise PayloadFailure(go_aggregate(errors))
    return files


async def _projection(pod: Mapping[str, Any], source: Mapping[str, Any],
                      ctx: VolumeContext, default_mode: int) -> Files:
    if source.get("configMap") is not None:
        return await configmap_payload(pod, source["configMap"], ctx, default_mode)
    if source.get("secret") is not None:
        return await secret_payload(pod, source["secret"], ctx, default_mode, "name")
    if source.get("downwardAPI") is not None:
        return downward_payload(pod, source["downwardAPI"].get("items"), default_mode,
                                ctx.node_allocatable)
    if source.get("serviceAccountToken") is not None:
        token = source["serviceAccountToken"]
        return {token.get("path", "token"): await token_file(pod, token, ctx, default_mode)}
    kinds = ", ".join(sorted(k for k, v in source.items() if v is not None)) or "empty"
    raise PayloadFailure(f"projected volume source {kinds} is not supported on this node")


async def volume_payload(pod: Mapping[str, Any], volume: Mapping[str, Any],
                         ctx: VolumeContext) -> Files:
    """The files of any kubelet-written volume kind."""
    if volume.get("configMap") is not None:
        source = volume["configMap"]
        return await configmap_payload(
            pod, source, ctx, _mode(source.get("defaultMode"), DEFAULT_FILE_MODE))
    if volume.get("secret") is not None:
        source = volume["secret"]
        return await secret_payload(
            pod, source, ctx, _mode(source.get("defaultMode"), DEFAULT_FILE_MODE), "secretName")
    if volume.get("downwardAPI") is not None:
        source = volume["downwardAPI"]
        return downward_payload(pod, source.get("items"),
                                _mode(source.get("defaultMode"), DEFAULT_FILE_MODE),
                                ctx.node_allocatable)
    if volume.get("projected") is not None:
        return await projected_payload(pod, volume["projected"], ctx)
    raise PayloadFailure(f"volume {volume.get('name')!r} has no projected content")


def _namespace(pod: Mapping[str, Any]) -> str:
    return (pod.get("metadata") or {}).get("namespace") or "default"

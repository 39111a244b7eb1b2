"""core/v1 Namespace, ConfigMap, Secret and ServiceAccount: defaults, server-set
fields and validation as upstream v1.33 has them.

The other core kinds live in sibling modules imported at the bottom (Service
and Endpoints, Node, ResourceQuota and LimitRange, Event), so that importing
this module registers every non-workload core kind with `kubi.api.hooks`.
Secret's `stringData` is folded into `data` by the defaulter, before anything
is validated or stored, exactly as upstream's v1 conversion folds it; no
message here ever prints a Secret value.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kubi.api.errors import FieldError, forbidden, invalid, required, too_long
from kubi.api.hooks import defaulter, preparer, validator
from kubi.api.kinds import meta as m
from kubi.api.kinds._shared import (
    go_json_object_error,
    meta_create,
    meta_update,
    section,
)

MAX_SECRET_SIZE = 1024 * 1024
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"
IMMUTABLE_SET = "field is immutable when `immutable` is set"
REDACTED = "<secret contents redacted>"


# -- Namespace ---------------------------------------------------------------------


def _label_namespace(obj: dict) -> None:
    meta = section(obj, "metadata")
    # A generateName namespace gets its label once the name exists.
    if meta.get("name"):
        labels = meta.get("labels") or {}
        labels[METADATA_NAME_LABEL] = meta["name"]
        meta["labels"] = labels


@defaulter("v1", "Namespace")
def default_namespace(obj: dict) -> None:
    _label_namespace(obj)
    status = section(obj, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


@preparer("v1", "Namespace")
def prepare_namespace(obj: dict, old: dict | None) -> None:
    _label_namespace(obj)
    spec = section(obj, "spec")
    if old is None:
        obj["status"] = {"phase": "Active"}
        # The kubernetes finalizer is required at birth; it may be removed later.
        finalizers = list(spec.get("finalizers") or [])
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
        spec["finalizers"] = finalizers
        return
    # Finalizers change only through the finalize subresource.
    old_finalizers = (old.get("spec") or {}).get("finalizers")
    if old_finalizers is None:
        spec.pop("finalizers", None)
    else:
        spec["finalizers"] = list(old_finalizers)


def prepare_namespace_finalize(obj: dict, old: dict) -> None:
    """The finalize subresource: keep the new finalizers, everything else as stored."""
    finalizers = (obj.get("spec") or {}).get("finalizers")
    obj["spec"] = dict(old.get("spec") or {})
    if finalizers is None:
        obj["spec"].pop("finalizers", None)
    else:
        obj["spec"]["finalizers"] = list(finalizers)
    if "status" in old:
        obj["status"] = old["status"]


def _spec_finalizer(name: Any, path: str) -> list[FieldError]:
    errs = [invalid(path, name, msg) for msg in m.is_qualified_name(str(name))]
    if "/" not in str(name) and name not in m.STANDARD_FINALIZERS:
        errs.append(
            invalid(
                path, name, "name is neither a standard finalizer name nor is it fully qualified"
            )
        )
    return errs


@validator("v1", "Namespace")
def validate_namespace(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    finalizers = (obj.get("spec") or {}).get("finalizers") or []
    if old is None:
        errs = meta_create(obj, namespaced=False, name_fn=m.dns1123_label)
        # Upstream reports these at the list path, without an index.
        for name in finalizers:
            errs.extend(_spec_finalizer(name, "spec.finalizers"))
        return errs
    errs = meta_update(obj, old)
    if subresource == "status":
        errs.extend(_namespace_phase(obj))
    elif subresource == "finalize":
        for i, name in enumerate(finalizers):
            errs.extend(_spec_finalizer(name, f"spec.finalizers[{i}]"))
    return errs


def _namespace_phase(obj: dict) -> list[FieldError]:
    phase = (obj.get("status") or {}).get("phase") or ""
    if not (obj.get("metadata") or {}).get("deletionTimestamp"):
        if phase != "Active":
            return [
                invalid(
                    "status.Phase", phase, "may only be 'Active' if `deletionTimestamp` is empty"
                )
            ]
    elif phase != "Terminating":
        return [
            invalid(
                "status.Phase",
                phase,
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            )
        ]
    return []


# -- ConfigMap and Secret data -------------------------------------------------------


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def decode_base64(text: Any) -> tuple[bytes | None, int]:
    """Decode as Go's StdEncoding does: (bytes, -1), or (None, offset Go blames)."""
    if not isinstance(text, str):
        return None, 0
    bad = _base64_bad_offset(text)
    if bad >= 0:
        return None, bad
    body = text.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(body, validate=True), -1
    except (binascii.Error, ValueError):
        return None, 0


def _base64_bad_offset(text: str) -> int:
    """Walk the input in 4-symbol groups as Go does; -1 when it is well formed."""
    pos, size = 0, len(text)
    while True:
        got = 0
        while got < 4:
            if pos == size:
                # A clean end falls between groups; a partial group lacks padding.
                return -1 if got == 0 else pos - got
            ch = text[pos]
            pos += 1
            if ch in _B64_ALPHABET:
                got += 1
            elif ch in "\r\n":
                continue
            elif ch != "=" or got < 2:
                return pos - 1
            else:
                return _base64_after_padding(text, pos, got)


def _base64_after_padding(text: str, pos: int, got: int) -> int:
    size = len(text)
    if got == 2:
        # A group of two symbols needs "==".
        while pos < size and text[pos] in "\r\n":
            pos += 1
        if pos == size:
            return size
        if text[pos] != "=":
            return pos - 1
        pos += 1
    while pos < size and text[pos] in "\r\n":
        pos += 1
    return pos if pos < size else -1


def _key_errors(key: str, path: str) -> list[FieldError]:
    return [invalid(path, key, msg) for msg in m.is_config_map_key(key)]


def _immutable_rules(obj: dict, old: dict, fields: tuple[str, ...]) -> list[FieldError]:
    if old.get("immutable") is not True:
        return []
    errs: list[FieldError] = []
    if obj.get("immutable") is not True:
        errs.append(forbidden("immutable", IMMUTABLE_SET))
    for name in fields:
        if (obj.get(name) or {}) != (old.get(name) or {}):
            errs.append(forbidden(name, IMMUTABLE_SET))
    return errs


@validator("v1", "ConfigMap")
def validate_config_map(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if old is not None:
        errs.extend(meta_update(obj, old))
        errs.extend(_immutable_rules(obj, old, ("data", "binaryData")))
    errs.extend(meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain))
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    total = 0
    for key in sorted(data):
        errs.extend(_key_errors(key, f"data[{key}]"))
        if key in binary:
            errs.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
        total += len(str(data[key]).encode())
    for key in sorted(binary):
        errs.extend(_key_errors(key, f"binaryData[{key}]"))
        decoded, _ = decode_base64(binary[key])
        total += len(decoded) if decoded is not None else len(str(binary[key]))
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("", "", MAX_SECRET_SIZE))
    return errs


# -- Secret --------------------------------------------------------------------------


@defaulter("v1", "Secret")
def default_secret(obj: dict) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if string_data:
        data = dict(obj.get("data") or {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def _secret_data(obj: dict) -> tuple[dict[str, bytes], list[FieldError]]:
    """Decoded data values, and an error (without the value) for each that is not base64."""
    decoded: dict[str, bytes] = {}
    errs: list[FieldError] = []
    for key, value in (obj.get("data") or {}).items():
        raw, bad_at = decode_base64(value)
        if raw is None:
            errs.append(
                invalid(f"data[{key}]", REDACTED, f"illegal base64 data at input byte {bad_at}")
            )
        else:
            decoded[key] = raw
    return decoded, errs


def _secret_type_errors(obj: dict, data: dict[str, bytes]) -> list[FieldError]:
    kind = obj.get("type") or ""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if kind == "kubernetes.io/service-account-token":
        key = "kubernetes.io/service-account.name"
        if not annotations.get(key):
            return [required(f"metadata.annotations[{key}]")]
    elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if kind == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            return [required(f"data[{key}]")]
        problem = go_json_object_error(data[key].decode("utf-8", "replace"))
        if problem:
            return [invalid(f"data[{key}]", REDACTED, problem)]
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            return [required("data[username]"), required("data[password]")]
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            return [required("data[ssh-privatekey]")]
    elif kind == "kubernetes.io/tls":
        return [required(f"data[{key}]") for key in ("tls.crt", "tls.key") if key not in data]
    return []


@validator("v1", "Secret")
def validate_secret(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if old is not None:
        errs.extend(meta_update(obj, old))
        errs.extend(m.immutable(obj.get("type") or "", old.get("type") or "", "type"))
        errs.extend(_immutable_rules(obj, old, ("data",)))
    errs.extend(meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain))
    data, decode_errs = _secret_data(obj)
    errs.extend(decode_errs)
    for key in sorted(obj.get("data") or {}):
        errs.extend(_key_errors(key, f"data[{key}]"))
    if sum(len(v) for v in data.values()) > MAX_SECRET_SIZE:
        errs.append(too_long("data", "", MAX_SECRET_SIZE))
    errs.extend(_secret_type_errors(obj, data))
    return errs


# -- ServiceAccount ------------------------------------------------------------------


@validator("v1", "ServiceAccount")
def validate_service_account(obj: dict, old: dict | None, subresource: str) -> list[FieldError]:
    errs = meta_update(obj, old) if old is not None else []
    return errs + meta_create(obj, namespaced=True, name_fn=m.dns1123_subdomain)


# Registering the rest of core/v1 is a side effect of importing these modules.
from kubi.api.kinds import events, node, quota, service  # noqa: F401

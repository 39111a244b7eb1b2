"""imagePullSecrets: the registry credentials a pod's Secrets carry.

Before a pod's containers start, the kubelet looks up each Secret named in
`imagePullSecrets`; a missing one is only a Warning event
(`FailedToRetrieveImagePullSecret`), the start goes on. Of the Secrets found,
those of type `kubernetes.io/dockerconfigjson` (`{"auths": {...}}` under
`.dockerconfigjson`) and `kubernetes.io/dockercfg` (the bare map under
`.dockercfg`) yield one credential per registry, the `auth` field (base64
`user:password`) taking precedence over `username`/`password`, as Docker's
config reader has it. Malformed content raises `PullSecretError`. The
credentials never appear in reprs or logs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson"
DOCKERCFG = "kubernetes.io/dockercfg"
DOCKERCFG_KEY = ".dockercfg"
FAILED_TO_RETRIEVE = "FailedToRetrieveImagePullSecret"


class PullSecretError(ValueError):
    """The Secret's registry configuration cannot be read; the message names no secret value."""


@dataclass(frozen=True)
class RegistryCredential:
    registry: str
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    email: str = ""


def pull_secret_names(pod: Mapping[str, Any]) -> list[str]:
    """The names in `imagePullSecrets`; empty names (which validation lets through) skipped."""
    refs = (pod.get("spec") or {}).get("imagePullSecrets") or []
    return [ref["name"] for ref in refs if ref.get("name")]


def failed_message(names: Iterable[str]) -> str:
    return (f"Unable to retrieve some image pull secrets ({', '.join(names)}); "
            "attempting to pull the image may not succeed.")


def _decoded(secret: Mapping[str, Any], key: str) -> bytes:
    raw = (secret.get("data") or {}).get(key) or ""
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PullSecretError(f"illegal base64 data for key {key}") from exc


def _entry(registry: str, entry: Any) -> RegistryCredential:
    if not isinstance(entry, dict):
        raise PullSecretError(f"registry {registry}: entry is not an object")
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            pair = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (binascii.Error, ValueError) as exc:
            raise PullSecretError(f"registry {registry}: auth is not base64") from exc
        user, sep, secret = pair.partition(":")
        if not sep:
            raise PullSecretError(f"registry {registry}: auth does not contain ':'")
        username, password = user, secret
    return RegistryCredential(registry, username, password, str(entry.get("email") or ""))


def registry_credentials(secret: Mapping[str, Any]) -> list[RegistryCredential]:
    """The credentials of a docker config Secret; [] for any other type."""
    kind = secret.get("type")
    if kind == DOCKER_CONFIG_JSON:
        key = DOCKER_CONFIG_JSON_KEY
    elif kind == DOCKERCFG:
        key = DOCKERCFG_KEY
    else:
        return []
    content = _decoded(secret, key)
    if not content:
        return []
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise PullSecretError(f"{key} is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise PullSecretError(f"{key} is not a JSON object")
    auths = (parsed.get("auths") or {}) if kind == DOCKER_CONFIG_JSON else parsed
    if not isinstance(auths, dict):
        raise PullSecretError(f"{key} has no auths object")
    return [_entry(str(registry), entry) for registry, entry in auths.items()]

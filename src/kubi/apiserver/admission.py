"""Mutating admission on create, as upstream's default plugins do it.

Only what changes objects users see is here, in upstream's order:

- Priority: a pod without a priority gets its PriorityClass's (0 without
  one; the two system classes are known) and `preemptionPolicy:
  PreemptLowerPriority`.
- ServiceAccount: a pod without `serviceAccountName` gets `default`; the
  account must exist (a pod that names `default` waits up to ten tries for
  the service account controller to make it, as upstream does, then is
  Forbidden); unless the pod or the account opts out with
  `automountServiceAccountToken: false`, every container and init container
  mounts a projected `kube-api-access-<random>` volume (a bound token, the
  cluster CA from `kube-root-ca.crt`, the namespace) at
  /var/run/secrets/kubernetes.io/serviceaccount; a pod without
  imagePullSecrets gets the account's.
- DefaultTolerationSeconds: every new pod tolerates the `not-ready` and
  `unreachable` NoExecute taints for 300 seconds, so it survives a short node
  outage before the node lifecycle controller evicts it.

`kubi up --disable-admission-plugins` turns them off by name, as
kube-apiserver's flag does (an API server run without controllers has no
service account controller to make `default`). Admission runs before
validation, so it leaves alone what is malformed: validation reports it.
(NamespaceLifecycle lives in the REST storage, next to the namespace lookup it
needs.)
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable, Iterable
from typing import Any

from kubi.api import meta
from kubi.api.catalog import ResourceType
from kubi.api.errors import Forbidden
from kubi.api.kinds.pod import MIRROR_ANNOTATION, SYSTEM_PRIORITIES
from kubi.apiserver import plugins

DEFAULT_TOLERATION_SECONDS = 300
_NODE_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")

DEFAULT_SERVICE_ACCOUNT = "default"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
# Upstream asks for 3607 s: a token the API server may extend, and warns about
# when it is used after an hour.
TOKEN_EXPIRATION_SECONDS = 3607
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"

# The default account is made by a controller just after its namespace: a pod
# that names it is looked up this many times, 100-200 ms apart.
DEFAULT_ACCOUNT_ATTEMPTS = 10

AccountLookup = Callable[[str, str], dict[str, Any] | None]


class Admission:
    """The mutating plugins a create passes through. `lookup(namespace, name)`
    finds a ServiceAccount in the watch cache."""

    def __init__(self, lookup: AccountLookup, *, disabled: Iterable[str] = (),
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.enabled = frozenset(plugins.PLUGINS) - frozenset(disabled)
        self._lookup = lookup
        self._sleep = sleep

    def mutates(self, rt: ResourceType) -> bool:
        return rt.kind == "Pod" and rt.group == "" and bool(self.enabled)

    async def admit_create(self, rt: ResourceType, obj: dict) -> None:
        if not self.mutates(rt):
            return
        if plugins.PRIORITY in self.enabled:
            default_priority(obj)
        if plugins.SERVICE_ACCOUNT in self.enabled:
            await self._service_account(obj)
        if plugins.DEFAULT_TOLERATION_SECONDS in self.enabled:
            default_toleration_seconds(obj)

    async def _service_account(self, pod: dict) -> None:
        md = pod.get("metadata") or {}
        spec = pod.setdefault("spec", {})
        if not isinstance(spec, dict) or not isinstance(spec.get("serviceAccountName", ""), str):
            return
        if MIRROR_ANNOTATION in (md.get("annotations") or {}):
            return
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = DEFAULT_SERVICE_ACCOUNT
        # The deprecated field always mirrors the name in v1.
        spec["serviceAccount"] = spec["serviceAccountName"]
        namespace = md.get("namespace", "")
        account = await self._find_account(namespace, spec["serviceAccountName"])
        if account is None:
            raise Forbidden(
                f'pods "{md.get("name", "")}" is forbidden: error looking up service account '
                f'{namespace}/{spec["serviceAccountName"]}: serviceaccount '
                f'"{spec["serviceAccountName"]}" not found',
                {"name": md.get("name", ""), "kind": "pods"},
            )
        if should_automount(account, spec):
            mount_service_account_token(spec)
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = copy.deepcopy(account["imagePullSecrets"])

    async def _find_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        attempts = DEFAULT_ACCOUNT_ATTEMPTS if name == DEFAULT_SERVICE_ACCOUNT else 1
        interval = random.uniform(0.1, 0.2)
        for attempt in range(attempts):
            if attempt:
                await self._sleep(interval)
            account = self._lookup(namespace, name)
            if account is not None:
                return account
        return None


def default_priority(pod: dict) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    class_name = spec.get("priorityClassName") or ""
    if spec.get("priority") is None and (not class_name or class_name in SYSTEM_PRIORITIES):
        spec["priority"] = SYSTEM_PRIORITIES.get(class_name, 0)
    if spec.get("preemptionPolicy") is None and spec.get("priority") is not None:
        spec["preemptionPolicy"] = "PreemptLowerPriority"


def should_automount(account: dict, spec: dict) -> bool:
    """The pod's choice, else the account's, else yes."""
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if account.get("automountServiceAccountToken") is not None:
        return bool(account["automountServiceAccountToken"])
    return True


def token_volume_source() -> dict[str, Any]:
    return {
        "defaultMode": 0o644,
        "sources": [
            {"serviceAccountToken": {"path": "token",
                                     "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
            {"configMap": {"name": ROOT_CA_CONFIGMAP,
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    }


def mount_service_account_token(spec: dict) -> None:
    """Mount the token volume into every container (init ones too) that has
    nothing at the token path yet; add the volume if one of them took it. A pod
    that already has a `kube-api-access-` volume keeps it (a re-created copy of
    an admitted pod)."""
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list):
        return
    existing = next((v["name"] for v in volumes if isinstance(v, dict)
                     and str(v.get("name", "")).startswith(TOKEN_VOLUME_PREFIX)), None)
    volume_name = existing or meta.generate_name(TOKEN_VOLUME_PREFIX)
    needed = False
    for key in ("initContainers", "containers"):
        containers = spec.get(key) or []
        for container in containers if isinstance(containers, list) else ():
            if not isinstance(container, dict):
                continue
            mounts = container.setdefault("volumeMounts", [])
            if not isinstance(mounts, list) or any(
                    isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH
                    for m in mounts):
                continue
            mounts.append({"name": volume_name, "readOnly": True,
                           "mountPath": TOKEN_MOUNT_PATH})
            needed = True
    if needed and existing is None:
        volumes.append({"name": volume_name, "projected": token_volume_source()})
        spec["volumes"] = volumes


def default_toleration_seconds(pod: dict) -> None:
    spec = pod.setdefault("spec", {})
    tolerations = spec.get("tolerations") or []
    for key in _NODE_TAINTS:
        if any(_tolerates_no_execute(t, key) for t in tolerations):
            continue
        tolerations.append({
            "key": key,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
        })
    spec["tolerations"] = tolerations


def _tolerates_no_execute(toleration: dict, key: str) -> bool:
    """Whether an existing toleration already covers `key:NoExecute` (upstream
    skips adding its default then)."""
    if toleration.get("effect") not in ("", None, "NoExecute"):
        return False
    if toleration.get("operator") == "Exists" and not toleration.get("key"):
        return True
    return toleration.get("key") == key

"""Service account tokens for projected volumes, requested as the kubelet does.

A `serviceAccountToken` projection asks the API server for a token bound to
the pod (`POST .../serviceaccounts/<name>/token`, a TokenRequest with the
audience, the expiry and a boundObjectRef to the pod). Tokens are cached per
pod, audience and expiry and requested again once 80% of their lifetime has
passed, or after a day, which keeps the periodic volume refresh cheap. An API
server without the TokenRequest subresource gets a placeholder that names
itself as one (and a warning in the log): the volume still has its file, and
nothing could mistake it for a credential. Tokens are never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.meta import parse_time
from kubi.client.client import Client, Resource

log = logging.getLogger(__name__)

SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", True, "ServiceAccount")
REFRESH_FRACTION = 0.8
MAX_AGE = 24 * 3600.0
PLACEHOLDER_PREFIX = "kubi-placeholder-token"


@dataclass
class _Token:
    value: str
    refresh_at: float


def placeholder_token(namespace: str, service_account: str) -> str:
    """What a pod gets when the API server cannot issue tokens: no JWT, no secret."""
    return f"{PLACEHOLDER_PREFIX}.not-a-credential.{namespace}.{service_account}"


def token_request(pod: Mapping[str, Any], audience: str, expiration: int) -> dict[str, Any]:
    """The TokenRequest body; without an audience the API server's own apply."""
    md = pod.get("metadata") or {}
    spec: dict[str, Any] = {
        "expirationSeconds": expiration,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": md.get("name", ""),
                           "uid": md.get("uid", "")},
    }
    if audience:
        spec["audiences"] = [audience]
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}


def refresh_time(issued: float, expiration: int, expires_at: float | None) -> float:
    """When to ask again: at 80% of the token's life, a day at the latest."""
    lifetime = (expires_at - issued) if expires_at else float(expiration)
    return issued + min(lifetime * REFRESH_FRACTION, MAX_AGE)


class ServiceAccountTokens:
    def __init__(self, client: Client, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock
        self.placeholders_issued = False
        self._cache: dict[tuple[str, str, int], _Token] = {}

    async def token(self, pod: Mapping[str, Any], audience: str, expiration: int) -> str:
        md = pod.get("metadata") or {}
        key = (md.get("uid", ""), audience, expiration)
        cached = self._cache.get(key)
        now = self.clock()
        if cached is not None and now < cached.refresh_at:
            return cached.value
        namespace = md.get("namespace") or "default"
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        value, expires_at = await self._request(pod, namespace, account, audience, expiration)
        self._cache[key] = _Token(value, refresh_time(now, expiration, expires_at))
        return value

    async def _request(self, pod: Mapping[str, Any], namespace: str, account: str,
                       audience: str, expiration: int) -> tuple[str, float | None]:
        path = SERVICE_ACCOUNTS.path(namespace, account, "token")
        try:
            answer = await self.client.request("POST", path,
                                               body=token_request(pod, audience, expiration))
        except StatusError as err:
            if err.code not in (404, 405):
                raise LookupError(f"failed to fetch token: {err}") from None
            if not await self._account_exists(namespace, account):
                raise LookupError(f'failed to fetch token: serviceaccounts "{account}" '
                                  "not found") from None
            if not self.placeholders_issued:
                log.warning("the API server does not issue service account tokens "
                            "(TokenRequest answered %d); projected tokens are placeholders",
                            err.code)
            self.placeholders_issued = True
            return placeholder_token(namespace, account), None
        status = (answer or {}).get("status") or {}
        expires = parse_time(status.get("expirationTimestamp"))
        return str(status.get("token") or ""), expires

    async def _account_exists(self, namespace: str, account: str) -> bool:
        try:
            await self.client.get(SERVICE_ACCOUNTS, account, namespace)
        except StatusError as err:
            if err.code == 404:
                return False
            raise
        return True

    def forget(self, uid: str) -> None:
        for key in [k for k in self._cache if k[0] == uid]:
            del self._cache[key]

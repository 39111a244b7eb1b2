"""The service account controller: every active namespace gets its `default` ServiceAccount.

Keyed by namespace name. A namespace appearing or changing, or a `default`
ServiceAccount being deleted, queues the namespace; the sync creates the
account when the namespace is Active and the informer has none. Terminating
namespaces are left alone, and a create refused because the namespace is
going away (or already gone) is not an error. As upstream since 1.24, no
token Secret is made: tokens are requested when a pod needs one.
"""

from __future__ import annotations

from typing import Any

from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.controllers.base import QueueController
from kubi.controllers.events import NAMESPACE_TERMINATING_CAUSE, has_status_cause
from kubi.controllers.manager import ControllerContext
from kubi.controllers.namespace import NAMESPACES

Obj = dict[str, Any]

SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", True, "ServiceAccount")
DEFAULT_SERVICE_ACCOUNTS = ("default",)


class ServiceAccountsController(QueueController):
    name = "serviceaccount"
    workers = 1

    def __init__(self, ctx: ControllerContext, *,
                 accounts: tuple[str, ...] = DEFAULT_SERVICE_ACCOUNTS) -> None:
        super().__init__()
        self.client = ctx.client
        self.accounts = accounts
        self.namespaces = ctx.informers.get(NAMESPACES)
        self.service_accounts = ctx.informers.get(SERVICE_ACCOUNTS)
        self.namespaces.on_add(self._namespace_changed)
        self.namespaces.on_update(lambda old, new: self._namespace_changed(new))
        self.service_accounts.on_delete(self._account_deleted)

    def _namespace_changed(self, ns: Obj) -> None:
        self.queue.add(ns["metadata"]["name"])

    def _account_deleted(self, account: Obj) -> None:
        md = account.get("metadata") or {}
        if md.get("name") in self.accounts:
            self.queue.add(md.get("namespace", ""))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or (ns.get("status") or {}).get("phase", "Active") != "Active":
            return
        failures: list[StatusError] = []
        for name in self.accounts:
            if self.service_accounts.get(f"{key}/{name}") is not None:
                continue
            try:
                await self.client.create(SERVICE_ACCOUNTS, {
                    "apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": key}}, key)
            except StatusError as err:
                if err.code in (404, 409) or has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
                    continue
                failures.append(err)
        if failures:
            raise failures[0]


def serviceaccounts_controller(ctx: ControllerContext) -> ServiceAccountsController:
    return ServiceAccountsController(ctx)

"""Node registration and heartbeats: the Lease and the status report.

`register_node` creates the Node, or on a restart adopts the existing one and
reconciles the labels, annotations and unset spec fields the node owns, as the
kubelet does. `NodeHeartbeat` then runs one loop per node: every
`renew_interval` (10 s, a quarter of the 40 s lease) it renews
`kube-node-lease/<node>`, and every `status_update_interval` it rebuilds the
node's status and patches `nodes/status` only when something changed or the
report interval ran out (upstream: 10 s checks, 5 min reports; ours default to
1 min so `kubectl describe node` stays fresh). The node's current object comes
from a lookup (a shared node informer) when given, else from a GET.

`pause()` silences a node without tearing it down: the Lease then expires and
the node lifecycle controller marks it NotReady, which is how a node failure
is simulated; `resume()` renews at once and reports status again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from kubi.api.errors import StatusError
from kubi.api.meta import format_time, now_rfc3339_micro
from kubi.client.client import Client, Resource
from kubi.node.nodestatus import merge_node_status, node_status_patch, report_due

log = logging.getLogger(__name__)

NODES = Resource("", "v1", "nodes", False, "Node")
LEASES = Resource("coordination.k8s.io", "v1", "leases", True, "Lease")
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
RENEW_INTERVAL = LEASE_DURATION / 4
STATUS_UPDATE_INTERVAL = 10.0
STATUS_REPORT_INTERVAL = 60.0

StatusSource = Callable[[], dict[str, Any]]
NodeLookup = Callable[[str], dict[str, Any] | None]
# Transport trouble: logged and retried on the next tick.
TRANSIENT = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def registration_patch(existing: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that brings an already registered Node in line with what
    this node would register: its labels and annotations, and spec fields that
    may still be set (podCIDR(s) and providerID only ever go from unset to set)."""
    patch: dict[str, Any] = {}
    for part in ("labels", "annotations"):
        want = desired["metadata"].get(part) or {}
        have = existing["metadata"].get(part) or {}
        changed = {k: v for k, v in want.items() if have.get(k) != v}
        if changed:
            patch.setdefault("metadata", {})[part] = changed
    spec, have_spec = desired.get("spec") or {}, existing.get("spec") or {}
    for key in ("podCIDR", "podCIDRs", "providerID"):
        if spec.get(key) and not have_spec.get(key):
            patch.setdefault("spec", {})[key] = spec[key]
    return patch or None


async def register_node(client: Client, node: dict[str, Any]) -> dict[str, Any]:
    """Create `node`, or adopt and reconcile the Node of that name; the stored object."""
    try:
        return await client.create(NODES, node)
    except StatusError as err:
        if err.reason != "AlreadyExists":
            raise
    existing = await client.get(NODES, node["metadata"]["name"])
    patch = registration_patch(existing, node)
    if patch:
        existing = await client.patch(NODES, node["metadata"]["name"], patch)
    return existing


def lease_object(node: dict[str, Any], *, duration: int, renew_time: str) -> dict[str, Any]:
    """A node's Lease, owned by its Node so it goes when the Node does."""
    name = node["metadata"]["name"]
    md: dict[str, Any] = {"name": name, "namespace": LEASE_NAMESPACE}
    if node["metadata"].get("uid"):
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                  "uid": node["metadata"]["uid"]}]
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
            "spec": {"holderIdentity": name, "leaseDurationSeconds": duration,
                     "renewTime": renew_time}}


class NodeHeartbeat:
    """Keeps one registered node's Lease renewed and its status reported."""

    def __init__(self, client: Client, node: dict[str, Any], *, status: StatusSource,
                 lookup: NodeLookup | None = None, lease_duration: int = LEASE_DURATION,
                 renew_interval: float = RENEW_INTERVAL,
                 status_update_interval: float = STATUS_UPDATE_INTERVAL,
                 status_report_interval: float = STATUS_REPORT_INTERVAL,
                 offset: float = 0.0, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.node = node
        self.name: str = node["metadata"]["name"]
        self.status = status
        self.lookup = lookup
        self.lease_duration = lease_duration
        self.renew_interval = renew_interval
        self.status_update_interval = status_update_interval
        self.status_report_interval = status_report_interval
        self.offset = offset
        self.clock = clock
        self.paused = False
        self._lease: dict[str, Any] | None = None
        self._last_report = float("-inf")
        self._last_check = float("-inf")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ---- lifecycle

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"heartbeat-{self.name}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        """Back to work at once: renew and report without waiting for the next tick."""
        self.paused = False
        self._last_check = float("-inf")
        self._wake.set()

    async def run(self) -> None:
        if self.offset > 0:
            await self._sleep(self.offset)
        while True:
            if not self.paused:
                await self.beat()
            await self._sleep(self.renew_interval)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass

    async def beat(self) -> None:
        """One tick: renew the Lease, and check the status when it is time to."""
        try:
            await self.renew_lease()
        except (StatusError, *TRANSIENT) as exc:
            log.warning("node %s: renewing lease failed: %s", self.name, exc)
        if self.clock() - self._last_check < self.status_update_interval:
            return
        self._last_check = self.clock()
        try:
            await self.sync_status()
        except (StatusError, *TRANSIENT) as exc:
            log.warning("node %s: updating status failed: %s", self.name, exc)

    # ---- the Lease

    async def renew_lease(self) -> None:
        now = now_rfc3339_micro()
        if self._lease is None:
            try:
                self._lease = await self.client.get(LEASES, self.name, LEASE_NAMESPACE)
            except StatusError as err:
                if err.code != 404:
                    raise
                self._lease = await self.client.create(LEASES, lease_object(
                    self.node, duration=self.lease_duration, renew_time=now))
                return
        lease = {**self._lease, "spec": {**(self._lease.get("spec") or {}),
                                         "holderIdentity": self.name,
                                         "leaseDurationSeconds": self.lease_duration,
                                         "renewTime": now}}
        try:
            self._lease = await self.client.replace(LEASES, lease)
        except StatusError as err:
            # Someone else wrote it (or deleted it): start again from the server's copy.
            self._lease = None
            if err.code not in (404, 409):
                raise

    # ---- the status

    async def current_node(self) -> dict[str, Any]:
        if self.lookup is not None:
            cached = self.lookup(self.name)
            if cached is not None:
                return cached
        return await self.client.get(NODES, self.name)

    async def sync_status(self) -> bool:
        """Report the node's status if due; True when a patch was written."""
        node = await self.current_node()
        stored = node.get("status") or {}
        now = self.clock()
        merged = merge_node_status(stored, self.status(), format_time(now))
        if not report_due(stored, merged, since_last_report=now - self._last_report,
                          report_interval=self.status_report_interval):
            return False
        patch = node_status_patch(node, merged)
        if patch is not None:
            self.node = await self.client.patch(NODES, self.name, patch, subresource="status",
                                                patch_type="strategic")
        self._last_report = now
        return patch is not None

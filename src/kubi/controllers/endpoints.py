"""The Endpoints controller: one core/v1 Endpoints per Service with a selector.

Handlers turn Service changes, and pod changes that can move an address
(labels, hostname, readiness, IPs, deletion), into Service keys. `sync(key)`
reads the cached Service and its pods, computes the subsets (see
endpointsubsets) and creates or replaces the Endpoints of the same name only
when they differ; a Service that is gone takes its Endpoints with it, and
Services without a selector (or of type ExternalName) are left to whoever
writes their Endpoints by hand. At start every cached Endpoints is queued
once, so those left behind by a Service deleted while the controller was
down are removed. A write the informer has not shown yet holds the key back
briefly instead of acting on the stale copy.

`kubernetes_endpoints(address, port)` builds what the API server keeps for
the `default/kubernetes` Service (upstream's master endpoints reconciler).
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.client.informer import object_key
from kubi.controllers.base import QueueController
from kubi.controllers.endpointsubsets import desired_endpoints, desired_subsets
from kubi.controllers.endpointutil import (
    SERVICES,
    TriggerTimeTracker,
    manages_endpoints,
    selects,
    service_selector,
    services_selecting,
    services_to_update,
)
from kubi.controllers.events import (
    NAMESPACE_TERMINATING_CAUSE,
    WARNING,
    EventRecorder,
    has_status_cause,
)
from kubi.controllers.manager import ControllerContext
from kubi.controllers.podcontrol import PODS

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ENDPOINTS = Resource("", "v1", "endpoints", True, "Endpoints")

EVENT_COMPONENT = "endpoint-controller"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

# How long to wait before looking again when the cache lags our own write,
# and how long to believe it lags before trusting it regardless.
STALE_RETRY = 0.05
STALE_TIMEOUT = 30.0


class StaleEndpointsTracker:
    """Remembers our writes until the Endpoints informer has shown them.

    After an update the replaced resourceVersion is stale: a cache still
    holding it is behind. After a create, a cache without the object is
    behind. Either way the sync waits rather than repeat the write.
    """

    def __init__(self, *, clock: Any = time.monotonic, timeout: float = STALE_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._replaced: dict[str, str] = {}
        self._created: dict[str, float] = {}

    def created(self, key: str) -> None:
        self._created[key] = self._clock()

    def replaced(self, key: str, old_resource_version: str) -> None:
        self._replaced[key] = old_resource_version

    def observed(self, key: str) -> None:
        self._created.pop(key, None)

    def forget(self, key: str) -> None:
        self._created.pop(key, None)
        self._replaced.pop(key, None)

    def is_stale(self, key: str, cached: Obj | None) -> bool:
        if cached is None:
            since = self._created.get(key)
            return since is not None and self._clock() - since < self._timeout
        version = (cached.get("metadata") or {}).get("resourceVersion")
        return version is not None and self._replaced.get(key) == version


class EndpointsController(QueueController):
    name = "endpoints"
    workers = 5

    def __init__(self, ctx: ControllerContext, *, batch_period: float = 0.0) -> None:
        super().__init__()
        self.client = ctx.client
        self.batch_period = batch_period
        self.recorder: EventRecorder = ctx.recorder(EVENT_COMPONENT)
        self.triggers = TriggerTimeTracker()
        self.stale = StaleEndpointsTracker()
        self.services = ctx.informers.get(SERVICES)
        self.pods = ctx.informers.get(PODS)
        self.endpoints = ctx.informers.get(ENDPOINTS)
        self.services.on_add(self._service_changed)
        self.services.on_update(lambda old, cur: self._service_changed(cur))
        self.services.on_delete(self._service_changed)
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_added)
        self.endpoints.on_add(lambda ep: self.stale.observed(object_key(ep)))
        self.endpoints.on_update(lambda old, cur: self.stale.observed(object_key(cur)))
        self.endpoints.on_delete(self._endpoints_deleted)

    async def run(self, workers: int | None = None) -> None:
        self._queue_leftovers()
        await super().run(workers)

    # ---- handlers: map changes to Service keys

    def _service_changed(self, service: Obj) -> None:
        self.queue.add(object_key(service))

    def _services_in(self, namespace: str) -> list[Obj]:
        return self.services.in_namespace(namespace)

    def _pod_added(self, pod: Obj) -> None:
        md = pod.get("metadata") or {}
        for key in services_selecting(self._services_in(md.get("namespace", "")),
                                      md.get("labels")):
            self.queue.add_after(key, self.batch_period)

    def _pod_updated(self, old: Obj, cur: Obj) -> None:
        namespace = (cur.get("metadata") or {}).get("namespace", "")
        for key in services_to_update(self._services_in(namespace), old, cur):
            self.queue.add_after(key, self.batch_period)

    def _endpoints_deleted(self, endpoints: Obj) -> None:
        key = object_key(endpoints)
        self.stale.observed(key)
        self.queue.add(key)

    def _queue_leftovers(self) -> None:
        """Queue every Endpoints once, so those whose Service is gone get deleted."""
        for endpoints in self.endpoints.list():
            annotations = (endpoints.get("metadata") or {}).get("annotations") or {}
            # Old-style leader election keeps its record in Endpoints without a Service.
            if LEADER_ANNOTATION not in annotations:
                self.queue.add(object_key(endpoints))

    # ---- sync

    async def sync(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        service = self.services.get(key)
        if service is None:
            await self._delete_endpoints(key, namespace, name)
            return
        if not manages_endpoints(service):
            return
        current = self.endpoints.get(key)
        if self.stale.is_stale(key, current):
            # Checked before the trigger time is computed, which would consume it.
            log.debug("endpoints %s: informer behind our last write, retrying", key)
            self.queue.add_after(key, STALE_RETRY)
            return
        selector = service_selector(service)
        pods = [pod for pod in self.pods.in_namespace(namespace)
                if selects(selector, (pod.get("metadata") or {}).get("labels"))]
        # Computed even when nothing gets written, so the tracker stays current.
        trigger_time = self.triggers.compute(service, pods)
        subsets = desired_subsets(service, pods)
        wanted = desired_endpoints(service, current, subsets, trigger_time)
        if wanted is None:
            return
        await self._write(key, service, current, wanted)

    async def _delete_endpoints(self, key: str, namespace: str, name: str) -> None:
        try:
            await self.client.delete(ENDPOINTS, name, namespace)
        except StatusError as err:
            if err.code != 404:
                raise
        self.triggers.delete_service(key)
        self.stale.forget(key)

    async def _write(self, key: str, service: Obj, current: Obj | None, wanted: Obj) -> None:
        md = service["metadata"]
        try:
            if current is None:
                await self.client.create(ENDPOINTS, wanted, md["namespace"])
                self.stale.created(key)
                return
            written = await self.client.replace(ENDPOINTS, wanted)
        except StatusError as err:
            if current is None and err.code == 403 \
                    and has_status_cause(err, NAMESPACE_TERMINATING_CAUSE):
                return  # every create fails in a terminating namespace; nothing to retry
            if current is None:
                message = (f"Failed to create endpoint for service "
                           f"{md['namespace']}/{md['name']}: {err}")
                reason = "FailedToCreateEndpoint"
            else:
                message = f"Failed to update endpoint {md['namespace']}/{md['name']}: {err}"
                reason = "FailedToUpdateEndpoint"
            self.recorder.event(wanted, WARNING, reason, message, kind="Endpoints",
                                api_version="v1")
            raise
        old_version = (current.get("metadata") or {}).get("resourceVersion")
        if old_version and (written.get("metadata") or {}).get("resourceVersion") != old_version:
            self.stale.replaced(key, old_version)


def endpoints_controller(ctx: ControllerContext) -> EndpointsController:
    return EndpointsController(ctx)


# ---- the API server's own Service

def kubernetes_endpoints(address: str, port: int) -> tuple[Obj, Obj]:
    """The Endpoints and EndpointSlice of `default/kubernetes` for one API server.

    `address` must be an IP other clients can reach (never loopback: the API
    refuses loopback addresses in Endpoints); `port` is the secure port. The
    Endpoints carry skip-mirror so no mirroring controller copies them.
    """
    port_spec = {"name": "https", "port": port, "protocol": "TCP"}
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {SKIP_MIRROR_LABEL: "true"}},
        "subsets": [{"addresses": [{"ip": address}], "ports": [dict(port_spec)]}],
    }
    address_type = "IPv6" if ":" in address else "IPv4"
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {SERVICE_NAME_LABEL: "kubernetes"}},
        "addressType": address_type,
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [dict(port_spec)],
    }
    return endpoints, endpoint_slice


def primary_ipv4() -> str | None:
    """The machine's primary non-loopback IPv4 address, or None when it has none.

    Connecting a UDP socket only picks the route (no packet is sent): the
    source address of the default route is the primary address.
    """
    candidates: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))
            candidates.append(probe.getsockname()[0])
    except OSError:
        pass
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        candidates.extend(str(info[4][0]) for info in infos)
    except OSError:
        pass
    for candidate in candidates:
        if not candidate.startswith("127.") and candidate != "0.0.0.0":
            return candidate
    return None
